from celery import current_app

from automation.system_jobs import system_jobs


def test_every_system_job_names_a_registered_task():
    """Each periodic system job points at a Celery task that exists (tools and memory sweeps included)."""
    current_app.loader.import_default_modules()  # every app's tasks module, as a worker does

    names = {job.task for job in system_jobs()}
    assert {"automation.reconcile", "tools.sweep_stale_calls", "memory.expiry_sweep"} <= names
    missing = [name for name in names if name not in current_app.tasks]
    assert missing == []
