"""Email-in and notification APIs: addresses, quarantine (admins), the bell, preferences; other organizations 404."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from automation.email_in.services import resolve_recipient
from automation.models import InboundMessage, Notification, Task
from automation.notifications.consumers import CLOSE_FORBIDDEN
from automation.notifications.services import notify
from config.asgi import application
from tests.email_in.conftest import DOMAIN, org_address
from tests.email_in.tenancy_factories import _quarantined

pytestmark = pytest.mark.django_db


def test_inbound_addresses(tenant_a, client_for):
    """A member sees the organization's address and a stable personal one; rotating retires the old one."""
    api = client_for(tenant_a.member)
    first = api.get("/api/v1/orgs/acme/inbound/").json()
    assert first["organization_address"] == org_address("acme")
    assert first["personal_address"].startswith("tasks+acme.")
    assert api.get("/api/v1/orgs/acme/inbound/").json()["personal_address"] == first["personal_address"]
    rotated = api.post("/api/v1/orgs/acme/inbound/rotate/").json()
    assert rotated["personal_address"] != first["personal_address"]
    assert resolve_recipient(first["personal_address"]) is None
    assert resolve_recipient(rotated["personal_address"]).personal_user == tenant_a.member


def test_viewer_cannot_rotate(tenant_a, client_for):
    """Rotating needs tasks:write."""
    assert client_for(tenant_a.viewer).post("/api/v1/orgs/acme/inbound/rotate/").status_code == 403


def test_quarantine_is_for_admins(tenant_a, client_for):
    """Members cannot see the quarantine; admins list it with reasons and filter it; a bad filter is a 400."""
    _quarantined(tenant_a)
    assert client_for(tenant_a.member).get("/api/v1/orgs/acme/inbound/quarantine/").status_code == 403
    admin = client_for(tenant_a.admin)
    listed = admin.get("/api/v1/orgs/acme/inbound/quarantine/").json()
    assert listed["count"] == 1
    assert listed["results"][0]["reason"] == "unknown_sender"
    assert admin.get("/api/v1/orgs/acme/inbound/quarantine/?status=released").json()["count"] == 0
    bad = admin.get("/api/v1/orgs/acme/inbound/quarantine/?status=bogus")
    assert bad.status_code == 400
    assert "status" in str(bad.json())


def test_quarantine_list_query_count_is_bounded(tenant_a, client_for, django_assert_max_num_queries):
    """Listing many quarantined messages costs a fixed number of queries."""
    for _ in range(5):
        _quarantined(tenant_a)
    admin = client_for(tenant_a.admin)
    with django_assert_max_num_queries(12):
        assert admin.get("/api/v1/orgs/acme/inbound/quarantine/").json()["count"] == 5


def test_look_release_and_delete(tenant_a, client_for):
    """An admin reads a held message, releases one (a task) and deletes another; neither twice."""
    admin = client_for(tenant_a.admin)
    first, second = _quarantined(tenant_a), _quarantined(tenant_a)
    detail = admin.get(f"/api/v1/orgs/acme/inbound/quarantine/{first.pk}/").json()
    assert detail["text"] == "We are out of A4 paper."
    assert detail["sender"] == "stranger@elsewhere.test"
    released = admin.post(f"/api/v1/orgs/acme/inbound/quarantine/{first.pk}/release/")
    assert released.status_code == 200
    assert released.json()["status"] == "released"
    assert Task.objects.for_org(tenant_a.organization).get().pk == released.json()["task"]
    again = admin.post(f"/api/v1/orgs/acme/inbound/quarantine/{first.pk}/release/")
    assert again.status_code == 400
    assert again.json()["code"] == "not_quarantined"
    assert admin.delete(f"/api/v1/orgs/acme/inbound/quarantine/{second.pk}/").status_code == 204
    assert InboundMessage.objects.for_org(tenant_a.organization).get(pk=second.pk).status == "deleted"
    assert admin.delete(f"/api/v1/orgs/acme/inbound/quarantine/{second.pk}/").status_code == 400


def test_other_organizations_quarantine_is_404_without_change(tenants, client_for):
    """An admin of A cannot see, release or delete B's held mail, by B's slug or by A's slug with B's id."""
    a, b = tenants
    theirs = _quarantined(b)
    admin = client_for(a.admin)
    for slug in ("globex", "acme"):
        base = f"/api/v1/orgs/{slug}/inbound/quarantine/{theirs.pk}/"
        assert admin.get(base).status_code == 404
        assert admin.post(base + "release/").status_code == 404
        assert admin.delete(base).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "quarantined"
    assert not Task.objects.for_org(b.organization).exists()


def test_bell_lists_counts_and_marks_read(tenant_a, client_for):
    """The bell lists my in-app notifications with kind and link, counts unread, and reading lowers the count."""
    org = tenant_a.organization
    shown = notify(organization=org, user_id=tenant_a.member.pk, kind="mention", title="Seen", dedupe_key="1",
                   link="https://staffer.example/x")
    notify(organization=org, user_id=tenant_a.member.pk, kind="mention", title="Also", dedupe_key="2")
    Notification.objects.for_org(org).create(organization=org, user=tenant_a.member, title="Email only",
                                             in_app=False, kind="mention")
    notify(organization=org, user_id=tenant_a.admin.pk, kind="mention", title="Not mine", dedupe_key="3")
    api = client_for(tenant_a.member)
    listed = api.get("/api/v1/orgs/acme/notifications/").json()
    assert [n["title"] for n in listed["results"]] == ["Also", "Seen"]
    assert listed["results"][1]["kind"] == "mention"
    assert listed["results"][1]["link"] == "https://staffer.example/x"
    assert api.get("/api/v1/orgs/acme/notifications/unread-count/").json() == {"unread": 2}
    assert api.post(f"/api/v1/orgs/acme/notifications/{shown.pk}/read/").status_code == 200
    assert api.get("/api/v1/orgs/acme/notifications/unread-count/").json() == {"unread": 1}


def test_preferences_api(tenant_a, client_for):
    """Each member reads and changes their own preferences; bad kinds or modes are 400 with the field named."""
    api = client_for(tenant_a.viewer)
    listed = api.get("/api/v1/orgs/acme/notification-preferences/").json()
    kinds = {p["kind"]: p for p in listed["preferences"]}
    assert kinds["task_assigned"]["email"] == "immediate"
    assert kinds["due_soon"]["email"] == "daily"
    assert listed["digest_hour"] == 8
    changed = api.put("/api/v1/orgs/acme/notification-preferences/",
                      {"preferences": [{"kind": "due_soon", "email": "off", "in_app": False}]}).json()
    assert {p["kind"]: p for p in changed["preferences"]}["due_soon"] == {
        "kind": "due_soon", "label": "A task of mine is due soon", "in_app": False, "email": "off"}
    other = client_for(tenant_a.member).get("/api/v1/orgs/acme/notification-preferences/").json()
    assert {p["kind"]: p for p in other["preferences"]}["due_soon"]["email"] == "daily"
    bad = api.put("/api/v1/orgs/acme/notification-preferences/", {"preferences": [{"kind": "nope"}]})
    assert bad.status_code == 400
    assert "kind" in str(bad.json())
    bad = api.patch("/api/v1/orgs/acme/notification-preferences/",
                    {"preferences": [{"kind": "mention", "email": "hourly"}]})
    assert bad.status_code == 400
    assert "email" in str(bad.json())
    assert api.put("/api/v1/orgs/acme/notification-preferences/", {"preferences": []}).status_code == 400


def _session_headers(user) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie.encode())]


@pytest.mark.django_db(transaction=True)
def test_bell_is_pushed_live_to_its_user_only(tenants):
    """The bell socket gets the unread count at connect and each new notification; another member's socket does not."""
    a, b = tenants
    channel_layers.backends.pop("default", None)  # a fresh layer: earlier tests' pools belong to other event loops
    async_to_sync(get_channel_layer().flush)()
    mine_headers, other_headers = _session_headers(a.member), _session_headers(a.manager)

    def create() -> None:
        notify(organization=a.organization, user_id=a.member.pk, kind="mention", title="Look here", dedupe_key="ws")

    async def scenario() -> tuple[dict, dict, bool]:
        mine = WebsocketCommunicator(application, "/ws/orgs/acme/notifications/", headers=mine_headers)
        other = WebsocketCommunicator(application, "/ws/orgs/acme/notifications/", headers=other_headers)
        assert (await mine.connect())[0]
        assert (await other.connect())[0]
        first = await mine.receive_json_from(timeout=10)
        await other.receive_json_from(timeout=10)
        await sync_to_async(create)()
        pushed = await mine.receive_json_from(timeout=10)
        quiet = await other.receive_nothing(timeout=0.5)
        await mine.disconnect()
        await other.disconnect()
        return first, pushed, quiet

    first, pushed, quiet = async_to_sync(scenario)()
    assert first == {"type": "notification.unread", "data": {"unread": 0}}
    assert pushed["type"] == "notification.created"
    assert pushed["data"]["unread"] == 1
    assert pushed["data"]["notification"]["title"] == "Look here"
    assert quiet

    stranger_headers = _session_headers(b.owner)

    async def stranger() -> tuple:
        socket = WebsocketCommunicator(application, "/ws/orgs/acme/notifications/", headers=stranger_headers)
        return await socket.connect()

    assert async_to_sync(stranger)() == (False, CLOSE_FORBIDDEN)
    async_to_sync(get_channel_layer().flush)()


def test_addresses_use_the_configured_domain(tenant_a, client_for):
    """The domain comes from INBOUND_EMAIL_DOMAIN."""
    assert client_for(tenant_a.member).get("/api/v1/orgs/acme/inbound/").json()["domain"] == DOMAIN
