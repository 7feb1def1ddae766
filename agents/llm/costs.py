"""What a call cost.

In order: the organization's on-prem price (per million tokens) for a local
deployment; the deployment's own per-token price from the settings; LiteLLM's
bundled price map (offline, US dollars) for a known model; else nothing. The
scripted model costs nothing.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from agents.llm.router import litellm_module
from agents.llm.types import Usage

if TYPE_CHECKING:
    from agents.llm.conf import DeploymentSpec
    from agents.models import OrganizationLLMSettings

logger = logging.getLogger(__name__)

MILLION = Decimal(1_000_000)
ZERO = Decimal(0)


def call_cost(*, deployment: DeploymentSpec, usage: Usage, response: Any = None,
              org_settings: OrganizationLLMSettings | None = None) -> Decimal:
    if deployment.is_scripted:
        return ZERO
    if deployment.is_local and org_settings is not None and (
        org_settings.onprem_input_cost_per_mtok is not None or org_settings.onprem_output_cost_per_mtok is not None
    ):
        per_in = (org_settings.onprem_input_cost_per_mtok or ZERO) / MILLION
        per_out = (org_settings.onprem_output_cost_per_mtok or ZERO) / MILLION
        return per_in * usage.input_tokens + per_out * usage.output_tokens
    if deployment.input_cost_per_token is not None or deployment.output_cost_per_token is not None:
        return ((deployment.input_cost_per_token or ZERO) * usage.input_tokens
                + (deployment.output_cost_per_token or ZERO) * usage.output_tokens)
    if response is None:
        return ZERO
    litellm = litellm_module()
    try:
        cost = litellm.completion_cost(completion_response=response, model=deployment.model)
    except Exception as exc:  # noqa: BLE001 - an unpriced model (LiteLLM raises many kinds): cost unknown, not an error
        logger.debug("no price for %s: %s", deployment.model, exc)
        return ZERO
    return Decimal(str(cost or 0))
