from __future__ import annotations

from typing import Any

from celery import shared_task

from accounts.events import publish_org_event


@shared_task(name="accounts.broadcast")
def broadcast(*, organization_id: int, event: str, data: dict[str, Any]) -> None:
    """Send a live event to an organization's sockets from a worker."""
    publish_org_event(organization_id=organization_id, event=event, data=data)


@shared_task(name="accounts.ping")
def ping(value: int) -> int:
    return value + 1
