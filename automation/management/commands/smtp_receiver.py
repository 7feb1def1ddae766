"""Run the built-in SMTP receiver of inbound mail until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from automation.email_in import conf
from automation.email_in.smtp import Receiver


class Command(BaseCommand):
    help = "Receive inbound mail over SMTP: tasks+<org-slug>@INBOUND_EMAIL_DOMAIN becomes a task."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=getattr(settings, "INBOUND_SMTP_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(getattr(settings, "INBOUND_SMTP_PORT", 2525)))
        parser.add_argument("--workers", type=int, default=4, help="Threads that process received mail.")
        parser.add_argument("--verbose-smtp", action="store_true", help="Log every SMTP command (aiosmtpd).")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["verbose_smtp"]:
            logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs each command at INFO
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        receiver = Receiver(host=options["host"], port=options["port"], workers=options["workers"]).start()
        self.stdout.write(self.style.SUCCESS(
            f"SMTP receiver on {receiver.host}:{receiver.port} for *@{conf.domain()} "
            f"(spool {receiver.spool.root}). Ctrl-C stops it."
        ))
        stop.wait()
        self.stdout.write("Stopping the SMTP receiver …")
        receiver.stop()
