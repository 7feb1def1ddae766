from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import ApiKey, User
from accounts.services.api_keys import api_key_authenticate


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Api-Key stf_…`` (or ``Bearer stf_…``).

    The user is the key's creator; the key's own scopes and organization bind
    what it may do (see ``OrgScopedViewSet``). A refused key is charged to the
    client IP's anonymous rate, so guessing keys ends in 429.
    """

    keywords = ("api-key", "bearer")

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, secret = header.partition(" ")
        if keyword.lower() not in self.keywords:
            return None
        secret = secret.strip()
        if not secret:
            raise exceptions.AuthenticationFailed("the Authorization header has no key")
        api_key = api_key_authenticate(secret)
        if api_key is None or not api_key.created_by.is_active:
            from accounts.api.throttling import UserOrApiKeyRateThrottle  # it reads keys from requests

            throttle = UserOrApiKeyRateThrottle()
            if not throttle.charge_refused_key(request):
                raise exceptions.Throttled(wait=throttle.wait())
            raise exceptions.AuthenticationFailed("this API key is unknown, revoked or expired")
        return api_key.created_by, api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Api-Key realm="api"'


def request_api_key(request: Any) -> ApiKey | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiKey) else None
