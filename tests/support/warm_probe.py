"""Warm-ups a test worker runs: one records its process in Redis, one fails."""

from __future__ import annotations

import os

import redis
from django.conf import settings

KEY = "staffer:test:warmed"


def mark() -> None:
    redis.Redis.from_url(settings.REDIS.app_url()).sadd(KEY, str(os.getpid()))


def fail() -> None:
    raise RuntimeError("this warm-up fails on purpose")
