"""Push a live event to an organization's open sockets."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from accounts.consumers import org_group


def publish_org_event(*, organization_id: int, event: str, data: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(
        org_group(organization_id),
        {"type": "org.event", "organization_id": organization_id, "event": event, "data": data},
    )
