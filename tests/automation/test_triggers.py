"""Triggers: signed webhooks (good, bad, stale, replayed), named events, task outcomes, and their API."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from accounts.errors import InvalidInput
from automation.models import Task, TaskSource, Trigger, TriggerDelivery
from automation.services import triggers as svc
from automation.services.tasks import task_complete, task_fail
from tests.automation.factories import make_manual_task
from tests.automation.scheduling.factories import make_schedule, make_trigger


def hook_url(trigger: Trigger) -> str:
    return f"/api/v1/hooks/triggers/{trigger.public_id}/"


def signed_post(api, trigger, secret, body: bytes, *, timestamp: int | None = None, signature: str | None = None):
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "HTTP_X_STAFFER_TIMESTAMP": str(timestamp),
        "HTTP_X_STAFFER_SIGNATURE": signature or svc.sign(secret, body, timestamp),
    }
    return api.generic("POST", hook_url(trigger), data=body, content_type="application/json", **headers)


def trigger_tasks(organization):
    return Task.objects.for_org(organization).filter(source=TaskSource.TRIGGER)


# --- webhooks --------------------------------------------------------------------------


def test_signed_webhook_creates_task(tenant_a, api):
    """A correctly signed call is accepted (202) and creates the trigger's task with the payload as context."""
    issued = make_trigger(tenant_a, task_title="Invoice arrived")
    body = json.dumps({"invoice": 42, "amount": "10.00"}).encode()
    response = signed_post(api, issued.trigger, issued.secret, body)
    assert response.status_code == 202, response.content
    task = Task.objects.for_org(tenant_a.organization).get(pk=response.json()["task"])
    assert task.source == TaskSource.TRIGGER
    assert task.title == "Invoice arrived"
    assert task.ai_context["payload"] == {"invoice": 42, "amount": "10.00"}
    issued.trigger.refresh_from_db()
    assert issued.trigger.fire_count == 1


@pytest.mark.parametrize(
    "tamper",
    ["wrong_secret", "changed_body", "no_prefix", "missing", "other_trigger_secret"],
)
def test_bad_signature_is_401_and_changes_nothing(tenant_a, api, tamper):
    """A signature made with another secret, over another body, malformed or missing: 401, no task, no delivery."""
    issued = make_trigger(tenant_a)
    other = make_trigger(tenant_a, name="Other")
    body = b'{"a": 1}'
    now = int(time.time())
    signature = {
        "wrong_secret": svc.sign("not-the-secret", body, now),
        "changed_body": svc.sign(issued.secret, b'{"a": 2}', now),
        "no_prefix": svc.sign(issued.secret, body, now).removeprefix("sha256="),
        "missing": "",
        "other_trigger_secret": svc.sign(other.secret, body, now),
    }[tamper]
    headers = {"HTTP_X_STAFFER_TIMESTAMP": str(now)}
    if signature:
        headers["HTTP_X_STAFFER_SIGNATURE"] = signature
    response = api.generic("POST", hook_url(issued.trigger), data=body, content_type="application/json", **headers)
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "bad_signature"
    assert not trigger_tasks(tenant_a.organization).exists()
    assert not TriggerDelivery.objects.for_org(tenant_a.organization).exists()


@pytest.mark.parametrize("skew", [-301, 301])
def test_stale_or_future_timestamp_is_401(tenant_a, api, skew):
    """A correctly signed call whose timestamp is more than five minutes off is refused."""
    issued = make_trigger(tenant_a)
    body = b"{}"
    response = signed_post(api, issued.trigger, issued.secret, body, timestamp=int(time.time()) + skew)
    assert response.status_code == 401
    assert "X-Staffer-Timestamp" in response.json()["detail"]
    assert not trigger_tasks(tenant_a.organization).exists()


def test_replayed_call_is_409(tenant_a, api):
    """The same signed call sent twice creates one task; the replay answers 409."""
    issued = make_trigger(tenant_a)
    body = b'{"n": 1}'
    now = int(time.time())
    first = signed_post(api, issued.trigger, issued.secret, body, timestamp=now)
    again = signed_post(api, issued.trigger, issued.secret, body, timestamp=now)
    assert first.status_code == 202
    assert again.status_code == 409
    assert again.json()["code"] == "replayed"
    assert trigger_tasks(tenant_a.organization).count() == 1


def test_rotated_secret_replaces_old(tenant_a, api, client_for):
    """After rotation the old secret is refused and the new one accepted."""
    issued = make_trigger(tenant_a)
    response = client_for(tenant_a.member).post(
        f"/api/v1/orgs/{tenant_a.slug}/triggers/{issued.trigger.pk}/rotate-secret/", {}
    )
    new_secret = response.json()["secret"]
    assert new_secret
    assert new_secret != issued.secret
    assert signed_post(api, issued.trigger, issued.secret, b'{"v": 1}').status_code == 401
    assert signed_post(api, issued.trigger, new_secret, b'{"v": 2}').status_code == 202


def test_unknown_disabled_or_non_webhook_trigger_is_404(tenant_a, api):
    """Unknown ids, disabled triggers and event triggers do not accept webhook calls."""
    from automation.services.triggers import trigger_update

    issued = make_trigger(tenant_a)
    trigger_update(trigger=issued.trigger, actor=tenant_a.member, enabled=False)
    assert signed_post(api, issued.trigger, issued.secret, b"{}").status_code == 404
    event = make_trigger(tenant_a, name="Ev", kind="event", event_name="invoice.paid").trigger
    assert signed_post(api, event, "x", b"{}").status_code == 404
    response = api.post("/api/v1/hooks/triggers/00000000-0000-0000-0000-000000000000/", {}, format="json")
    assert response.status_code == 404


def test_body_must_be_a_json_object(tenant_a, api):
    """A signed body that is not a JSON object is a 400 naming the body; nothing is created."""
    issued = make_trigger(tenant_a)
    response = signed_post(api, issued.trigger, issued.secret, b"[1, 2]")
    assert response.status_code == 400
    assert "body" in response.json()
    response = signed_post(api, issued.trigger, issued.secret, b"not json")
    assert response.status_code == 400
    assert not trigger_tasks(tenant_a.organization).exists()


def test_conditions_filter_webhook_payload(tenant_a, api):
    """A webhook trigger with conditions accepts only payloads that match them."""
    issued = make_trigger(tenant_a, conditions={"event": "paid"})
    assert signed_post(api, issued.trigger, issued.secret, b'{"event": "sent"}').status_code == 409
    assert signed_post(api, issued.trigger, issued.secret, b'{"event": "paid"}').status_code == 202
    assert trigger_tasks(tenant_a.organization).count() == 1


def test_secret_stored_encrypted(tenant_a):
    """The webhook secret is not stored in plain text."""
    issued = make_trigger(tenant_a)
    issued.trigger.refresh_from_db()
    assert issued.secret.encode() not in bytes(issued.trigger.secret_ciphertext)


def test_webhook_service_with_injected_clock(tenant_a):
    """The service checks the timestamp against the injected now."""
    issued = make_trigger(tenant_a)
    sent = int(datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp())
    body = b"{}"
    delivery = svc.webhook_receive(public_id=issued.trigger.public_id, body=body,
                                   signature=svc.sign(issued.secret, body, sent), timestamp=str(sent),
                                   now=datetime(2026, 1, 1, 12, 4, tzinfo=UTC))
    assert delivery.task_id is not None


# --- events and task outcomes -----------------------------------------------------------


def test_fire_event_runs_matching_triggers_and_event_schedules(tenants):
    """fire_event creates tasks for the organization's matching event triggers and event schedules only."""
    a, b = tenants
    make_trigger(a, name="Paid", kind="event", event_name="invoice.paid", task_title="Thank the customer")
    make_trigger(a, name="Big only", kind="event", event_name="invoice.paid", conditions={"size": "big"},
                 task_title="Call the customer")
    make_schedule(a, name="On paid", kind="event", event_name="invoice.paid", interval_seconds=None,
                  task_title="Update the ledger")
    make_trigger(b, name="Other org", kind="event", event_name="invoice.paid", task_title="Not ours")
    created = svc.fire_event(organization=a.organization, name="invoice.paid", payload={"size": "small"})
    assert sorted(t.title for t in created) == ["Thank the customer", "Update the ledger"]
    assert not Task.objects.for_org(b.organization).exists()
    with pytest.raises(InvalidInput):
        svc.fire_event(organization=a.organization, name="Bad Name!")


def test_task_completed_and_failed_triggers(tenant_a):
    """When a task completes or fails, the engine fires the matching outcome triggers in the same transaction."""
    from automation.services.tasks import task_start

    make_trigger(tenant_a, name="Done", kind="task_completed", conditions={"execution_type": "manual"},
                 task_title="Tell the team")
    make_trigger(tenant_a, name="Failed", kind="task_failed", task_title="Investigate")
    done = make_manual_task(tenant_a.organization, title="Write report")
    task_start(task=done, actor=tenant_a.member)
    task_complete(task=done, actor=tenant_a.member)
    created = list(trigger_tasks(tenant_a.organization))
    assert [t.title for t in created] == ["Tell the team"]
    assert created[0].ai_context["payload"]["task"] == done.pk
    broken = make_manual_task(tenant_a.organization, title="Fix printer")
    task_start(task=broken, actor=tenant_a.member)
    task_fail(task=broken, actor=tenant_a.member, reason="no toner")
    investigate = trigger_tasks(tenant_a.organization).get(title="Investigate")
    assert investigate.ai_context["payload"]["failure_reason"] == "no toner"
    delivery = TriggerDelivery.objects.for_org(tenant_a.organization).get(task=investigate)
    assert delivery.source_task_id == broken.pk


def test_outcome_triggers_cannot_loop_forever(tenant_a, engine):
    """A trigger that fires on every completed task (its own included) stops after MAX_DEPTH generations."""
    from automation.services.tasks import task_start

    make_trigger(tenant_a, name="Echo", kind="task_completed", task_title="Echo")
    first = make_manual_task(tenant_a.organization, title="Seed")
    task_start(task=first, actor=tenant_a.member)
    task_complete(task=first, actor=tenant_a.member)
    engine.drain()
    echoes = trigger_tasks(tenant_a.organization)
    assert echoes.count() == svc.MAX_DEPTH
    assert set(echoes.values_list("status", flat=True)) == {"completed"}
    depths = sorted(TriggerDelivery.objects.for_org(tenant_a.organization).values_list("depth", flat=True))
    assert depths == list(range(1, svc.MAX_DEPTH + 1))


# --- API -------------------------------------------------------------------------------


def test_trigger_api_create_shows_secret_once(tenant_a, client_for):
    """Creating a webhook trigger returns its URL and secret once; reading it later shows no secret."""
    client = client_for(tenant_a.member)
    response = client.post(f"/api/v1/orgs/{tenant_a.slug}/triggers/",
                           {"name": "CRM", "kind": "webhook", "task_title": "New lead"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"]
    public_id = Trigger.objects.for_org(tenant_a.organization).get().public_id
    assert body["webhook_url"].endswith(f"/api/v1/hooks/triggers/{public_id}/")
    detail = client.get(f"/api/v1/orgs/{tenant_a.slug}/triggers/{body['id']}/").json()
    assert "secret" not in detail


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "x", "kind": "sometimes", "task_title": "t"}, "kind"),
        ({"name": "x", "kind": "event", "task_title": "t"}, "event_name"),
        ({"name": "x", "kind": "webhook", "task_title": "t", "task_executor": "nope"}, "task_executor"),
        ({"name": "x", "kind": "task_failed", "task_title": "t", "conditions": {"colour": "red"}}, "conditions"),
        ({"name": "x", "kind": "webhook"}, "task_title"),
    ],
)
def test_trigger_api_bad_input_400(tenant_a, client_for, payload, field):
    """Bad trigger input is a 400 naming the field; nothing is stored."""
    response = client_for(tenant_a.member).post(f"/api/v1/orgs/{tenant_a.slug}/triggers/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Trigger.objects.for_org(tenant_a.organization).exists()


def test_viewer_cannot_create_triggers(tenant_a, client_for):
    """A viewer (no schedules:write) cannot create a trigger."""
    response = client_for(tenant_a.viewer).post(f"/api/v1/orgs/{tenant_a.slug}/triggers/",
                                                {"name": "x", "kind": "webhook", "task_title": "t"})
    assert response.status_code == 403


def test_other_organization_cannot_reach_triggers(tenants, client_for):
    """The other organization gets 404 on list, detail, update, delete, rotate and deliveries; nothing changes."""
    a, b = tenants
    issued = make_trigger(a)
    intruder = client_for(b.owner)
    base = f"/api/v1/orgs/{a.slug}/triggers/"
    assert intruder.get(base).status_code == 404
    for slug in (a.slug, b.slug):
        detail = f"/api/v1/orgs/{slug}/triggers/{issued.trigger.pk}/"
        assert intruder.get(detail).status_code == 404
        assert intruder.patch(detail, {"name": "pwned"}).status_code == 404
        assert intruder.post(detail + "rotate-secret/", {}).status_code == 404
        assert intruder.get(detail + "deliveries/").status_code == 404
        assert intruder.delete(detail).status_code == 404
    trigger = Trigger.objects.for_org(a.organization).get()
    assert trigger.name == "Hook"
    assert svc._open_secret(trigger).decode() == issued.secret
