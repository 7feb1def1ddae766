"""Memory tests: a fast deterministic embedder by default; the real model, loaded once, where asked."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _hash_embeddings(settings):
    settings.MEMORY_EMBEDDER = "tests.memory.support.hash_embed"
    settings.MEMORY_DEDUP_MAX_DISTANCE = 0.0


@pytest.fixture(scope="session")
def minilm():
    """all-MiniLM-L6-v2 from the installed wheel, loaded once per test session."""
    from memory import embeddings

    return embeddings.load_model("all-MiniLM-L6-v2")


@pytest.fixture
def real_embeddings(minilm, settings):
    """Use the real model in this test."""
    settings.MEMORY_EMBEDDER = ""
    settings.MEMORY_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
    return minilm


@pytest.fixture
def org_a(tenant_a):
    return tenant_a.organization


@pytest.fixture
def org_b(tenant_b):
    return tenant_b.organization
