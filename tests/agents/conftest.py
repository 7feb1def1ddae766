"""Fixtures of the gateway tests: a local OpenAI-compatible server and deployments pointing at it."""

from __future__ import annotations

import pytest

from agents.llm import ratelimit
from agents.llm.router import reset_routers
from tests.agents.stub_openai import StubOpenAI


@pytest.fixture(scope="session")
def stub():
    server = StubOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_gateway_state():
    """No cached Router (cooldowns) and no rate-limit counters leak from one test into another."""
    reset_routers()
    client = ratelimit.redis_client()
    keys = list(client.scan_iter(match=f"{ratelimit.KEY_PREFIX}*"))
    if keys:
        client.delete(*keys)
    yield
    reset_routers()


@pytest.fixture
def fast_retries(settings):
    """No retry on the same deployment: failures go straight to the next one (keeps tests short)."""
    settings.LLM_RETRY_POLICY = {"InternalServerErrorRetries": 0, "RateLimitErrorRetries": 0}
    settings.LLM_NUM_RETRIES = 0


def deployment(stub: StubOpenAI, name: str, *, provider: str = "openai", **extra) -> dict:
    """A deployment entry for ``LLM_DEPLOYMENTS`` served by the stub under model ``name``."""
    return {"model": f"{provider}/{name}", "api_base": stub.base_url, **extra}
