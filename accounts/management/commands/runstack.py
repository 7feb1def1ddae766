"""Run the whole product: migrate, seed the demo, then web, worker and beat until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Migrate, seed the demo organization and run daphne, a Celery worker and Celery beat."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--concurrency", type=int, default=2)
        parser.add_argument("--no-seed", action="store_true", help="Skip the demo organization.")

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        call_command("setup_periodic_tasks")  # the system's periodic jobs (automation/system_jobs.py)
        call_command("collectstatic", interactive=False, verbosity=0)
        if not options["no_seed"]:
            call_command("seed_demo")
        python = sys.executable
        env = {**os.environ}
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
        commands = {
            "web": [
                python, "-m", "daphne", "-b", options["host"], "-p", str(options["port"]), "config.asgi:application",
            ],
            "worker": [
                python, "-m", "celery", "-A", "config", "worker", "-l", "INFO",
                "--concurrency", str(options["concurrency"]), "-Q", "celery,default",
            ],
            "beat": [
                python, "-m", "celery", "-A", "config", "beat", "-l", "INFO",
                "--schedule", str(settings.VAR_DIR / "celerybeat-schedule"),
            ],
        }
        extra = getattr(settings, "RUNSTACK_EXTRA_PROCESSES", {})
        commands.update({name: [python, "manage.py", *argv] for name, argv in extra.items()})
        processes: dict[str, subprocess.Popen[bytes]] = {}
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, argv in commands.items():
            processes[name] = subprocess.Popen(argv, env=env, start_new_session=True)
        self.stdout.write(self.style.SUCCESS(
            f"Staffer is running at http://{options['host']}:{options['port']}/ "
            f"(processes: {', '.join(processes)}). Press Ctrl-C to stop."
        ))
        exit_code = 0
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with code {process.returncode}; stopping everything.")
                    exit_code = process.returncode or 1
                    stopping = True
                    break
            time.sleep(0.5)
        self.stdout.write("Stopping …")
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.stdout.write("Stopped. The embedded servers keep running for the next start (./staffer stop ends them).")
        if exit_code:
            sys.exit(exit_code)
