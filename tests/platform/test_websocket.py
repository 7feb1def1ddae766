"""WebSocket: session authentication, membership check, delivery from a worker."""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from accounts.consumers import CLOSE_FORBIDDEN
from accounts.tasks import broadcast
from config.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True)]


def _session_headers(user) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie.encode())]


def _communicator(slug: str, headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/orgs/{slug}/events/", headers=headers)


@pytest.fixture(autouse=True)
def _clean_channel_layer():
    """Stale group members from crashed runs survive in Redis: start clean."""
    layer = get_channel_layer()
    async_to_sync(layer.flush)()
    yield
    async_to_sync(layer.flush)()


def test_member_receives_group_message_sent_by_a_celery_worker(tenants, celery_worker):
    """A message sent by a task on a real worker reaches the member's socket through Redis."""
    a, _ = tenants
    headers = _session_headers(a.viewer)

    async def scenario() -> dict:
        communicator = _communicator(a.slug, headers)
        connected, _ = await communicator.connect()
        assert connected
        from asgiref.sync import sync_to_async

        await sync_to_async(broadcast.delay)(
            organization_id=a.organization.pk, event="task.updated", data={"task": 7, "status": "completed"}
        )
        message = await communicator.receive_json_from(timeout=20)
        await communicator.disconnect()
        return message

    message = async_to_sync(scenario)()
    assert message == {"type": "task.updated", "data": {"task": 7, "status": "completed"}}


def test_anonymous_connection_is_refused(tenants):
    """A socket without a session is closed with 4403."""
    a, _ = tenants

    async def scenario() -> tuple:
        communicator = _communicator(a.slug, [(b"origin", b"http://localhost"), (b"host", b"localhost")])
        return await communicator.connect()

    connected, code = async_to_sync(scenario)()
    assert not connected
    assert code == CLOSE_FORBIDDEN


def test_non_member_connection_is_refused(tenants):
    """A user of another organization cannot subscribe to this one's events."""
    a, b = tenants
    headers = _session_headers(b.owner)

    async def scenario() -> tuple:
        communicator = _communicator(a.slug, headers)
        return await communicator.connect()

    connected, code = async_to_sync(scenario)()
    assert not connected
    assert code == CLOSE_FORBIDDEN


def test_socket_never_receives_another_organizations_events(tenants):
    """An event for organization B never reaches a socket of organization A."""
    a, b = tenants
    from accounts.events import publish_org_event

    headers = _session_headers(a.owner)

    async def scenario() -> bool:
        communicator = _communicator(a.slug, headers)
        connected, _ = await communicator.connect()
        assert connected
        from asgiref.sync import sync_to_async

        await sync_to_async(publish_org_event)(organization_id=b.organization.pk, event="secret", data={"x": 1})
        nothing = await communicator.receive_nothing(timeout=0.5)
        await communicator.disconnect()
        return nothing

    assert async_to_sync(scenario)() is True
