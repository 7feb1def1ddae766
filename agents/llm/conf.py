"""The gateway's configuration: deployments, tiers and tunables, read from Django settings at call time.

``LLM_DEPLOYMENTS`` names the models the gateway may call::

    LLM_DEPLOYMENTS = {
        "gpt-4o-mini": {"model": "openai/gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"},
        "claude":      {"model": "anthropic/claude-3-5-sonnet-20240620"},
        "gemini":      {"model": "gemini/gemini-1.5-flash"},
        "local-qwen":  {"model": "hosted_vllm/Qwen/Qwen2.5-7B-Instruct", "api_base": "http://gpu1:8000/v1",
                        "input_cost_per_token": "0.00000005", "output_cost_per_token": "0.0000001"},
        "llama":       {"model": "ollama_chat/llama3.1", "api_base": "http://localhost:11434"},
    }
    LLM_TIERS = {"planner": ["claude", "gpt-4o-mini"], "worker": ["local-qwen", "gpt-4o-mini"],
                 "reviewer": ["gpt-4o-mini"], "fast": ["llama", "local-qwen"]}

A deployment is on-prem ("local") when its provider is a self-hosted one
(``hosted_vllm``, ``ollama``, ``ollama_chat``, …) or it says ``"local": true``
(an ``openai/…`` model served by your own OpenAI-compatible server). API keys
are never written here: ``api_key_env`` names the environment variable, or the
provider's standard variable (``OPENAI_API_KEY``, …) is used.

With no deployment configured the offline scripted model answers every tier
(see ``agents.llm.scripted``) and its output is labelled as scripted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

TIERS = ("planner", "worker", "reviewer", "fast")

SCRIPTED_MODEL = "scripted/staffer"
SCRIPTED_DEPLOYMENT = "scripted"

LOCAL_PROVIDERS = frozenset(
    {"hosted_vllm", "vllm", "ollama", "ollama_chat", "lm_studio", "llamafile", "xinference", "triton"}
)

DEFAULT_ROLE_TIERS = {
    "manager": "planner",
    "employee": "worker",
    "supervisor": "reviewer",
    "classifier": "fast",
    "extractor": "fast",
    "assistant": "worker",
    "system": "fast",
}
# A bumped tier: one step up in capability.
DEFAULT_TIER_ESCALATION = {"fast": "worker", "worker": "planner", "reviewer": "planner"}

# LiteLLM retries per exception type. A timing-out deployment is not retried
# (the next deployment in the chain is likely faster); a 500 gets one retry.
DEFAULT_RETRY_POLICY = {
    "TimeoutErrorRetries": 0,
    "InternalServerErrorRetries": 1,
    "RateLimitErrorRetries": 2,
    "BadRequestErrorRetries": 0,
    "AuthenticationErrorRetries": 0,
    "ContentPolicyViolationErrorRetries": 0,
}

_KNOWN_KEYS = frozenset(
    {"model", "api_base", "api_key_env", "local", "timeout", "input_cost_per_token", "output_cost_per_token",
     "max_tokens", "rpm", "tpm"}
)


@dataclass(frozen=True)
class DeploymentSpec:
    """One callable model: a LiteLLM model string plus where it lives and what it costs."""

    name: str
    model: str
    api_base: str = ""
    api_key_env: str = ""
    locality: str = "cloud"  # local | cloud | scripted
    timeout: float | None = None
    input_cost_per_token: Decimal | None = None
    output_cost_per_token: Decimal | None = None
    max_tokens: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    origin: str = "settings"  # settings | organization | builtin
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def provider(self) -> str:
        return self.model.split("/", 1)[0]

    @property
    def is_local(self) -> bool:
        return self.locality == "local"

    @property
    def is_scripted(self) -> bool:
        return self.locality == "scripted"

    def litellm_params(self) -> dict[str, Any]:
        """The ``litellm_params`` of this deployment in a Router's model list (secrets resolved here)."""
        params: dict[str, Any] = {"model": self.model}
        if self.api_base:
            params["api_base"] = self.api_base
        if self.api_key_env:
            params["api_key"] = os.environ.get(self.api_key_env, "")
        elif self.provider == "openai" and self.api_base and not os.environ.get("OPENAI_API_KEY"):
            # An OpenAI-compatible server of one's own usually ignores the key, but the client needs one.
            params["api_key"] = "not-needed"
        params["timeout"] = self.timeout if self.timeout is not None else timeout_seconds()
        params["stream_timeout"] = params["timeout"]
        for key in ("max_tokens", "rpm", "tpm"):
            value = getattr(self, key)
            if value is not None:
                params[key] = value
        return params

    def fingerprint(self) -> tuple[Any, ...]:
        return (self.name, self.model, self.api_base, self.api_key_env, self.locality, self.timeout,
                self.max_tokens, self.rpm, self.tpm)


def _decimal(name: str, key: str, value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"deployment {name!r}: {key} must be a number") from exc
    if result < 0:
        raise ValueError(f"deployment {name!r}: {key} may not be negative")
    return result


def parse_deployment(name: str, raw: Any, *, origin: str = "settings") -> DeploymentSpec:
    """Validate one deployment entry; raise ``ValueError`` with a readable reason."""
    if not isinstance(raw, dict):
        raise ValueError(f"deployment {name!r} must be an object with at least a 'model'")
    unknown = set(raw) - _KNOWN_KEYS
    if unknown:
        raise ValueError(f"deployment {name!r}: unknown keys {', '.join(sorted(unknown))}")
    model = str(raw.get("model") or "").strip()
    if "/" not in model:
        raise ValueError(f"deployment {name!r}: model must be 'provider/model', e.g. 'openai/gpt-4o-mini'")
    api_base = str(raw.get("api_base") or "").strip()
    if api_base and not api_base.startswith(("http://", "https://")):
        raise ValueError(f"deployment {name!r}: api_base must be an http(s) URL")
    provider = model.split("/", 1)[0]
    if provider == "scripted":
        locality = "scripted"
    elif "local" in raw:
        locality = "local" if bool(raw["local"]) else "cloud"
    else:
        locality = "local" if provider in LOCAL_PROVIDERS else "cloud"
    timeout = raw.get("timeout")
    if timeout is not None:
        try:
            timeout = float(timeout)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"deployment {name!r}: timeout must be a number of seconds") from exc
        if timeout <= 0:
            raise ValueError(f"deployment {name!r}: timeout must be positive")
    ints: dict[str, int | None] = {}
    for key in ("max_tokens", "rpm", "tpm"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise ValueError(f"deployment {name!r}: {key} must be a positive integer")
        ints[key] = value
    return DeploymentSpec(
        name=name,
        model=model,
        api_base=api_base,
        api_key_env=str(raw.get("api_key_env") or ""),
        locality=locality,
        timeout=timeout,
        input_cost_per_token=_decimal(name, "input_cost_per_token", raw.get("input_cost_per_token")),
        output_cost_per_token=_decimal(name, "output_cost_per_token", raw.get("output_cost_per_token")),
        origin=origin,
        **ints,
    )


SCRIPTED_SPEC = DeploymentSpec(name=SCRIPTED_DEPLOYMENT, model=SCRIPTED_MODEL, locality="scripted", origin="builtin")


def configured_deployments() -> dict[str, DeploymentSpec]:
    """``LLM_DEPLOYMENTS`` parsed; empty when no model is configured."""
    raw = getattr(settings, "LLM_DEPLOYMENTS", {}) or {}
    if not isinstance(raw, dict):
        raise ImproperlyConfigured("LLM_DEPLOYMENTS must be a mapping of name to deployment")
    try:
        return {name: parse_deployment(name, value) for name, value in raw.items()}
    except ValueError as exc:
        raise ImproperlyConfigured(f"LLM_DEPLOYMENTS: {exc}") from exc


def configured_tiers() -> dict[str, list[str]]:
    raw = getattr(settings, "LLM_TIERS", {}) or {}
    if not isinstance(raw, dict):
        raise ImproperlyConfigured("LLM_TIERS must be a mapping of tier to a list of deployment names")
    return {str(tier): [str(n) for n in names] for tier, names in raw.items()}


def role_tiers() -> dict[str, str]:
    return {**DEFAULT_ROLE_TIERS, **(getattr(settings, "LLM_ROLE_TIERS", {}) or {})}


def tier_escalation() -> dict[str, str]:
    return {**DEFAULT_TIER_ESCALATION, **(getattr(settings, "LLM_TIER_ESCALATION", {}) or {})}


def long_input_tokens() -> int:
    """An input at least this long (estimated tokens) bumps the tier one step."""
    return int(getattr(settings, "LLM_LONG_INPUT_TOKENS", 6000))


def complex_task_types() -> frozenset[str]:
    """Task types that bump the tier one step."""
    return frozenset(getattr(settings, "LLM_COMPLEX_TASK_TYPES", ("planning", "analysis", "legal", "finance")))


def escalate_after_failures() -> int:
    """This many earlier failures of the same work bump the tier one step."""
    return int(getattr(settings, "LLM_ESCALATE_AFTER_FAILURES", 2))


def hybrid_mode() -> bool:
    return bool(getattr(settings, "LLM_HYBRID_MODE", False))


def timeout_seconds() -> float:
    return float(getattr(settings, "LLM_TIMEOUT_SECONDS", 60))


def num_retries() -> int:
    """Router retries for errors the retry policy does not name.

    Measured on LiteLLM 1.106.2: two deployments under one model name, one of
    them failing, succeeded 8 of 10 times with the defaults and 10 of 10 with
    ``num_retries=3`` or ``allowed_fails=0``. The tier groups set both
    (``allowed_fails=0`` on each member, see ``agents.llm.router``).
    """
    return int(getattr(settings, "LLM_NUM_RETRIES", 3))


def retry_policy() -> dict[str, int]:
    return {**DEFAULT_RETRY_POLICY, **(getattr(settings, "LLM_RETRY_POLICY", {}) or {})}


def cooldown_seconds() -> float:
    return float(getattr(settings, "LLM_COOLDOWN_SECONDS", 30))


def user_calls_per_hour() -> int:
    return int(getattr(settings, "LLM_USER_CALLS_PER_HOUR", 50))


def currency() -> str:
    """Costs and budgets are in this currency (LiteLLM's price map is in US dollars)."""
    return str(getattr(settings, "LLM_CURRENCY", "USD"))


def budget_warning_percent() -> int:
    return int(getattr(settings, "LLM_BUDGET_WARNING_PERCENT", 80))


def health_timeout_seconds() -> float:
    return float(getattr(settings, "LLM_HEALTH_TIMEOUT_SECONDS", 5))
