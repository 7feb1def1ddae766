"""Secrets that are shown once and stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
