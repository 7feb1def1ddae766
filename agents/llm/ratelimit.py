"""Per-user model call limits: a sliding one-hour window in Redis, atomic under concurrency.

One Lua script per call drops the entries older than the window, counts the
rest and adds the new one only while the count is under the limit; Redis runs
scripts one at a time, so of N racing callers exactly ``limit`` pass whatever
the number of processes. The clock is Redis's own (``TIME``), so workers with
skewed clocks agree. If Redis cannot be reached the call is let through and a
warning is logged (Redis down stops the workers too; the budgets still hold).
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from dataclasses import dataclass

import redis

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 3600
KEY_PREFIX = "staffer:llm:calls:user:"

# KEYS[1]: the user's key. ARGV: window (ms), limit, member id.
# Returns {allowed (0/1), count in window, ms until the oldest entry leaves}.
_SCRIPT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, count + 1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = window
if oldest[2] then wait = tonumber(oldest[2]) + window - now end
return {0, count, wait}
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    count: int
    limit: int
    retry_after: int  # seconds


_client_lock = threading.Lock()
_client: redis.Redis | None = None


def redis_client() -> redis.Redis:
    """The project's Redis (the database for the project's own keys)."""
    global _client
    if _client is None:
        from django.conf import settings

        with _client_lock:
            if _client is None:
                _client = redis.Redis.from_url(settings.REDIS.app_url(), socket_timeout=2, socket_connect_timeout=2)
    return _client


def hit(
    *, key: str, limit: int, window_seconds: int = WINDOW_SECONDS, client: redis.Redis | None = None
) -> RateDecision:
    """Count one call against ``key``; say whether it is within ``limit`` calls per window."""
    client = client or redis_client()
    result = client.eval(_SCRIPT, 1, key, window_seconds * 1000, limit, uuid.uuid4().hex)
    allowed, count, wait_ms = (int(v) for v in result)  # type: ignore[union-attr]
    return RateDecision(allowed=bool(allowed), count=count, limit=limit, retry_after=math.ceil(wait_ms / 1000))


def user_key(user_id: int) -> str:
    return f"{KEY_PREFIX}{user_id}"


def user_call_allowed(*, user_id: int, limit: int) -> RateDecision:
    """``hit`` for a user's model calls; lets the call through (logged) if Redis is unreachable."""
    try:
        return hit(key=user_key(user_id), limit=limit)
    except redis.RedisError as exc:
        logger.warning("LLM rate limit not checked (Redis unavailable): %s", exc)
        return RateDecision(allowed=True, count=0, limit=limit, retry_after=0)


def reset_user(user_id: int) -> None:
    redis_client().delete(user_key(user_id))
