"""WebSocket stream of an organization's live events."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.selectors import organization_for_member

CLOSE_FORBIDDEN = 4403


def org_group(organization_id: int) -> str:
    return f"org.{organization_id}"


class OrganizationEventsConsumer(AsyncJsonWebsocketConsumer):
    """Pushes ``org.event`` messages of one organization to its members.

    SECURITY: an anonymous user or a non-member is refused at connect, and
    every message is checked against the organization the socket joined.
    """

    organization_id: int | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        slug = self.scope["url_route"]["kwargs"]["org_slug"]
        found = await database_sync_to_async(organization_for_member)(user=user, slug=slug) if user else None
        if found is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.organization_id = found[0].pk
        await self.channel_layer.group_add(org_group(self.organization_id), self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.organization_id is not None:
            await self.channel_layer.group_discard(org_group(self.organization_id), self.channel_name)

    async def org_event(self, message: dict[str, Any]) -> None:
        if message.get("organization_id") != self.organization_id:
            return
        await self.send_json({"type": message.get("event", "event"), "data": message.get("data", {})})
