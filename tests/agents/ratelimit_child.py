"""Run in a spawned process by the rate-limit race test: imports no Django, only the limiter and Redis."""

from __future__ import annotations

import time


def race(url: str, key: str, limit: int, calls: int, start_at: float) -> int:
    """Wait for the common start, then count how many of ``calls`` hits were allowed."""
    import redis

    from agents.llm.ratelimit import hit

    client = redis.Redis.from_url(url)
    time.sleep(max(0.0, start_at - time.time()))
    return sum(hit(key=key, limit=limit, client=client).allowed for _ in range(calls))
