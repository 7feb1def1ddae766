"""API throttling: one budget per user and one per API key, answered with 429 and Retry-After."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.roles import Scope
from tests.accounts.factories import make_api_key


@pytest.fixture
def low_rates(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "3/minute", "apikey": "2/minute", "anon": "2/minute"},
    }
    cache.clear()  # this run's own Redis database (STAFFER_REDIS_DB_BASE)
    yield
    cache.clear()


def _key_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    return client


def _statuses(client: APIClient, url: str, n: int) -> list[int]:
    return [client.get(url).status_code for _ in range(n)]


def test_user_over_the_rate_gets_429_with_retry_after(low_rates, tenant_a, client_for):
    """A logged-in user past the user rate gets 429 and a Retry-After header in seconds."""
    client = client_for(tenant_a.member)
    url = f"/api/v1/orgs/{tenant_a.slug}/members/"
    assert _statuses(client, url, 3) == [200, 200, 200]
    response = client.get(url)
    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= 60
    assert client.get("/api/v1/orgs/").status_code == 429  # the budget is per user, across endpoints


def test_user_and_key_budgets_are_independent(low_rates, tenant_a, client_for):
    """A user's exhausted budget does not block their API key, nor another user, and vice versa."""
    url = f"/api/v1/orgs/{tenant_a.slug}/members/"
    _key, secret = make_api_key(tenant_a.organization, tenant_a.admin, scopes=[Scope.MEMBERS_READ])
    _other_key, other_secret = make_api_key(tenant_a.organization, tenant_a.admin, scopes=[Scope.MEMBERS_READ])
    key = _key_client(secret)

    assert _statuses(key, url, 2) == [200, 200]
    exhausted = key.get(url)
    assert exhausted.status_code == 429
    assert int(exhausted["Retry-After"]) > 0

    assert _statuses(client_for(tenant_a.admin), url, 3) == [200, 200, 200]  # the key's creator in person
    assert client_for(tenant_a.admin).get(url).status_code == 429
    assert _statuses(_key_client(other_secret), url, 2) == [200, 200]  # another key of the same person
    assert client_for(tenant_a.viewer).get(url).status_code == 200  # another person


def test_guessing_keys_is_charged_to_the_ip_and_ends_in_429(low_rates, tenant_a):
    """Unknown keys answer 401 until the IP's anonymous budget is spent, then 429 with Retry-After; a valid key
    from the same IP still works (its own budget) and another IP is not affected."""
    url = f"/api/v1/orgs/{tenant_a.slug}/members/"
    guesser = _key_client("stf_not_a_real_key_0000000000000000")
    assert _statuses(guesser, url, 2) == [401, 401]
    throttled = guesser.get(url)
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert _key_client("stf_another_guess").get(url).status_code == 429  # per IP, whatever the key
    _key, secret = make_api_key(tenant_a.organization, tenant_a.admin, scopes=[Scope.MEMBERS_READ])
    assert _key_client(secret).get(url).status_code == 200
    elsewhere = APIClient(REMOTE_ADDR="203.0.113.9")
    elsewhere.credentials(HTTP_AUTHORIZATION="Api-Key stf_wrong")
    assert elsewhere.get(url).status_code == 401


def test_rates_are_configurable_in_settings():
    """The rates come from settings (THROTTLE_RATE_* environment variables in deployment)."""
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert {"user", "apikey", "anon"} <= set(rates)
