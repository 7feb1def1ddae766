"""LiteLLM, imported lazily, and the Routers built from deployment lists.

Importing LiteLLM takes 4–7 s, so nothing imports it at module level; the
first call does (``litellm_module()``), with the offline price map
(``LITELLM_LOCAL_MODEL_COST_MAP``) and the scripted provider registered.

A Router holds, for a list of deployments:

- one model group per deployment, named after it: the gateway walks a route's
  chain deployment by deployment (so it knows which one answered and applies
  its own hybrid and on-prem policy), each hop with LiteLLM's retries and
  timeouts;
- one model group per tier holding the tier's deployments, for callers that
  want LiteLLM's own load balancing (``router.completion(model="worker")``).
  Each member carries ``allowed_fails=0`` so that a failing member is cooled
  down at once and the retry lands on a healthy one (see ``conf.num_retries``).

Routers are cached per configuration (the deployments, tiers and retry
settings), so cooldowns and HTTP clients are shared across calls.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from types import ModuleType
from typing import TYPE_CHECKING, Any

from agents.llm import conf

if TYPE_CHECKING:
    from litellm import Router

    from agents.llm.conf import DeploymentSpec

_lock = threading.Lock()
_routers: OrderedDict[str, Router] = OrderedDict()
_MAX_ROUTERS = 64
_litellm: ModuleType | None = None


def litellm_module() -> ModuleType:
    """LiteLLM, imported on first use, offline price map, scripted provider registered."""
    global _litellm
    if _litellm is not None:
        return _litellm
    with _lock:
        if _litellm is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm

            from agents.llm.scripted import ScriptedLLM

            litellm.suppress_debug_info = True
            litellm.telemetry = False
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):  # it logs every call at INFO
                logging.getLogger(name).setLevel(logging.WARNING)
            providers = [p for p in (litellm.custom_provider_map or []) if p.get("provider") != "scripted"]
            providers.append({"provider": "scripted", "custom_handler": ScriptedLLM()})
            litellm.custom_provider_map = providers
            # The map is read when LiteLLM sets up its provider list; refresh it for a late registration.
            from litellm.utils import custom_llm_setup

            custom_llm_setup()
            _litellm = litellm
    return _litellm


def model_list(deployments: list[DeploymentSpec], tiers: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The Router's model list: a group per deployment and a group per tier."""
    by_name = {d.name: d for d in deployments}
    entries: list[dict[str, Any]] = [
        {"model_name": d.name, "litellm_params": d.litellm_params(), "model_info": {"id": d.name}}
        for d in deployments
    ]
    for tier, names in tiers.items():
        for name in names:
            spec = by_name.get(name)
            if spec is None:
                continue
            entries.append({
                "model_name": tier,
                "litellm_params": spec.litellm_params(),
                "model_info": {"id": f"{tier}/{name}", "allowed_fails": 0},
            })
    return entries


def _fingerprint(deployments: list[DeploymentSpec], tiers: dict[str, list[str]]) -> str:
    payload = {
        "deployments": [d.fingerprint() for d in deployments],
        "tiers": tiers,
        "retries": conf.num_retries(),
        "policy": conf.retry_policy(),
        "cooldown": conf.cooldown_seconds(),
        "timeout": conf.timeout_seconds(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def router_for(deployments: list[DeploymentSpec], tiers: dict[str, list[str]]) -> Router:
    """A Router for these deployments and tiers (cached by configuration)."""
    key = _fingerprint(deployments, tiers)
    with _lock:
        router = _routers.get(key)
        if router is not None:
            _routers.move_to_end(key)
            return router
    litellm = litellm_module()
    from litellm.types.router import RetryPolicy

    router = litellm.Router(
        model_list=model_list(deployments, tiers),
        num_retries=conf.num_retries(),
        retry_policy=RetryPolicy(**conf.retry_policy()),
        cooldown_time=conf.cooldown_seconds(),
        timeout=conf.timeout_seconds(),
    )
    with _lock:
        router = _routers.setdefault(key, router)
        while len(_routers) > _MAX_ROUTERS:
            _routers.popitem(last=False)
    return router


def reset_routers() -> None:
    """Forget every cached Router (tests; after a configuration change in a long-lived process)."""
    with _lock:
        _routers.clear()
