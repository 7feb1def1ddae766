"""Test helpers: a deterministic bag-of-words embedder (no model) and shortcuts to write memory."""

from __future__ import annotations

import hashlib
import math
import re

DIMENSIONS = 384
_WORD = re.compile(r"[a-z0-9]+")


def hash_embed(texts):
    """Each word adds to one hashed dimension; vectors are L2-normalized. Same words, same vector."""
    vectors = []
    for text in texts:
        vector = [0.0] * DIMENSIONS
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
            vector[int.from_bytes(digest, "big") % DIMENSIONS] += 1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        if norm == 1.0 and not any(vector):
            vector[0] = 1.0
        vectors.append([x / norm for x in vector])
    return vectors


def constant_embed(texts):
    """Every text gets the same vector: only the organization filter can tell rows apart."""
    return [[1.0 / math.sqrt(DIMENSIONS)] * DIMENSIONS for _ in texts]
