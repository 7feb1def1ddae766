"""A local SMTP sink (aiosmtpd) that keeps every message it receives."""

from __future__ import annotations

import email
import socket
from email.message import Message

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        self.sink.envelopes.append(
            {"from": envelope.mail_from, "rcpt": list(envelope.rcpt_tos), "data": envelope.content}
        )
        return "250 OK"


class SmtpSink:
    def __init__(self) -> None:
        self.envelopes: list[dict] = []
        self.port = free_port()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[Message]:
        return [email.message_from_bytes(e["data"]) for e in self.envelopes]
