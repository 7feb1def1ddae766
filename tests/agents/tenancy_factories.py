"""Rows of the other organization for the cross-organization route walker."""

from agents.models import LLMCall
from tests.agents.factories import make_llm_call
from tests.tenancy.registry import register


@register(LLMCall)
def _llm_call(tenant):
    return make_llm_call(tenant.organization, user=tenant.member)


# --- conversations and plans (chat API) ---------------------------------------------------------------------

from agents.models import Message, Plan, Thread  # noqa: E402
from automation.models import Task  # noqa: E402
from tests.tenancy.registry import register_payload  # noqa: E402


@register(Thread)
def _thread(tenant):
    thread = Thread.objects.for_org(tenant.organization).create(organization=tenant.organization, user=tenant.member,
                                                                 title="Onboarding")
    Message.objects.for_org(tenant.organization).create(organization=tenant.organization, thread=thread, role="user",
                                                         content="Onboard Maria Lopez", author=tenant.member)
    return thread


@register(Plan)
def _plan(tenant):
    task = Task.objects.for_org(tenant.organization).create(
        organization=tenant.organization, title="Onboard Maria", executor="ai", execution_type="semi_automated",
        parameters={"request": "Onboard Maria", "mode": "request"}, created_by=tenant.member)
    return Plan.objects.for_org(tenant.organization).create(
        organization=tenant.organization, task=task, version=1, status="proposed", strategy="immediate",
        summary="Write the letter", steps=[{"id": "letter", "title": "Write it", "depends_on": [], "role": "employee",
                                            "tools": ["documents_generate"], "success_criteria": ["written"],
                                            "needs_approval": False}])


register_payload(Thread, "create", lambda tenant: {"title": "from the other organization"})
register_payload(Thread, "messages", lambda tenant: {"content": "Onboard Maria Lopez"})
register_payload(Plan, "edit", lambda tenant: {"steps": [
    {"id": "letter", "title": "Write it", "tools": ["documents_generate"], "success_criteria": ["written"]}]})
