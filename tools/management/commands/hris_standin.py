"""Serve the local HRIS stand-in (BambooHR's employee API) for development and the offline demo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tools.standins.bamboohr import BambooHRStandIn, EmployeeStore, make_server


class Command(BaseCommand):
    help = "Serve a local HRIS that answers BambooHR's employee API (development and the offline demo only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.DEMO_HRIS_HOST)
        parser.add_argument("--port", type=int, default=settings.DEMO_HRIS_PORT)
        parser.add_argument("--data", default=str(settings.DEMO_HRIS_DATA), help="JSON file keeping the employees")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_HRIS:
            raise CommandError("the HRIS stand-in is off (STAFFER_DEMO_HRIS); it never runs in production")
        app = BambooHRStandIn(api_key=settings.DEMO_HRIS_API_KEY, store=EmployeeStore(Path(options["data"])))
        try:
            server = make_server(options["host"], options["port"], app)
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from exc
        self.stdout.write(f"HRIS stand-in (BambooHR API) on {app.public_base}, employees kept in {options['data']}")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
