"""Derive the broker, cache and channel-layer settings from one Redis location.

Logical databases are offset by ``base`` so that several independent runs
(tests in parallel, a demo beside a test run) can share one server.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RedisLocation:
    url: str
    base: int = 0

    @property
    def is_socket(self) -> bool:
        return self.url.startswith("unix://")

    @property
    def socket_path(self) -> str:
        return urlsplit(self.url).path

    def _with_db(self, db: int) -> str:
        if self.is_socket:
            return f"unix://{self.socket_path}?db={db}"
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}/{db}"

    def broker_url(self) -> str:
        db = self.base
        if self.is_socket:
            return f"redis+socket://{self.socket_path}?virtual_host={db}"
        return self._with_db(db)

    def result_backend_url(self) -> str:
        db = self.base + 1
        if self.is_socket:
            return f"redis+socket://{self.socket_path}?virtual_host={db}"
        return self._with_db(db)

    def cache_url(self) -> str:
        return self._with_db(self.base + 2)

    def channels_host(self) -> dict[str, object]:
        # redis-py's default 5 s socket timeout closes idle consumers: disable it.
        return {
            "address": self._with_db(self.base + 3),
            "socket_timeout": None,
            "socket_connect_timeout": 5,
            "max_connections": 1000,
        }

    def app_url(self) -> str:
        """Database for the project's own keys (worker heartbeats, locks)."""
        return self._with_db(self.base + 2)
