"""Per-user model call limits: a clear message, and exactly the limit passes under concurrency."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid

import pytest
from django.conf import settings as django_settings
from django.db import connection

from agents.llm import ratelimit
from agents.llm.errors import RateLimited
from agents.llm.gateway import complete
from agents.llm.services import llm_settings_update
from agents.models import CallOutcome, LLMCall
from tests.agents.ratelimit_child import race

MESSAGES = [{"role": "user", "content": "hello"}]


def test_exactly_the_limit_passes_when_threads_race():
    """80 threads hitting one user's counter at once: exactly 50 are allowed."""
    key = f"test:ratelimit:{uuid.uuid4().hex}"
    barrier = threading.Barrier(80)
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker():
        barrier.wait()
        decision = ratelimit.hit(key=key, limit=50)
        with lock:
            allowed.append(decision.allowed)

    threads = [threading.Thread(target=worker) for _ in range(80)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 50
    assert allowed.count(False) == 30
    ratelimit.redis_client().delete(key)


def test_exactly_the_limit_passes_when_processes_race():
    """Six processes of 20 calls each against a limit of 50: exactly 50 are allowed in total."""
    key = f"test:ratelimit:{uuid.uuid4().hex}"
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 3
    with context.Pool(6) as pool:
        pending = pool.starmap_async(race, [(django_settings.REDIS.app_url(), key, 50, 20, start_at)] * 6)
        counts = pending.get(timeout=120)
    assert sum(counts) == 50
    ratelimit.redis_client().delete(key)


def test_a_refused_hit_says_when_to_retry():
    """Past the limit the decision carries the seconds until the oldest call leaves the window."""
    key = f"test:ratelimit:{uuid.uuid4().hex}"
    for _ in range(2):
        assert ratelimit.hit(key=key, limit=2, window_seconds=60).allowed
    refused = ratelimit.hit(key=key, limit=2, window_seconds=60)
    assert (refused.allowed, refused.count) == (False, 2)
    assert 55 <= refused.retry_after <= 60
    ratelimit.redis_client().delete(key)


@pytest.mark.django_db
def test_the_gateway_refuses_past_the_hourly_limit_with_a_clear_message(settings, tenant_a):
    """The user's call past the hourly limit is refused, recorded, and told when to try again; others go on."""
    settings.LLM_DEPLOYMENTS = {}
    settings.LLM_USER_CALLS_PER_HOUR = 3
    for _ in range(3):
        complete(organization=tenant_a.organization, user=tenant_a.member, role="assistant", messages=MESSAGES)
    with pytest.raises(RateLimited) as caught:
        complete(organization=tenant_a.organization, user=tenant_a.member, role="assistant", messages=MESSAGES)
    assert caught.value.status_code == 429
    assert caught.value.message.startswith("You have reached the limit of 3 AI model calls per hour. Try again in ")
    assert caught.value.retry_after > 3500
    refused = LLMCall.objects.for_org(tenant_a.organization).get(outcome=CallOutcome.REFUSED)
    assert refused.user == tenant_a.member
    complete(organization=tenant_a.organization, user=tenant_a.manager, role="assistant", messages=MESSAGES)
    complete(organization=tenant_a.organization, user=None, role="extractor", messages=MESSAGES)  # system work


@pytest.mark.django_db
def test_an_organization_can_set_its_own_limit(settings, tenant_a):
    """calls_per_hour_per_user in the organization's settings replaces the default."""
    settings.LLM_DEPLOYMENTS = {}
    llm_settings_update(organization=tenant_a.organization, actor=tenant_a.admin, calls_per_hour_per_user=1)
    complete(organization=tenant_a.organization, user=tenant_a.member, role="assistant", messages=MESSAGES)
    with pytest.raises(RateLimited, match="limit of 1 AI model calls"):
        complete(organization=tenant_a.organization, user=tenant_a.member, role="assistant", messages=MESSAGES)


@pytest.mark.django_db(transaction=True)
def test_the_gateway_lets_exactly_the_limit_through_under_concurrent_calls(settings):
    """Twelve threads calling the gateway at once for one user with a limit of 5: five answers, seven refusals."""
    from tests.conftest import make_tenant

    settings.LLM_DEPLOYMENTS = {}
    settings.LLM_USER_CALLS_PER_HOUR = 5
    tenant = make_tenant("ratelimit-race", "Race Inc")
    complete(organization=tenant.organization, user=None, role="assistant", messages=MESSAGES)  # warm up LiteLLM
    barrier = threading.Barrier(12)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker():
        try:
            barrier.wait()
            try:
                complete(organization=tenant.organization, user=tenant.member, role="assistant", messages=MESSAGES)
                outcome = "ok"
            except RateLimited:
                outcome = "limited"
            with lock:
                outcomes.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["limited"] * 7 + ["ok"] * 5
    calls = LLMCall.objects.for_org(tenant.organization).filter(user=tenant.member)
    assert calls.filter(outcome=CallOutcome.OK).count() == 5
    assert calls.filter(outcome=CallOutcome.REFUSED).count() == 7
