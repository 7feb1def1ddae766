"""Write the system's periodic jobs (automation/system_jobs.py) into django-celery-beat."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from automation.system_jobs import PREFIX, system_jobs


class Command(BaseCommand):
    help = "Create or update the system's periodic jobs in django-celery-beat and remove stale ones."

    def handle(self, *args: Any, **options: Any) -> None:
        from config.celery import app

        app.loader.import_default_modules()  # every app's tasks module: some declare system jobs on import
        jobs = system_jobs()
        with transaction.atomic():
            for job in jobs:
                seconds = max(1, round(job.every_seconds))
                interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
                PeriodicTask.objects.update_or_create(
                    name=job.periodic_task_name,
                    defaults={
                        "task": job.task,
                        "interval": interval,
                        "crontab": None,
                        "kwargs": json.dumps(job.kwargs),
                        "expire_seconds": int(job.expires_seconds) if job.expires_seconds else None,
                        "enabled": True,
                        "description": job.description,
                    },
                )
            stale = PeriodicTask.objects.filter(name__startswith=PREFIX).exclude(
                name__in=[job.periodic_task_name for job in jobs]
            )
            removed = stale.count()
            stale.delete()
        self.stdout.write(f"{len(jobs)} system jobs set up; {removed} stale removed.")

