"""Settings of the memory app, read at call time (tests override them)."""

from __future__ import annotations

from django.conf import settings

EMBEDDING_DIMENSIONS = 384
TEXT_SEARCH_CONFIG = "english"

MAX_VALUE_CHARS = 1000
MAX_TEXT_CHARS = 2000
MAX_SOURCE_TEXT_CHARS = 8000
MAX_NAME_CHARS = 200
MAX_PREDICATE_CHARS = 100


def embedding_model() -> str:
    """The sentence-transformers model: a name the installed wheels provide, or a folder."""
    return str(getattr(settings, "MEMORY_EMBEDDING_MODEL", "all-MiniLM-L6-v2"))


def embedder_path() -> str:
    """Dotted path of a function ``texts -> vectors`` replacing the model (tests); empty: the model."""
    return str(getattr(settings, "MEMORY_EMBEDDER", "") or "")


def embedding_threads() -> int:
    return int(getattr(settings, "MEMORY_EMBEDDING_THREADS", 1))


def embedding_batch_size() -> int:
    return int(getattr(settings, "MEMORY_EMBEDDING_BATCH_SIZE", 64))


def exact_search_max_rows() -> int:
    """Tenants with at most this many rows are searched exactly; larger ones through HNSW iterative scan."""
    return int(getattr(settings, "MEMORY_EXACT_SEARCH_MAX_ROWS", 20000))


def hnsw_ef_search() -> int:
    return int(getattr(settings, "MEMORY_HNSW_EF_SEARCH", 200))


def default_expiry_days() -> int:
    return int(getattr(settings, "MEMORY_DEFAULT_EXPIRY_DAYS", 180))


def dedup_max_distance() -> float:
    """Free-text facts closer than this (cosine distance) to an existing one reinforce it; 0: exact text only."""
    return float(getattr(settings, "MEMORY_DEDUP_MAX_DISTANCE", 0.03))


def hnsw_max_scan_tuples() -> int:
    """How many index tuples an iterative HNSW scan may visit before it stops (pgvector's default: 20000)."""
    return int(getattr(settings, "MEMORY_HNSW_MAX_SCAN_TUPLES", 100000))
