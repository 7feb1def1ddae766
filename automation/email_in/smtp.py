"""The built-in SMTP receiver (aiosmtpd): refuse what it must, spool what it accepts, then process it.

Reply codes: 550 5.7.1 for a domain that is not ours, 550 5.1.1 for an
inbound address that names no organization (or a retired personal token),
552 for a message over ``INBOUND_SMTP_MAX_BYTES`` (aiosmtpd enforces SIZE and
the data limit), 550 5.6.0 for a message that cannot be read at all (no
headers, no From address), 451 4.3.0 if the spool cannot be written (the
sender retries). Anything else gets 250 only after it is on disk (fsynced).
Processing then runs at once in a worker thread; the session waits for it
up to ``INBOUND_EMAIL_PROCESS_TIMEOUT`` but the reply does not depend on it:
a quarantined message is accepted mail too, and one that meets an
unavailable database waits in the spool, retried every
``INBOUND_EMAIL_SPOOL_RETRY_SECONDS`` and at start.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.controller import Controller

from automation.email_in import conf
from automation.email_in.addresses import is_our_domain, parse_address
from automation.email_in.parsing import parse_message
from automation.email_in.processing import (
    UNAVAILABLE,
    SpoolResult,
    envelope,
    spool_process,
    spool_process_entry,
    tidy_connection,
)
from automation.email_in.services import resolve_recipient
from automation.email_in.spool import Spool

logger = logging.getLogger(__name__)

MAX_RECIPIENTS = 50


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (aiosmtpd cannot listen on port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def recipient_check(address: str) -> str:
    """``ok``, ``not_ours`` (another domain), ``unknown`` (no such inbound address) or ``unavailable`` (no database).

    With the database unavailable a well-formed inbound address is accepted:
    the message is spooled and its organization checked when it is processed.
    """
    if not is_our_domain(address):
        return "not_ours"
    if parse_address(address) is None:
        return "unknown"
    try:
        found = resolve_recipient(address)
    except UNAVAILABLE:
        return "unavailable"
    finally:
        tidy_connection()
    return "ok" if found is not None else "unknown"


class InboundHandler:
    """aiosmtpd handler: RCPT checks, then spool and process at DATA."""

    def __init__(self, *, spool: Spool, executor: ThreadPoolExecutor, process_timeout: float | None = None) -> None:
        self.spool = spool
        self.executor = executor
        self.process_timeout = conf.process_timeout() if process_timeout is None else process_timeout

    async def handle_RCPT(
        self, server: Any, session: Any, envelope_: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope_.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        loop = asyncio.get_running_loop()
        verdict = await loop.run_in_executor(self.executor, recipient_check, address)
        if verdict == "not_ours":
            return f"550 5.7.1 <{address}>: relaying denied; this server takes mail for {conf.domain()} only"
        if verdict == "unknown":
            return f"550 5.1.1 <{address}>: no such inbound address"
        envelope_.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope_: Any) -> str:
        raw = envelope_.original_content or envelope_.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        if len(raw) > conf.smtp_max_bytes():
            return "552 5.3.4 Message too big"
        loop = asyncio.get_running_loop()
        mail = await loop.run_in_executor(self.executor, parse_message, raw)
        if mail.fatal:
            return f"550 5.6.0 Malformed message: {mail.fatal}"
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        meta = envelope(channel="smtp", mail_from=envelope_.mail_from or "", recipients=list(envelope_.rcpt_tos),
                        peer=peer)
        try:
            name = await loop.run_in_executor(self.executor, self.spool.write, raw, meta)
        except OSError:
            logger.exception("could not spool a message from %s", peer)
            return "451 4.3.0 Could not store the message now; try again later"
        processing = loop.run_in_executor(self.executor, self._process, name)
        try:
            await asyncio.wait_for(asyncio.shield(processing), timeout=self.process_timeout)
        except TimeoutError:
            logger.info("spool entry %s is still being processed; the sender is answered now", name)
        return f"250 2.0.0 Accepted as {name.removesuffix('.msg')}"

    def _process(self, name: str) -> str:
        try:
            return spool_process_entry(self.spool, name)
        except Exception:  # the entry stays in the spool (work/ is recovered later); the receiver goes on
            logger.exception("processing spool entry %s failed", name)
            return "error"


class Receiver:
    """The SMTP server in a thread, its processing pool, and the spool retry loop."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int | None = None, spool: Spool | None = None,
        retry_seconds: float | None = None, workers: int = 4, process_timeout: float | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.spool = (spool or Spool()).ensure()
        self.retry_seconds = conf.spool_retry_seconds() if retry_seconds is None else retry_seconds
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smtp-in")
        self.handler = InboundHandler(spool=self.spool, executor=self.executor, process_timeout=process_timeout)
        self.controller = Controller(
            self.handler, hostname=host, port=self.port, data_size_limit=conf.smtp_max_bytes(),
            enable_SMTPUTF8=True, ident="Staffer inbound", server_hostname=conf.domain(),
        )
        self._stop = threading.Event()
        self._retry_thread: threading.Thread | None = None
        self.last_retry: SpoolResult | None = None

    def start(self) -> Receiver:
        self.controller.start()
        self._retry_thread = threading.Thread(target=self._retry_loop, name="smtp-in-spool", daemon=True)
        self._retry_thread.start()
        logger.info("SMTP receiver listening on %s:%s for *@%s", self.host, self.port, conf.domain())
        return self

    def retry_spool(self) -> SpoolResult:
        """Process what waits in the spool now (the retry loop's work, also run at start)."""
        result = self.executor.submit(spool_process, spool=self.spool).result()
        self.last_retry = result
        return result

    def _retry_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.retry_spool()
            except Exception:  # keep retrying: the next round may find the database back
                logger.exception("spool retry failed")
            self._stop.wait(self.retry_seconds)

    def stop(self) -> None:
        self._stop.set()
        self.controller.stop()
        if self._retry_thread is not None:
            self._retry_thread.join(timeout=30)
        self.executor.shutdown(wait=True)
