"""WebSocket of one user's bell in one organization: the unread count at connect, then every change."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.selectors import organization_for_member
from automation.notifications.push import EVENT_UNREAD, unread_count, user_group

CLOSE_FORBIDDEN = 4403


class NotificationsConsumer(AsyncJsonWebsocketConsumer):
    """Pushes the connected user's own notifications.

    SECURITY: an anonymous user or a non-member is refused at connect; the
    group is per (organization, user), and each message is checked against both.
    """

    organization_id: int | None = None
    user_id: int | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        slug = self.scope["url_route"]["kwargs"]["org_slug"]
        found = await database_sync_to_async(organization_for_member)(user=user, slug=slug) if user else None
        if found is None or user is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.organization_id, self.user_id = found[0].pk, user.pk
        await self.channel_layer.group_add(user_group(self.organization_id, self.user_id), self.channel_name)
        await self.accept()
        count = await database_sync_to_async(unread_count)(organization_id=self.organization_id, user_id=self.user_id)
        await self.send_json({"type": EVENT_UNREAD, "data": {"unread": count}})

    async def disconnect(self, code: int) -> None:
        if self.organization_id is not None and self.user_id is not None:
            await self.channel_layer.group_discard(user_group(self.organization_id, self.user_id), self.channel_name)

    async def notify_event(self, message: dict[str, Any]) -> None:
        if message.get("organization_id") != self.organization_id or message.get("user_id") != self.user_id:
            return
        await self.send_json({"type": message.get("event", "notification"), "data": message.get("data", {})})
