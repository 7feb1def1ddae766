"""Hybrid retrieval: pgvector cosine plus PostgreSQL full text, over facts and the messages they came from.

Every query is filtered by organization (in SQL, on every path), by category
and by validity at a point in time (``at``, default now: superseded facts drop
out, "who was CFO in 2021" asks with ``at`` in 2021). Pending facts (behind a
conflict) are never returned.

Full text: a natural-language question ANDed word by word (plainto_tsquery,
websearch_to_tsquery) almost never matches, so the question's lexemes are ORed
and ranked (``ts_rank_cd`` or a BM25 score with per-organization document
frequencies; the benchmark in bench/memory.py chooses).

Vectors: a shared HNSW index under an organization filter returns almost
nothing (the filter applies after the graph walk), so a tenant of up to
``MEMORY_EXACT_SEARCH_MAX_ROWS`` rows is searched exactly through the
organization index (a few milliseconds); a larger one through HNSW with
pgvector's iterative scan (``relaxed_order``) and the results re-sorted.

The ranked lists (facts by vector, facts by text, messages by vector, messages
by text) are fused by a min-max normalized weighted sum (vector 0.3, text 0.7:
the best on LoCoMo, see SearchOptions) or by reciprocal rank fusion.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Organization
from memory import conf, embeddings
from memory.models import Category, Fact, FactStatus, Message

FACT_TABLE = Fact._meta.db_table
MESSAGE_TABLE = Message._meta.db_table


@dataclass(frozen=True)
class SearchOptions:
    """How to rank. Defaults are the configuration the LoCoMo benchmark chose (see bench/memory.py)."""

    mode: str = "hybrid"  # hybrid | vector | text
    # LoCoMo, categories 1-4, recall@10 / MRR: weighted 0.3 80.7 / 0.584, weighted 0.5 80.1 / 0.583,
    # RRF k=2 80.7 / 0.575, k=10 80.3 / 0.570, k=60 79.3 / 0.566 (differences within a few questions).
    fusion: str = "weighted"  # weighted (min-max normalized scores) | rrf
    rrf_k: float = 10.0
    vector_weight: float = 0.3
    text_ranker: str = "bm25"  # bm25 | ts_rank_cd
    candidates: int = 50
    fact_weight: float = 1.0
    message_weight: float = 1.0
    group_sources: bool = True  # a fact and the message it came from are one result


DEFAULT_OPTIONS = SearchOptions()


@dataclass
class Hit:
    """One result: a fact or a message, with its fused score and the facts drawn from it."""

    kind: str
    id: int
    score: float
    text: str
    fact: Fact | None = None
    message: Message | None = None
    related_facts: list[Fact] = field(default_factory=list)
    ranks: dict[str, int] = field(default_factory=dict)

    @property
    def source_ids(self) -> list[str]:
        """Where the result comes from (message ids), the result's own first."""
        ids: list[str] = []
        if self.message is not None and self.message.source_id:
            ids.append(self.message.source_id)
        if self.fact is not None and self.fact.source_id:
            ids.append(self.fact.source_id)
        ids += [f.source_id for f in self.related_facts if f.source_id]
        return list(dict.fromkeys(ids))


@dataclass
class Filters:
    categories: list[str] | None
    at: datetime
    explicit_at: bool
    include_history: bool = False


# --- SQL building blocks -------------------------------------------------------------------------


def _fact_filter_sql(filters: Filters) -> tuple[str, list[Any]]:
    sql = " AND status <> %s"
    params: list[Any] = [FactStatus.PENDING]
    if filters.categories:
        sql += " AND category = ANY(%s)"
        params.append(list(filters.categories))
    if not filters.include_history:
        sql += " AND (valid_from IS NULL OR valid_from <= %s) AND (valid_to IS NULL OR valid_to > %s)"
        params += [filters.at, filters.at]
    return sql, params


def _message_filter_sql(filters: Filters) -> tuple[str, list[Any]]:
    if filters.explicit_at and not filters.include_history:
        return " AND (occurred_at IS NULL OR occurred_at <= %s)", [filters.at]
    return "", []


def _vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


_SIZE_TTL_SECONDS = 60.0
_size_cache: dict[tuple[str, int, int], tuple[float, int]] = {}


def tenant_rows(table: str, organization_id: int, cap: int) -> int:
    """The tenant's row count, counted up to ``cap`` + 1 through the organization index (cached a minute)."""
    key = (table, organization_id, cap)
    now = time.monotonic()
    cached = _size_cache.get(key)
    if cached is not None and now - cached[0] < _SIZE_TTL_SECONDS:
        return cached[1]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE organization_id = %s LIMIT %s) s",  # noqa: S608
            [organization_id, cap + 1],
        )
        rows = int(cursor.fetchone()[0])
    if len(_size_cache) > 10000:
        _size_cache.clear()
    _size_cache[key] = (now, rows)
    return rows


def vector_candidates(
    table: str,
    organization_id: int,
    vector: Sequence[float],
    where: str,
    params: list[Any],
    limit: int,
    *,
    strategy: str = "auto",
) -> list[tuple[int, float]]:
    """(id, cosine distance) of the nearest rows of one organization, nearest first.

    ``strategy``: ``exact`` (scan the organization's rows through its index), ``hnsw`` (iterative index scan),
    ``auto`` (exact up to ``MEMORY_EXACT_SEARCH_MAX_ROWS`` rows of the tenant).
    """
    literal = _vector_literal(vector)
    if strategy == "auto":
        cap = conf.exact_search_max_rows()
        strategy = "exact" if tenant_rows(table, organization_id, cap) <= cap else "hnsw"
    if strategy == "exact":
        # MATERIALIZED: the planner cannot push the ORDER BY into the HNSW index and filter afterwards.
        sql = (
            f"WITH c AS MATERIALIZED (SELECT id, embedding FROM {table} "  # noqa: S608
            f"WHERE organization_id = %s AND embedding IS NOT NULL{where}) "
            "SELECT id, embedding <=> %s::vector AS d FROM c ORDER BY d LIMIT %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [organization_id, *params, literal, limit])
            return [(int(i), float(d)) for i, d in cursor.fetchall()]
    sql = (
        f"SELECT id, d FROM (SELECT id, embedding <=> %s::vector AS d FROM {table} "  # noqa: S608
        f"WHERE organization_id = %s AND embedding IS NOT NULL{where} "
        "ORDER BY embedding <=> %s::vector LIMIT %s) s ORDER BY d"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', 'relaxed_order', true),"
            " set_config('hnsw.max_scan_tuples', %s, true)",
            [str(max(conf.hnsw_ef_search(), limit)), str(conf.hnsw_max_scan_tuples())],
        )
        cursor.execute(sql, [literal, organization_id, *params, literal, limit])
        return [(int(i), float(d)) for i, d in cursor.fetchall()]


def query_lexemes(query: str) -> list[str]:
    """The question's lexemes (English stemming, stop words dropped), in a fixed order."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tsvector_to_array(to_tsvector(%s::regconfig, %s))", [conf.TEXT_SEARCH_CONFIG, query])
        lexemes = cursor.fetchone()[0] or []
    return [lex for lex in lexemes if "'" not in lex and "\\" not in lex]


def or_tsquery(lexemes: Sequence[str]) -> str:
    """The lexemes ORed, as tsquery text ('' when there are none)."""
    return " | ".join(f"'{lex}'" for lex in lexemes)


_STATS_TTL_SECONDS = 300.0
_stats_cache: dict[tuple[str, int], tuple[float, float, float]] = {}


def _collection_stats(table: str, organization_id: int) -> tuple[float, float]:
    """(rows, average distinct lexemes per row) of the organization, cached for a few minutes."""
    now = time.monotonic()
    cached = _stats_cache.get((table, organization_id))
    if cached is not None and now - cached[0] < _STATS_TTL_SECONDS:
        return cached[1], cached[2]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), coalesce(avg(length(search_vector)), 1) FROM {table} "  # noqa: S608
            "WHERE organization_id = %s",
            [organization_id],
        )
        docs, avgdl = cursor.fetchone()
    if len(_stats_cache) > 10000:
        _stats_cache.clear()
    _stats_cache[(table, organization_id)] = (now, float(docs), max(float(avgdl), 1.0))
    return float(docs), max(float(avgdl), 1.0)


def text_candidates(
    table: str,
    organization_id: int,
    lexemes: Sequence[str],
    where: str,
    params: list[Any],
    limit: int,
    *,
    ranker: str = "bm25",
) -> list[tuple[int, float]]:
    """(id, score) of the best full-text matches of one organization, best first."""
    tsquery = or_tsquery(lexemes)
    if not tsquery:
        return []
    if ranker == "ts_rank_cd":
        sql = (
            f"SELECT id, ts_rank_cd(search_vector, q) AS r FROM {table}, CAST(%s AS tsquery) q "  # noqa: S608
            f"WHERE organization_id = %s AND search_vector @@ q{where} ORDER BY r DESC, id LIMIT %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [tsquery, organization_id, *params, limit])
            return [(int(i), float(r)) for i, r in cursor.fetchall()]
    return _bm25_candidates(table, organization_id, lexemes, tsquery, where, params, limit)


BM25_K1 = 1.2
BM25_B = 0.75
COMMON_SHARE = 0.25


def _bm25_candidates(
    table: str, organization_id: int, lexemes: Sequence[str], tsquery: str, where: str, params: list[Any], limit: int
) -> list[tuple[int, float]]:
    """Okapi BM25 with document frequencies counted in the organization's own rows.

    Term frequency counts the lexeme's positions, weighted by label (A 1, B 0.7, C 0.4, D 0.2); document
    length is the number of distinct lexemes of the row.
    """
    docs, avgdl = _collection_stats(table, organization_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT count(*) FROM {table} WHERE organization_id = %s "  # noqa: S608
            "AND search_vector @@ CAST(quote_literal(l) AS tsquery)) FROM unnest(%s::text[]) AS l",
            [organization_id, list(lexemes)],
        )
        frequencies = [float(row[0]) for row in cursor.fetchall()]
    docs = max(docs, max(frequencies, default=0.0))
    idf = [math.log(1 + (docs - df + 0.5) / (df + 0.5)) for df in frequencies]
    # Lexemes in most rows add almost nothing to a score but make every row a match: score them, match on the rest.
    selective = [lex for lex, df in zip(lexemes, frequencies, strict=True) if df and df <= docs * COMMON_SHARE]
    tsquery = or_tsquery(selective) if selective else tsquery
    sql = f"""
    WITH w AS (SELECT * FROM unnest(%s::text[], %s::float8[]) AS w(lexeme, idf)),
    matched AS (
        SELECT id, search_vector FROM {table}
        WHERE organization_id = %s AND search_vector @@ CAST(%s AS tsquery){where}
    )
    SELECT m.id, sum(w.idf * (u.tf * %s) / (u.tf + %s * (1 - %s + %s * length(m.search_vector) / %s))) AS score
    FROM matched m
    CROSS JOIN LATERAL (
        SELECT lexeme, greatest(coalesce((SELECT sum(CASE x WHEN 'A' THEN 1.0 WHEN 'B' THEN 0.7 WHEN 'C' THEN 0.4
                                                          ELSE 0.2 END) FROM unnest(weights) x), 0), 0.2) AS tf
        FROM unnest(m.search_vector)
    ) u
    JOIN w ON w.lexeme = u.lexeme
    GROUP BY m.id
    ORDER BY score DESC, m.id
    LIMIT %s
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [list(lexemes), idf, organization_id, tsquery, *params,
             BM25_K1 + 1, BM25_K1, BM25_B, BM25_B, avgdl, limit],
        )
        return [(int(i), float(s)) for i, s in cursor.fetchall()]


# --- fusion ---------------------------------------------------------------------------------------


def fuse(
    lists: dict[str, list[tuple[Any, float]]],
    *,
    fusion: str,
    rrf_k: float,
    weights: dict[str, float],
    higher_is_better: dict[str, bool],
) -> list[tuple[Any, float, dict[str, int]]]:
    """Fuse ranked lists of (key, score) into one list of (key, fused score, ranks), best first."""
    scores: dict[Any, float] = {}
    ranks: dict[Any, dict[str, int]] = {}
    for name, items in lists.items():
        if not items:
            continue
        weight = weights.get(name, 1.0)
        if fusion == "rrf":
            for rank, (key, _score) in enumerate(items, start=1):
                scores[key] = scores.get(key, 0.0) + weight / (rrf_k + rank)
                ranks.setdefault(key, {})[name] = rank
        else:
            values = [s for _, s in items]
            best, worst = (max(values), min(values)) if higher_is_better[name] else (min(values), max(values))
            spread = abs(best - worst) or 1.0
            for rank, (key, score) in enumerate(items, start=1):
                normalized = (score - worst) / spread if higher_is_better[name] else (worst - score) / spread
                if len(items) == 1:
                    normalized = 1.0
                scores[key] = scores.get(key, 0.0) + weight * normalized
                ranks.setdefault(key, {})[name] = rank
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return [(key, score, ranks[key]) for key, score in ordered]


# --- search ------------------------------------------------------------------------------------


@dataclass
class SearchStats:
    seconds: float = 0.0
    candidates: dict[str, int] = field(default_factory=dict)


def search(
    *,
    organization: Organization,
    query: str,
    categories: Sequence[str] | None = None,
    at: datetime | None = None,
    limit: int = 10,
    include_facts: bool = True,
    include_messages: bool = True,
    include_history: bool = False,
    options: SearchOptions = DEFAULT_OPTIONS,
    query_vector: Sequence[float] | None = None,
    stats: SearchStats | None = None,
) -> list[Hit]:
    """The organization's facts and messages most relevant to ``query``, valid at ``at`` (default now).

    A category filter searches facts only (messages have no category).
    """
    started = time.perf_counter()
    query = (query or "").strip()
    if not query or limit <= 0:
        return []
    if categories:
        unknown = [c for c in categories if c not in Category.values]
        if unknown:
            from accounts.errors import InvalidInput

            raise InvalidInput(f"unknown categories {unknown}", field="category")
    filters = Filters(
        categories=list(categories) if categories else None,
        at=at or timezone.now(),
        explicit_at=at is not None,
        include_history=include_history,
    )
    include_messages = include_messages and not filters.categories
    pool = max(options.candidates, limit)
    lists: dict[str, list[tuple[Any, float]]] = {}
    weights: dict[str, float] = {}
    higher: dict[str, bool] = {}
    org_id = organization.pk

    if options.mode in ("hybrid", "vector"):
        vector = list(query_vector) if query_vector is not None else embeddings.embed_text(query)
        if include_facts:
            where, params = _fact_filter_sql(filters)
            lists["fact_vector"] = [(("fact", i), d) for i, d in
                                    vector_candidates(FACT_TABLE, org_id, vector, where, params, pool)]
        if include_messages:
            where, params = _message_filter_sql(filters)
            lists["message_vector"] = [(("message", i), d) for i, d in
                                       vector_candidates(MESSAGE_TABLE, org_id, vector, where, params, pool)]
    if options.mode in ("hybrid", "text"):
        lexemes = query_lexemes(query)
        if include_facts:
            where, params = _fact_filter_sql(filters)
            lists["fact_text"] = [(("fact", i), s) for i, s in text_candidates(
                FACT_TABLE, org_id, lexemes, where, params, pool, ranker=options.text_ranker)]
        if include_messages:
            where, params = _message_filter_sql(filters)
            lists["message_text"] = [(("message", i), s) for i, s in text_candidates(
                MESSAGE_TABLE, org_id, lexemes, where, params, pool, ranker=options.text_ranker)]
    for name in lists:
        is_vector = name.endswith("_vector")
        higher[name] = not is_vector
        weight = options.vector_weight if is_vector else 1 - options.vector_weight
        if options.mode != "hybrid":
            weight = 1.0
        weight *= options.fact_weight if name.startswith("fact") else options.message_weight
        weights[name] = weight

    fused = fuse(lists, fusion=options.fusion, rrf_k=options.rrf_k, weights=weights, higher_is_better=higher)
    hits = _hydrate(organization, fused, limit=limit, group_sources=options.group_sources and include_messages)
    if stats is not None:
        stats.seconds = time.perf_counter() - started
        stats.candidates = {name: len(items) for name, items in lists.items()}
    return hits


def _hydrate(
    organization: Organization,
    fused: list[tuple[Any, float, dict[str, int]]],
    *,
    limit: int,
    group_sources: bool,
) -> list[Hit]:
    """Load the rows of the best keys (again filtered by organization), folding facts into their messages."""
    window = fused[: limit * 4 if group_sources else limit]
    fact_ids = [key[1] for key, _, _ in window if key[0] == "fact"]
    message_ids = [key[1] for key, _, _ in window if key[0] == "message"]
    facts = {f.pk: f for f in Fact.objects.for_org(organization).filter(pk__in=fact_ids).select_related("subject")}
    if group_sources:
        message_ids += [f.source_message_id for f in facts.values() if f.source_message_id]
    messages = {m.pk: m for m in Message.objects.for_org(organization).filter(pk__in=message_ids)}
    hits: list[Hit] = []
    by_message: dict[int, Hit] = {}
    for (kind, pk), score, ranks in window:
        if kind == "fact":
            fact = facts.get(pk)
            if fact is None:
                continue
            if group_sources and fact.source_message_id:
                host = by_message.get(fact.source_message_id)
                if host is not None:
                    host.related_facts.append(fact)
                    continue
                message = messages.get(fact.source_message_id)
                if message is not None:
                    hit = Hit("message", message.pk, score, message.text, message=message, related_facts=[fact],
                              ranks=ranks)
                    by_message[message.pk] = hit
                    hits.append(hit)
                    continue
            hits.append(Hit("fact", pk, score, fact.text, fact=fact, ranks=ranks))
        else:
            message = messages.get(pk)
            if message is None:
                continue
            if group_sources and pk in by_message:
                by_message[pk].ranks.update(ranks)
                continue
            hit = Hit("message", pk, score, message.text, message=message, ranks=ranks)
            by_message[pk] = hit
            hits.append(hit)
        if len(hits) >= limit:
            break
    return hits[:limit]


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
