from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

if TYPE_CHECKING:
    from rest_framework.views import APIView

from accounts.api.authentication import request_api_key


class UserOrApiKeyRateThrottle(SimpleRateThrottle):
    """One budget per API key, per user (session) or per anonymous IP.

    Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (``apikey``,
    ``user``, ``anon``); over the rate DRF answers 429 with ``Retry-After``.
    """

    def allow_request(self, request: Request, view: APIView) -> bool:
        api_key = request_api_key(request)
        if api_key is not None:
            self.scope = "apikey"
        elif request.user and request.user.is_authenticated:
            self.scope = "user"
        else:
            self.scope = "anon"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def __init__(self) -> None:  # rate is chosen per request in allow_request
        pass

    def charge_refused_key(self, request: Request) -> bool:
        """Charge a request with an unknown, revoked or expired key to its IP's ``anon`` budget.

        Called while authenticating (so ``request.user`` must not be touched):
        guessing keys costs the same budget as any anonymous request, and past
        it the answer is 429 instead of another 401.
        """
        self.scope = "anon"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.key = self.cache_format % {"scope": self.scope, "ident": f"ip:{self.get_ident(request)}"}
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) >= self.num_requests:
            return self.throttle_failure()
        return self.throttle_success()

    def get_rate(self) -> str | None:
        # Read the rates now, not at import, so settings (and overrides in tests) apply.
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError as exc:
            raise ImproperlyConfigured(f"no throttle rate set for {self.scope!r}") from exc

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        api_key = request_api_key(request)
        if api_key is not None:
            ident = f"key:{api_key.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
