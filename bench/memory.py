"""Memory benchmark: prints figures, asserts nothing.

    .venv/bin/python bench/memory.py                       # everything, scale sizes 10k and 100k
    .venv/bin/python bench/memory.py --sizes 10000,100000,1000000
    .venv/bin/python bench/memory.py --skip-scale --locomo-dir /path/to/locomo

1. Embedding throughput of the configured model (sentences/s).
2. Vector search at scale (synthetic clustered vectors, loaded by binary COPY into a bench table shaped like
   memory_fact): p50/p95 latency and recall@10 against exact search, without and with an organization filter
   (one of 100 organizations): HNSW plain (the trap), HNSW iterative scan, exact through the organization index.
3. Retrieval quality on LoCoMo (read at run time from ../shared/data/locomo relative to the repository root;
   evaluation only, nothing of it is stored in the project): each conversation is one organization, its turns
   and observation facts go through the normal write path (privacy filter, embeddings, deduplication);
   questions of categories 1-4 run as that organization. Evidence recall@1/5/10/20, MRR and p50/p95 latency per
   category, for BM25-only and vector-only baselines and the hybrid configurations, and the number of results
   belonging to another organization (must be 0).

Runs against its own database (``--db``, default ``bench_memory``, dropped and created afresh at each run) on
the embedded PostgreSQL; the scale tables live in a ``bench`` schema there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="bench_memory")
    parser.add_argument("--sizes", default="10000,100000", help="scale sizes, comma separated (e.g. 10000,1000000)")
    parser.add_argument("--orgs", type=int, default=100, help="organizations sharing the scale table")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--locomo-dir", default=str(ROOT.parent / "shared" / "data" / "locomo"))
    parser.add_argument("--conversations", default="", help="LoCoMo files to use (e.g. 26,30); default all")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-locomo", action="store_true")
    parser.add_argument("--configs", default="main", help="main | all (adds the fusion and ranking variants)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    return parser.parse_args()


def setup_django(db: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ["STAFFER_DB_NAME"] = db
    from config import embedded

    var = embedded.var_dir(ROOT)
    embedded.postgres_url(var)
    import psycopg

    with psycopg.connect(dbname="postgres", user="postgres", host=str(var / "pg"), autocommit=True) as conn:
        # A fresh database each run: organizations cannot be deleted once audited (the log is append-only).
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 50) * 1000:7.1f} ms  p95 {percentile(values, 95) * 1000:7.1f} ms"


# --- 1. embedding throughput ------------------------------------------------------------------


def bench_throughput(threads: int) -> None:
    from django.conf import settings

    from memory import embeddings

    settings.MEMORY_EMBEDDING_THREADS = threads
    started = time.perf_counter()
    model = embeddings.load_model()
    print(f"model {embeddings.conf.embedding_model()} loaded in {time.perf_counter() - started:.1f} s "
          f"(torch threads {threads})")
    subjects = ["The finance team", "Sarah", "Our biggest customer", "The Berlin office", "Project Falcon", "John"]
    verbs = ["prefers", "decided", "asked for", "moved", "approved", "reported"]
    objects = ["invoices as PDF on the first business day", "a weekly status call on Mondays at ten",
               "the new vendor contract for cloud hosting", "quarterly budget reviews with the board",
               "shipping from Rotterdam instead of Hamburg", "two-factor login for every employee"]
    sentences = [f"{subjects[i % 6]} {verbs[(i // 6) % 6]} {objects[(i // 36) % 6]} (note {i})" for i in range(2000)]
    embeddings.embed_texts(sentences[:64])  # warm up
    for batch in (1, 32, 64, 128):
        model_batch = embeddings.conf.embedding_batch_size
        settings.MEMORY_EMBEDDING_BATCH_SIZE = batch
        count = 200 if batch == 1 else 2000
        started = time.perf_counter()
        if batch == 1:
            for sentence in sentences[:count]:
                embeddings.embed_texts([sentence])
        else:
            embeddings.embed_texts(sentences[:count])
        elapsed = time.perf_counter() - started
        print(f"  batch {batch:4d}: {count / elapsed:7.1f} sentences/s")
        del model_batch
    del model


# --- 2. scale --------------------------------------------------------------------------------


def synthetic_vectors(count: int, dims: int, rng, centers) -> object:
    import numpy as np

    # Points around topic centres (cosine to their centre about 0.8), like sentence embeddings of many topics;
    # uniformly random vectors would be the worst case for HNSW, not a realistic one.
    picks = rng.integers(0, len(centers), size=count)
    noise = rng.standard_normal((count, dims)).astype(np.float32) * (0.75 / np.sqrt(dims))
    vectors = centers[picks] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def load_scale_table(size: int, orgs: int, rng, centers) -> None:
    import numpy as np
    from django.db import connection
    from pgvector.psycopg import register_vector

    dims = centers.shape[1]
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA IF NOT EXISTS bench")
        cursor.execute("DROP TABLE IF EXISTS bench.facts")
        cursor.execute(
            f"CREATE UNLOGGED TABLE bench.facts (id bigint PRIMARY KEY, organization_id bigint NOT NULL, "
            f"category varchar(12) NOT NULL, status varchar(10) NOT NULL, valid_from timestamptz, "
            f"valid_to timestamptz, embedding vector({dims}))"
        )
    raw = connection.connection
    register_vector(raw)
    started = time.perf_counter()
    chunk = 50000
    with raw.cursor() as cursor, cursor.copy(
        "COPY bench.facts (id, organization_id, category, status, embedding) FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["int8", "int8", "varchar", "varchar", "vector"])
        for start in range(0, size, chunk):
            block = synthetic_vectors(min(chunk, size - start), dims, rng, centers)
            organization_ids = rng.integers(1, orgs + 1, size=len(block))
            for offset, vector in enumerate(block):
                copy.write_row((start + offset + 1, int(organization_ids[offset]), "company", "active", vector))
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("CREATE INDEX ON bench.facts (organization_id)")
        index_org = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute("CREATE INDEX bench_facts_hnsw ON bench.facts USING hnsw (embedding vector_cosine_ops) "
                       "WITH (m = 16, ef_construction = 64)")
        index_hnsw = time.perf_counter() - started
        cursor.execute("ANALYZE bench.facts")
    del np
    print(f"  loaded {size} rows by binary COPY in {loaded:.1f} s; organization index {index_org:.1f} s; "
          f"HNSW index {index_hnsw:.1f} s")


def bench_scale(sizes: list[int], orgs: int, queries: int) -> None:
    import numpy as np
    from django.db import connection, transaction

    from memory import retrieval

    rng = np.random.default_rng(7)
    dims = 384
    centers = rng.standard_normal((5000, dims)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    query_vectors = synthetic_vectors(queries, dims, rng, centers)
    table = "bench.facts"

    def run(sql: str, params: list, settings_sql: list[str]) -> tuple[list[int], float]:
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in settings_sql:
                cursor.execute(statement)
            started = time.perf_counter()
            cursor.execute(sql, params)
            rows = [r[0] for r in cursor.fetchall()]
            return rows, time.perf_counter() - started

    for size in sizes:
        print(f"\n== {size} facts, {orgs} organizations, {queries} queries, top 10 ==")
        load_scale_table(size, orgs, rng, centers)
        literal = [retrieval._vector_literal(v) for v in query_vectors]
        exact_sql = (f"SELECT id FROM {table} ORDER BY embedding <=> %s::vector LIMIT 10")
        no_index = ["SET LOCAL enable_indexscan = off", "SET LOCAL enable_bitmapscan = off"]
        exact_all, exact_all_t = [], []
        for q in literal:
            rows, seconds = run(exact_sql, [q], no_index)
            exact_all.append(set(rows))
            exact_all_t.append(seconds)
        print(f"  no filter   exact (sequential scan)            {ms(exact_all_t)}  recall@10 1.000")
        for ef in (40, 100, 200):
            found, times = [], []
            for q in literal:
                rows, seconds = run(exact_sql, [q], [f"SET LOCAL hnsw.ef_search = {ef}"])
                found.append(set(rows))
                times.append(seconds)
            recall = statistics.mean(len(a & b) / 10 for a, b in zip(found, exact_all, strict=True))
            print(f"  no filter   HNSW ef_search={ef:<4d}                 {ms(times)}  recall@10 {recall:.3f}")

        # "organization_id + 0": the organization index cannot serve it, so these rows measure the HNSW index.
        org_sql = (f"SELECT id FROM {table} WHERE organization_id + 0 = %s ORDER BY embedding <=> %s::vector LIMIT 10")
        org_ids = [int(i) for i in rng.integers(1, orgs + 1, size=len(literal))]
        exact_org, times = [], []
        for org, q in zip(org_ids, literal, strict=True):
            started = time.perf_counter()
            rows = retrieval.vector_candidates(table, org, [float(x) for x in q.strip("[]").split(",")], "", [], 10,
                                               strategy="exact")
            times.append(time.perf_counter() - started)
            exact_org.append({r[0] for r in rows})
        print(f"  1 of {orgs} orgs exact via organization index   {ms(times)}  recall@10 1.000 "
              f"(~{size // orgs} rows per organization)")
        variants = [
            ("HNSW, no iterative scan (the trap)", ["SET LOCAL hnsw.ef_search = 40",
                                                     "SET LOCAL hnsw.iterative_scan = off"]),
            ("HNSW iterative relaxed, ef 100", ["SET LOCAL hnsw.ef_search = 100",
                                                "SET LOCAL hnsw.iterative_scan = relaxed_order",
                                                "SET LOCAL hnsw.max_scan_tuples = 100000"]),
            ("HNSW iterative relaxed, ef 200", ["SET LOCAL hnsw.ef_search = 200",
                                                "SET LOCAL hnsw.iterative_scan = relaxed_order",
                                                "SET LOCAL hnsw.max_scan_tuples = 100000"]),
            ("HNSW iterative strict, ef 100", ["SET LOCAL hnsw.ef_search = 100",
                                               "SET LOCAL hnsw.iterative_scan = strict_order",
                                               "SET LOCAL hnsw.max_scan_tuples = 100000"]),
        ]
        force_index = ["SET LOCAL enable_seqscan = off"]
        for label, statements in variants:
            found, times, returned = [], [], []
            for org, q in zip(org_ids, literal, strict=True):
                rows, seconds = run(org_sql, [org, q], statements + force_index)
                found.append(set(rows))
                returned.append(len(rows))
                times.append(seconds)
            recall = statistics.mean(len(a & b) / max(1, len(b)) for a, b in zip(found, exact_org, strict=True))
            print(f"  1 of {orgs} orgs {label:<34s} {ms(times)}  recall@10 {recall:.3f}  "
                  f"mean results {statistics.mean(returned):.1f}")
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench.facts")


# --- 3. LoCoMo --------------------------------------------------------------------------------

_DIA = re.compile(r"^D:?(\d+):0*(\d+)$")


def dia_id(value: str) -> str:
    """``D:11:26`` → ``D11:26``, ``D30:05`` → ``D30:5``."""
    match = _DIA.match(str(value).strip())
    return f"D{int(match.group(1))}:{int(match.group(2))}" if match else str(value).strip()


def parse_when(value: str) -> datetime | None:
    for pattern in ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y"):
        try:
            return datetime.strptime(value.strip(), pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def load_conversation(path: Path, organization) -> dict:
    """Write one conversation through the memory services: turns as messages, observations as facts."""
    from memory.models import Message
    from memory.services.entities import entity_upsert
    from memory.services.facts import FactInput, facts_remember_many
    from memory.services.messages import MessageInput, messages_record

    data = json.loads(path.read_text())
    sessions = sorted(int(k.split("_")[1]) for k in data if re.fullmatch(r"session_\d+", k))
    people = {}
    for name in (data["speaker_a"], data["speaker_b"]):
        people[name] = entity_upsert(organization=organization, kind="person", name=name)[0]
    candidates = []
    for n in sessions:
        when = parse_when(data.get(f"session_{n}_date_time", ""))
        for turn in data[f"session_{n}"]:
            text = turn["text"]
            if turn.get("blip_caption"):
                text = f"{text} [shares a photo: {turn['blip_caption']}]"
            candidates.append(MessageInput(text=text, speaker=turn["speaker"], source_id=dia_id(turn["dia_id"]),
                                           occurred_at=when))
    started = time.perf_counter()
    results = messages_record(organization=organization, candidates=candidates)
    message_seconds = time.perf_counter() - started
    refused_messages = sum(1 for r in results if not isinstance(r, Message))
    by_id = {m.source_id: m for m in results if isinstance(m, Message)}
    facts = []
    for n in sessions:
        when = parse_when(data.get(f"session_{n}_date_time", ""))
        for speaker, items in (data.get(f"session_{n}_observation") or {}).items():
            for item in items:
                text, source = item[0], item[1] if len(item) > 1 else ""
                source = source[0] if isinstance(source, list) and source else source
                source = dia_id(source) if isinstance(source, str) else ""
                message = by_id.get(source)
                facts.append(FactInput(
                    text=text, category="other", subject=people.get(speaker), confidence=0.8,
                    source_type="message", source_id=source, source_message=message,
                    source_text=message.text if message else "", valid_from=when,
                ))
    started = time.perf_counter()
    written = facts_remember_many(organization=organization, candidates=facts)
    fact_seconds = time.perf_counter() - started
    outcomes = defaultdict(int)
    for result in written:
        outcomes[getattr(result, "outcome", "refused")] += 1
    questions = []
    for qa in data["qa"]:
        category = int(qa.get("category", 0))
        if category not in (1, 2, 3, 4):
            continue
        evidence = set()
        for item in qa.get("evidence", []):
            for part in re.split(r"[;,\s]+", str(item)):
                if part.strip():
                    evidence.add(dia_id(part))
        if evidence:
            questions.append({"question": qa["question"], "category": category, "evidence": evidence})
    return {"turns": len(candidates), "refused_messages": refused_messages, "facts": len(facts),
            "fact_outcomes": dict(outcomes), "questions": questions, "message_seconds": message_seconds,
            "fact_seconds": fact_seconds}


def evaluate(name: str, runs: list[tuple[object, dict, list[float]]], options, *, include_facts: bool,
             include_messages: bool) -> dict:
    """Evidence recall@k (any evidence turn among the top k results' turns), MRR, latency, per category."""
    from memory import retrieval
    from memory.models import Fact, Message

    per_category: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    foreign = 0
    for organization, question, vector in runs:
        started = time.perf_counter()
        hits = retrieval.search(organization=organization, query=question["question"], limit=20,
                                include_facts=include_facts, include_messages=include_messages, options=options,
                                query_vector=vector)
        seconds = time.perf_counter() - started
        fact_ids = [h.fact.pk for h in hits if h.fact is not None] + [f.pk for h in hits for f in h.related_facts]
        message_ids = [h.message.pk for h in hits if h.message is not None]
        foreign += Fact.objects.dangerously_unscoped().filter(pk__in=fact_ids).exclude(
            organization=organization).count()
        foreign += Message.objects.dangerously_unscoped().filter(pk__in=message_ids).exclude(
            organization=organization).count()
        first = 0
        seen: set[str] = set()
        scores = per_category[question["category"]]
        recalls = {1: 0.0, 5: 0.0, 10: 0.0, 20: 0.0}
        for rank, hit in enumerate(hits, start=1):
            seen.update(hit.source_ids)
            if not first and seen & question["evidence"]:
                first = rank
            if rank in recalls:
                recalls[rank] = 1.0 if seen & question["evidence"] else 0.0
        for k in recalls:
            if k > len(hits):
                recalls[k] = 1.0 if seen & question["evidence"] else 0.0
        for k, value in recalls.items():
            scores[f"r@{k}"].append(value)
        scores["mrr"].append(1.0 / first if first else 0.0)
        scores["latency"].append(seconds)
    return {"name": name, "per_category": per_category, "foreign": foreign}


def print_result(result: dict) -> None:
    print(f"\n-- {result['name']}  (results from another organization: {result['foreign']})")
    print("   category          n    R@1    R@5   R@10   R@20    MRR   latency")
    everything: dict[str, list[float]] = defaultdict(list)
    labels = {1: "1 multi-hop", 2: "2 temporal", 3: "3 open-domain", 4: "4 single-hop"}
    for category in sorted(result["per_category"]):
        scores = result["per_category"][category]
        for key, values in scores.items():
            everything[key] += values
        print(f"   {labels[category]:<15s} {len(scores['mrr']):4d} " + " ".join(
            f"{100 * statistics.mean(scores[k]):6.1f}" for k in ("r@1", "r@5", "r@10", "r@20"))
            + f" {statistics.mean(scores['mrr']):6.3f}   {ms(scores['latency'])}")
    print(f"   {'all 1-4':<15s} {len(everything['mrr']):4d} " + " ".join(
        f"{100 * statistics.mean(everything[k]):6.1f}" for k in ("r@1", "r@5", "r@10", "r@20"))
        + f" {statistics.mean(everything['mrr']):6.3f}   {ms(everything['latency'])}")


def bench_locomo(directory: Path, which: str, configs: str) -> None:
    from accounts.models import Organization
    from memory import embeddings, retrieval

    if not directory.is_dir():
        print(f"LoCoMo folder {directory} not found; skipped")
        return
    files = sorted(directory.glob("*.json"))
    if which:
        wanted = {w.strip() for w in which.split(",")}
        files = [f for f in files if f.stem in wanted]
    runs = []
    total_turns = total_facts = 0
    started = time.perf_counter()
    for path in files:
        organization = Organization.objects.create(slug=f"bench-locomo-{path.stem}", name=f"LoCoMo {path.stem}")
        loaded = load_conversation(path, organization)
        total_turns += loaded["turns"]
        total_facts += loaded["facts"]
        print(f"  conversation {path.stem}: {loaded['turns']} turns ({loaded['refused_messages']} refused by the "
              f"privacy filter) in {loaded['message_seconds']:.1f} s, {loaded['facts']} observation facts "
              f"{loaded['fact_outcomes']} in {loaded['fact_seconds']:.1f} s, {len(loaded['questions'])} questions")
        vectors = embeddings.embed_texts([q["question"] for q in loaded["questions"]])
        runs += [(organization, q, v) for q, v in zip(loaded["questions"], vectors, strict=True)]
    print(f"  loaded {total_turns} turns and {total_facts} facts in {time.perf_counter() - started:.0f} s; "
          f"{len(runs)} questions of categories 1-4")

    Opt = retrieval.SearchOptions
    plan = [
        ("BM25 only, turns", Opt(mode="text", text_ranker="bm25"), False, True),
        ("vector only, turns", Opt(mode="vector"), False, True),
        ("hybrid, turns", Opt(), False, True),
        ("hybrid, facts", Opt(), True, False),
        ("hybrid, turns + facts (default: weighted, vector 0.3)", Opt(), True, True),
        ("hybrid RRF k=10, turns + facts", Opt(fusion="rrf", vector_weight=0.5), True, True),
    ]
    if configs == "all":
        plan += [
            ("ts_rank_cd only, turns", Opt(mode="text", text_ranker="ts_rank_cd"), False, True),
            ("BM25 only, turns + facts", Opt(mode="text"), True, True),
            ("vector only, turns + facts", Opt(mode="vector"), True, True),
            ("hybrid RRF k=60, turns + facts", Opt(fusion="rrf", rrf_k=60), True, True),
            ("hybrid RRF k=2, turns + facts", Opt(fusion="rrf", rrf_k=2), True, True),
            ("hybrid weighted 0.5, turns + facts", Opt(vector_weight=0.5), True, True),
            ("hybrid weighted 0.2, turns + facts", Opt(vector_weight=0.2), True, True),
            ("hybrid ts_rank_cd, turns + facts", Opt(text_ranker="ts_rank_cd"), True, True),
            ("hybrid, turns + facts, ungrouped", Opt(group_sources=False), True, True),
            ("hybrid, turns + facts, 100 candidates", Opt(candidates=100), True, True),
        ]
    for name, options, include_facts, include_messages in plan:
        result = evaluate(name, runs, options, include_facts=include_facts, include_messages=include_messages)
        print_result(result)


def main() -> None:
    args = parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    setup_django(args.db)
    print(f"memory benchmark on database {args.db}, {os.cpu_count()} CPUs, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    if not args.skip_throughput:
        print("\n== 1. embedding throughput ==")
        bench_throughput(args.threads)
    if not args.skip_scale:
        print("\n== 2. vector search at scale (synthetic clustered vectors) ==")
        bench_scale([int(s) for s in args.sizes.split(",") if s], args.orgs, args.queries)
    if not args.skip_locomo:
        print("\n== 3. LoCoMo retrieval (evidence recall, categories 1-4) ==")
        bench_locomo(Path(args.locomo_dir), args.conversations, args.configs)


if __name__ == "__main__":
    main()
