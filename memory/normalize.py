"""Keys for lookups and deduplication: case, spacing and punctuation do not make a new fact."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACES = re.compile(r"\s+")
_EDGE_PUNCTUATION = " \t\n.,;:!?\"'`()[]{}"
_PREDICATE_CHARS = re.compile(r"[^a-z0-9]+")


def normalize_text(text: str) -> str:
    """Lower case, NFKC, single spaces, no punctuation at the ends."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    return _SPACES.sub(" ", text).strip(_EDGE_PUNCTUATION)


def text_key(text: str) -> str:
    return hashlib.sha256(normalize_text(text).encode()).hexdigest()


def value_key(value: str) -> str:
    """The normalized value; past 200 characters, a prefix and a hash (fits an index, keeps equality)."""
    normalized = normalize_text(value)
    if len(normalized) <= 200:
        return normalized
    return normalized[:180] + "#" + hashlib.sha256(normalized.encode()).hexdigest()[:32]


def predicate_key(predicate: str) -> str:
    """``"Works on"`` → ``"works_on"``."""
    return _PREDICATE_CHARS.sub("_", normalize_text(predicate)).strip("_")


def name_key(name: str) -> str:
    return normalize_text(name)
