"""The LLM gateway: every model call of the product goes through :func:`complete`.

It applies the organization's routing (tiers, on-prem pinning, hybrid mode),
the per-user rate limit and the budgets, walks the route's deployments with
fallback, checks structured output, streams, and records one
:class:`agents.models.LLMCall` per call, whatever the outcome.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
from django.db import DatabaseError

from agents.llm import budgets, conf, costs, ratelimit, routing, structured
from agents.llm.errors import (
    AllDeploymentsFailed,
    BudgetExhausted,
    InvalidLLMRequest,
    LLMError,
    NoDeploymentAvailable,
    RateLimited,
    StructuredOutputInvalid,
)
from agents.llm.router import litellm_module, router_for
from agents.llm.scenarios import ScriptRequest, select_scenario
from agents.llm.types import SCRIPTED_LABEL, LLMResult, ToolCall, Usage
from agents.models import AgentRole, CallOutcome, LLMCall

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

    from accounts.models import Organization, User
    from agents.llm.conf import DeploymentSpec
    from agents.models import OrganizationLLMSettings

logger = logging.getLogger(__name__)

MESSAGE_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
ERROR_TEXT_LIMIT = 500

QualityCheck = Callable[[LLMResult], "str | None"]


def _call_errors() -> tuple[type[BaseException], ...]:
    """What a failed model call raises (LiteLLM maps provider errors onto OpenAI's classes)."""
    import openai  # imported late: it takes seconds, like LiteLLM which needs it anyway
    from litellm.types.router import RouterRateLimitError

    return (openai.OpenAIError, httpx.HTTPError, TimeoutError, ConnectionError, RouterRateLimitError)


class _Unusable(Exception):
    """An answer that arrived but cannot be used (a quality failure): try the next deployment."""

    def __init__(self, reason: str, *, content: str = "", errors: list[str] | None = None,
                 usage: Usage | None = None, cost: Decimal | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.content = content
        self.errors = errors or []
        self.usage = usage or Usage()
        self.cost = cost if cost is not None else Decimal(0)


@dataclass
class _Hop:
    """One deployment's answer (possibly after a repair), with what it cost."""

    content: str
    tool_calls: list[ToolCall]
    parsed: Any
    finish_reason: str
    model: str
    usage: Usage
    cost: Decimal
    ttft_ms: int | None


class _StreamState:
    def __init__(self) -> None:
        self.emitted = 0
        self.first_token_at: float | None = None


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"


def _validate_request(*, role: str, messages: Any, tools: Any, attempt: int) -> None:
    if role not in AgentRole.values:
        raise InvalidLLMRequest(f"unknown role {role!r}; one of {', '.join(AgentRole.values)}", field="role")
    if not isinstance(messages, list) or not messages:
        raise InvalidLLMRequest("messages must be a non-empty list", field="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in MESSAGE_ROLES:
            raise InvalidLLMRequest(
                f"message {index} needs a role among {', '.join(sorted(MESSAGE_ROLES))}", field="messages"
            )
    if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)):
        raise InvalidLLMRequest("tools must be a list of OpenAI tool definitions", field="tools")
    if attempt < 1:
        raise InvalidLLMRequest("attempt starts at 1", field="attempt")


def _with_schema_instruction(messages: list[dict[str, Any]], schema: dict[str, Any]) -> list[dict[str, Any]]:
    leading = 0
    while leading < len(messages) and messages[leading].get("role") == "system":
        leading += 1
    return [*messages[:leading], structured.schema_instruction(schema), *messages[leading:]]


def _usage_of(response: Any) -> Usage:
    usage = getattr(response, "usage", None)
    if usage is None:
        return Usage()
    return Usage(int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0))


def _tool_calls_of(message: Any) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for index, raw in enumerate(getattr(message, "tool_calls", None) or []):
        function = raw.function
        raw_arguments = function.arguments or "{}"
        try:
            arguments = json.loads(raw_arguments)
        except json.JSONDecodeError as exc:
            raise _Unusable(f"the arguments of tool call {function.name!r} are not JSON: {exc.msg}") from exc
        if not isinstance(arguments, dict):
            raise _Unusable(f"the arguments of tool call {function.name!r} are not a JSON object")
        calls.append(ToolCall(id=raw.id or f"call_{index}", name=function.name or "", arguments=arguments,
                              raw_arguments=raw_arguments))
    return calls


class _Caller:
    """Calls one deployment through the Router, plain or streamed."""

    def __init__(self, *, router: Any, hint: dict[str, Any], tools: list[dict[str, Any]] | None,
                 tool_choice: Any, response_schema: dict[str, Any] | None, max_tokens: int | None,
                 temperature: float | None, timeout: float | None, on_token: Callable[[str], None] | None,
                 started: float) -> None:
        self.router = router
        self.hint = hint
        self.tools = tools
        self.tool_choice = tool_choice
        self.response_schema = response_schema
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.timeout = timeout
        self.on_token = on_token
        self.started = started

    def kwargs(self, deployment: DeploymentSpec, *, stream: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if deployment.is_scripted:
            kwargs["metadata"] = {"staffer": self.hint}
        if self.tools:
            kwargs["tools"] = self.tools
            if self.tool_choice is not None:
                kwargs["tool_choice"] = self.tool_choice
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
            kwargs["stream_timeout"] = self.timeout
        if self.response_schema is not None and not deployment.is_scripted:
            kwargs["response_format"] = structured.response_format(self.response_schema)
            kwargs["drop_params"] = True
        if stream:
            kwargs["stream"] = True
            if not deployment.is_scripted:
                kwargs["stream_options"] = {"include_usage": True}
        return kwargs

    def call(self, deployment: DeploymentSpec, messages: list[dict[str, Any]], *, stream: bool,
             state: _StreamState) -> tuple[Any, int | None]:
        """The LiteLLM response (a full one, assembled when streamed) and the time to first token."""
        response = self.router.completion(model=deployment.name, messages=messages,
                                          **self.kwargs(deployment, stream=stream))
        if not stream:
            return response, None
        chunks = []
        for chunk in response:
            chunks.append(chunk)
            delta = chunk.choices[0].delta if getattr(chunk, "choices", None) else None
            if delta is None:
                continue
            if state.first_token_at is None and (delta.content or getattr(delta, "tool_calls", None)):
                state.first_token_at = time.monotonic()
            if delta.content:
                state.emitted += 1
                if self.on_token is not None:
                    self.on_token(delta.content)
        full = litellm_module().stream_chunk_builder(chunks, messages=messages)
        if full is None:
            raise _Unusable("the stream ended without an answer")
        ttft = int((state.first_token_at - self.started) * 1000) if state.first_token_at is not None else None
        return full, ttft


def _record(**fields: Any) -> LLMCall | None:
    organization = fields["organization"]
    user = fields.get("user")
    if user is not None and (not getattr(user, "pk", None) or not getattr(user, "is_authenticated", True)):
        fields["user"] = None
    try:
        return LLMCall.objects.for_org(organization).create(**fields)
    except DatabaseError:  # never lose the answer because its record failed; say so loudly
        logger.exception("could not record an LLM call of organization %s", organization.pk)
        return None


def complete(
    *,
    organization: Organization,
    user: User | None,
    role: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    response_schema: dict[str, Any] | None = None,
    task_id: int | None = None,
    run_id: int | None = None,
    stream: bool = False,
    on_token: Callable[[str], None] | None = None,
    on_reset: Callable[[], None] | None = None,
    tier: str | None = None,
    task_type: str = "",
    prior_failures: int = 0,
    critical: bool = False,
    purpose: str = "",
    step_key: str = "",
    attempt: int = 1,
    scenario: str = "",
    task_budget: Decimal | None = None,
    tool_choice: Any = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    timeout: float | None = None,
    quality_check: QualityCheck | None = None,
) -> LLMResult:
    """Ask a model, the way every part of the product must.

    Who and what:
      ``organization`` (its routing, budgets and records), ``user`` (the person
      the work is for: rate limit and attribution; ``None`` for system work, not
      rate limited), ``role`` (an :class:`agents.models.AgentRole` value:
      ``manager`` → planner tier, ``employee`` → worker, ``supervisor`` →
      reviewer, ``classifier``/``extractor`` → fast, ``assistant`` → worker),
      ``messages`` (OpenAI chat messages), ``task_id``/``run_id`` (automation's
      ids, recorded and used for the per-task budget).

    What to get back:
      ``tools`` (OpenAI tool definitions; the answer's ``tool_calls`` are parsed
      and their arguments must be JSON objects), ``tool_choice``,
      ``response_schema`` (a JSON schema: the answer is parsed into ``parsed``
      and validated; an invalid answer gets one repair attempt on the same
      deployment, then the next deployment is tried, then
      :class:`StructuredOutputInvalid` is raised), ``quality_check`` (a
      function of the result returning ``None`` or a reason to reject it and
      fall back), ``stream`` with ``on_token`` (called with each text delta;
      the time to the first token is recorded). Once text has reached
      ``on_token``, a failure (the connection lost mid-answer, an invalid
      answer) falls back to the next deployment only if ``on_reset`` is given:
      it is called first, so the consumer can clear what it showed; without
      it the call ends with :class:`AllDeploymentsFailed`.

    Routing:
      ``tier`` (force one), ``task_type`` / ``prior_failures`` / a long input
      (each bumps the tier one step), ``critical`` (cloud first in hybrid
      mode). ``max_tokens``, ``temperature`` and ``timeout`` (seconds per
      deployment) go to the model.

    For the scripted model (and the records): ``purpose`` (plan, step, review,
    classify, extract, answer, summary), ``step_key`` (the plan step),
    ``attempt`` (the revision number, from 1), ``scenario`` (keep answering from
    the scenario an earlier result named in ``result.scenario``).

    Raises :class:`RateLimited` (429) when the user made too many calls in the
    last hour, :class:`BudgetExhausted` (402; ``.shortfall`` holds what
    :func:`agents.llm.budgets.llm_budget_extension_request` needs) when a daily,
    monthly or task budget is used up, :class:`NoDeploymentAvailable`,
    :class:`AllDeploymentsFailed` and :class:`StructuredOutputInvalid` (all
    :class:`LLMError`, 5xx) when no usable answer came, and
    :class:`InvalidLLMRequest` (400) for a malformed request. Every outcome,
    refusals included, is recorded as an LLMCall.
    """
    _validate_request(role=role, messages=messages, tools=tools, attempt=attempt)
    validator: Draft202012Validator | None = (
        structured.validator_for(response_schema) if response_schema is not None else None
    )
    row: OrganizationLLMSettings | None = routing.settings_row(organization)
    base: dict[str, Any] = {
        "organization": organization, "user": user, "task_id": task_id, "run_id": run_id, "role": role,
        "purpose": purpose[:40], "step_key": step_key[:100], "streamed": stream, "currency": conf.currency(),
    }
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    config = routing.org_config(organization, row, load_row=False)
    try:
        route = routing.resolve_route(config, role=role, messages=messages, tier=tier, task_type=task_type,
                                      prior_failures=prior_failures, critical=critical)
    except NoDeploymentAvailable as exc:
        call = _record(**base, tier=tier or conf.role_tiers().get(role, ""), outcome=CallOutcome.ERROR,
                       error=exc.message)
        exc.call_id = call.pk if call else None
        raise

    if user is not None and getattr(user, "pk", None):
        limit = (row.calls_per_hour_per_user if row and row.calls_per_hour_per_user else None) \
            or conf.user_calls_per_hour()
        decision = ratelimit.user_call_allowed(user_id=user.pk, limit=limit)
        if not decision.allowed:
            minutes = max(1, -(-decision.retry_after // 60))
            message = (f"You have reached the limit of {limit} AI model calls per hour. "
                       f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.")
            _record(**base, tier=route.tier, outcome=CallOutcome.REFUSED, error=message)
            raise RateLimited(message, retry_after=decision.retry_after, limit=limit)

    try:
        budgets.budget_ensure_available(organization=organization, org_settings=row, task_id=task_id,
                                        task_budget=task_budget)
    except BudgetExhausted as exc:
        _record(**base, tier=route.tier, outcome=CallOutcome.REFUSED, error=exc.message)
        raise

    router = router_for(list(config.deployments.values()), config.tiers)
    call_messages = _with_schema_instruction(messages, response_schema) if response_schema else list(messages)
    hint = {"role": role, "step": step_key or purpose, "attempt": attempt, "scenario": scenario}
    caller = _Caller(router=router, hint=hint, tools=tools, tool_choice=tool_choice, response_schema=response_schema,
                     max_tokens=max_tokens, temperature=temperature, timeout=timeout, on_token=on_token,
                     started=started)
    errors = _call_errors()
    attempts: list[dict[str, Any]] = []
    spent_usage = Usage()
    spent_cost = Decimal(0)
    last_invalid: _Unusable | None = None

    emitted = 0  # text chunks the caller has been given by rejected answers
    for deployment in route.chain:
        if emitted:
            if on_reset is None:  # the caller has shown text that a fallback would contradict
                attempts[-1]["error"] += "; not falling back: part of the answer was already streamed"
                break
            on_reset()
            emitted = 0
        hop_started = time.monotonic()
        state = _StreamState()
        try:
            hop = _answer(caller, deployment, call_messages, stream=stream, state=state, validator=validator,
                          row=row, errors=errors)
        except _Unusable as exc:
            spent_usage, spent_cost = spent_usage + exc.usage, spent_cost + exc.cost
            attempts.append(_attempt(deployment, "quality", exc.reason, hop_started))
            if exc.errors:
                last_invalid = exc
            emitted = state.emitted
            continue
        except errors as exc:
            attempts.append(_attempt(deployment, "timeout" if _is_timeout(exc) else "error", _short(exc),
                                     hop_started))
            if state.emitted:
                attempts[-1]["error"] += f" (after {state.emitted} streamed chunks)"
            emitted = state.emitted
            continue
        spent_usage, spent_cost = spent_usage + hop.usage, spent_cost + hop.cost
        result = LLMResult(
            content=hop.content, tool_calls=hop.tool_calls, parsed=hop.parsed, model=hop.model,
            deployment=deployment.name, tier=route.tier, locality=deployment.locality, usage=spent_usage,
            cost=spent_cost, currency=conf.currency(), latency_ms=elapsed_ms(), ttft_ms=hop.ttft_ms,
            outcome=CallOutcome.FALLBACK if attempts else CallOutcome.OK, scripted=deployment.is_scripted,
            finish_reason=hop.finish_reason, attempts=attempts,
        )
        if deployment.is_scripted:
            result.scenario = select_scenario(
                ScriptRequest(role=role, messages=messages, step=step_key or purpose, attempt=attempt,
                              scenario=scenario)
            ).name
            result.metadata.update(scripted=True, label=SCRIPTED_LABEL, scenario=result.scenario)
        result.metadata.update(tier=route.tier, requested_tier=route.requested_tier, route=route.reasons)
        if quality_check is not None:
            problem = quality_check(result)
            if problem:
                attempts.append(_attempt(deployment, "quality", f"quality check: {problem}", hop_started))
                emitted = state.emitted
                continue
        call = _record(
            **base, tier=route.tier, model=hop.model, deployment=deployment.name, locality=deployment.locality,
            scripted=deployment.is_scripted, scenario=result.scenario, tokens_in=spent_usage.input_tokens,
            tokens_out=spent_usage.output_tokens, cost=spent_cost, latency_ms=result.latency_ms,
            ttft_ms=hop.ttft_ms, outcome=result.outcome, attempts=attempts,
        )
        result.call_id = call.pk if call else None
        if spent_cost > 0:
            budgets.budget_record_warnings(organization=organization, org_settings=row, task_id=task_id,
                                           task_budget=task_budget)
        return result

    summary = "; ".join(f"{a['deployment']}: {a['error']}" for a in attempts) or "no deployment was tried"
    call = _record(**base, tier=route.tier, tokens_in=spent_usage.input_tokens, tokens_out=spent_usage.output_tokens,
                   cost=spent_cost, latency_ms=elapsed_ms(), outcome=CallOutcome.ERROR, error=summary[:4000],
                   attempts=attempts)
    call_id = call.pk if call else None
    if last_invalid is not None and all(a["kind"] == "quality" for a in attempts):
        raise StructuredOutputInvalid(
            "The model's answer did not match the expected format, even after a repair attempt: "
            + "; ".join(last_invalid.errors[:3]),
            errors=last_invalid.errors, content=last_invalid.content, attempts=attempts, call_id=call_id,
        )
    raise AllDeploymentsFailed(f"No model could answer ({summary})", attempts=attempts, call_id=call_id)


def _attempt(deployment: DeploymentSpec, kind: str, error: str, started: float) -> dict[str, Any]:
    return {"deployment": deployment.name, "model": deployment.model, "kind": kind, "error": error,
            "latency_ms": int((time.monotonic() - started) * 1000)}


def _is_timeout(exc: BaseException) -> bool:
    import openai

    return isinstance(exc, (openai.APITimeoutError, TimeoutError, httpx.TimeoutException))


def _answer(caller: _Caller, deployment: DeploymentSpec, messages: list[dict[str, Any]], *, stream: bool,
            state: _StreamState, validator: Draft202012Validator | None, row: OrganizationLLMSettings | None,
            errors: tuple[type[BaseException], ...]) -> _Hop:
    """One deployment's usable answer, repaired once if its JSON is invalid; raises ``_Unusable`` otherwise."""
    response, ttft = caller.call(deployment, messages, stream=stream, state=state)
    usage = _usage_of(response)
    cost = costs.call_cost(deployment=deployment, usage=usage, response=response, org_settings=row)

    def unusable(reason: str, **kwargs: Any) -> _Unusable:
        return _Unusable(reason, usage=usage, cost=cost, **kwargs)

    choice = response.choices[0]
    content = choice.message.content or ""
    try:
        tool_calls = _tool_calls_of(choice.message)
    except _Unusable as exc:
        raise unusable(exc.reason) from exc
    parsed = None
    if validator is not None and not tool_calls:
        parsed, problems = structured.parse_and_validate(content, validator)
        if problems:
            try:
                repaired, _ = caller.call(deployment, structured.repair_messages(messages, content, problems),
                                          stream=False, state=_StreamState())
            except errors as exc:
                raise unusable(f"invalid structured output ({problems[0]}); the repair call failed: {_short(exc)}",
                               content=content, errors=problems) from exc
            repair_usage = _usage_of(repaired)
            usage = usage + repair_usage
            cost += costs.call_cost(deployment=deployment, usage=repair_usage, response=repaired, org_settings=row)
            content = repaired.choices[0].message.content or ""
            parsed, problems = structured.parse_and_validate(content, validator)
            if problems:
                raise unusable(f"invalid structured output after one repair: {'; '.join(problems[:3])}",
                               content=content, errors=problems)
    return _Hop(content=content, tool_calls=tool_calls, parsed=parsed, finish_reason=str(choice.finish_reason or ""),
                model=deployment.model, usage=usage, cost=cost, ttft_ms=ttft)


__all__ = ["LLMError", "LLMResult", "complete"]
