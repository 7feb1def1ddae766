"""Every portal page renders for its owner (a quick guard against template errors)."""

from __future__ import annotations

from tests.portal.factories import make_approval, make_llm_call, make_task, make_workflow


def test_every_page_renders(tenant_a, page_for):
    """The dashboard, task, graph, schedule, approval and usage pages answer 200 for the owner."""
    org = tenant_a.organization
    task = make_task(org, title="Write the report", actor=tenant_a.owner)
    flow = make_workflow(org, {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]})
    make_approval(org, requested_by=tenant_a.member)
    make_llm_call(org, user=tenant_a.member)
    client = page_for(tenant_a.owner)
    slug = tenant_a.slug
    for url in [
        f"/orgs/{slug}/", f"/orgs/{slug}/tasks/", f"/orgs/{slug}/tasks/new/", f"/orgs/{slug}/tasks/{task.pk}/",
        f"/orgs/{slug}/tasks/{flow['parent'].pk}/graph/", f"/orgs/{slug}/workflow-runs/",
        f"/orgs/{slug}/schedules/", f"/orgs/{slug}/schedules/new/cron/", f"/orgs/{slug}/schedules/new/interval/",
        f"/orgs/{slug}/schedules/new/one_off/", f"/orgs/{slug}/schedules/new/event/", f"/orgs/{slug}/approvals/",
        f"/orgs/{slug}/usage/", "/orgs/new/",
    ]:
        response = client.get(url)
        assert response.status_code == 200, (url, response.content[:2000])
