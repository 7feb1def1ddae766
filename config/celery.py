"""The Celery application shared by every worker and by beat."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("staffer")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _connect_signals() -> None:
    from celery.signals import worker_process_init, worker_ready

    from config import heartbeat, warmup

    worker_ready.connect(heartbeat.on_worker_ready, weak=False)
    worker_process_init.connect(warmup.on_worker_process_init, weak=False)


_connect_signals()
