"""Rows of the other organization for the cross-organization route walker."""

from agents.models import LLMCall
from tests.agents.factories import make_llm_call
from tests.tenancy.registry import register


@register(LLMCall)
def _llm_call(tenant):
    return make_llm_call(tenant.organization, user=tenant.member)
