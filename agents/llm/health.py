"""Deployment health: a one-token call with a short timeout, no retries, no records."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import openai

from agents.llm import conf
from agents.llm.router import litellm_module

if TYPE_CHECKING:
    from agents.llm.conf import DeploymentSpec

MAX_PARALLEL = 8


@dataclass(frozen=True)
class Health:
    deployment: str
    model: str
    locality: str
    ok: bool
    latency_ms: int
    error: str = ""


def check_deployment(spec: DeploymentSpec, *, timeout: float | None = None) -> Health:
    """Ask ``spec`` for one token; ok when any answer comes back in time."""
    litellm = litellm_module()
    timeout = timeout if timeout is not None else conf.health_timeout_seconds()
    params = {**spec.litellm_params(), "timeout": timeout, "stream_timeout": timeout}
    if spec.is_scripted:
        params["metadata"] = {"staffer": {"role": "system"}}
    started = time.monotonic()
    try:
        litellm.completion(messages=[{"role": "user", "content": "ping"}], max_tokens=1, num_retries=0, **params)
    except (openai.OpenAIError, httpx.HTTPError, TimeoutError, ConnectionError, ValueError) as exc:
        text = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return Health(spec.name, spec.model, spec.locality, False, int((time.monotonic() - started) * 1000),
                      text[:300])
    return Health(spec.name, spec.model, spec.locality, True, int((time.monotonic() - started) * 1000))


def check_deployments(specs: list[DeploymentSpec], *, timeout: float | None = None) -> list[Health]:
    """Check every deployment, in parallel, in the order given."""
    if not specs:
        return []
    litellm_module()  # import once, before the threads
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(specs))) as pool:
        return list(pool.map(lambda spec: check_deployment(spec, timeout=timeout), specs))
