"""Live bell updates: each user's sockets join their own group; nothing leaks to other members."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from automation.models import Notification

logger = logging.getLogger(__name__)

EVENT_CREATED = "notification.created"
EVENT_UNREAD = "notification.unread"


def user_group(organization_id: int, user_id: int) -> str:
    return f"notify.{organization_id}.{user_id}"


def unread_count(*, organization_id: int, user_id: int) -> int:
    return Notification.objects.dangerously_unscoped().filter(
        organization_id=organization_id, user_id=user_id, in_app=True, read_at__isnull=True
    ).count()


def notification_payload(notification: Notification) -> dict[str, Any]:
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "title": notification.title,
        "message": notification.message,
        "link": notification.link,
        "task": notification.task_id,
        "created_at": notification.created_at.isoformat() if notification.created_at else None,
    }


def _send(organization_id: int, user_id: int, event: str, data: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            user_group(organization_id, user_id),
            {"type": "notify.event", "organization_id": organization_id, "user_id": user_id, "event": event,
             "data": data},
        )
    except Exception:  # the bell is best effort: the API holds every notification and the count
        logger.warning("could not push %s to user %s", event, user_id, exc_info=True)


def publish_created(notification: Notification) -> None:
    """Push a new notification with the user's unread count (call after commit)."""
    count = unread_count(organization_id=notification.organization_id, user_id=notification.user_id)
    _send(notification.organization_id, notification.user_id, EVENT_CREATED,
          {"notification": notification_payload(notification), "unread": count})


def publish_unread(*, organization_id: int, user_id: int) -> None:
    """Push the user's unread count (after notifications were read)."""
    _send(organization_id, user_id, EVENT_UNREAD,
          {"unread": unread_count(organization_id=organization_id, user_id=user_id)})
