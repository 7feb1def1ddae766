"""Connect email in and notifications at start (called by ``AutomationConfig.ready()``)."""

from __future__ import annotations

import importlib


def ready() -> None:
    from automation.email_in import admin, webhooks
    from automation.notifications.sources import on_task_event
    from automation.services.events import register_event_listener

    webhooks.connect()
    register_event_listener(on_task_event)
    admin.register()
    importlib.import_module("automation.email_in.tasks")  # Celery tasks and system jobs
