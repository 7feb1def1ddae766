"""The task timeline live, in a real browser against a real daphne (HTTP and WebSocket) and Redis channel layer.

Events written by this process (as a worker would) appear on the open page without a reload; when the
connection drops, events written meanwhile are fetched from the database after the page reconnects, in
order, once. The browser reaches daphne through a small TCP proxy that can cut every connection (a network
outage); daphne itself runs in a process forked before the browser starts.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from functools import partial

import pytest

from tests.portal.browser_support import CHROMIUM, log_in, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return int(probe.getsockname()[1])


class Outage:
    """A TCP proxy to ``port`` whose ``cut()`` drops every open connection and refuses new ones until ``restore()``."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("localhost", 0))
        self.port = int(self.listener.getsockname()[1])
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.down = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down.is_set():
                client.close()
                continue
            upstream = socket.create_connection(("localhost", self.target))
            with self.lock:
                self.open.update({client, upstream})
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                self._drop(end)

    def _drop(self, end: socket.socket) -> None:
        with self.lock:
            self.open.discard(end)
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()

    def cut(self) -> None:
        self.down.set()
        with self.lock:
            ends = list(self.open)
        for end in ends:
            self._drop(end)

    def restore(self) -> None:
        self.down.clear()

    def close(self) -> None:
        self.listener.close()
        self.cut()


class Daphne:
    """A daphne process serving the project's ASGI application on the test database."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process = None
        self.proxy: Outage

    @property
    def url(self) -> str:
        """Through the proxy."""
        return f"http://localhost:{self.proxy.port}"

    def start(self) -> None:
        from channels.testing.live import make_application, set_database_connection
        from daphne.testing import DaphneProcess
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
        from django.db import connections

        connections.close_all()  # the child must not share this process's database sockets
        self.process = DaphneProcess(
            "localhost", partial(make_application, static_wrapper=ASGIStaticFilesHandler),
            port=self.port, setup=set_database_connection,
        )
        self.process.start()
        if not self.process.ready.wait(timeout=30):
            raise RuntimeError("daphne did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.join(timeout=10)
            self.process = None


@pytest.fixture
def daphne(transactional_db, settings):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    async_to_sync(get_channel_layer().flush)()  # stale group members of crashed runs
    server = Daphne()
    server.start()
    server.proxy = Outage(server.port)
    yield server
    server.proxy.close()
    server.stop()


def test_events_arrive_live_and_are_replayed_after_the_server_comes_back(daphne, browser):
    """Live events appear without reload; events written while the server was down appear after reconnecting."""
    from playwright.sync_api import expect

    from automation.services.tasks import task_complete, task_start, task_update
    from tests.conftest import make_tenant
    from tests.portal.factories import make_task

    tenant = make_tenant("acme", "Acme Corp")
    task = make_task(tenant.organization, title="Prepare Maria's first day", actor=tenant.owner)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(20_000)
    log_in(page, daphne.url, tenant.member.email)
    page.goto(f"{daphne.url}/orgs/acme/tasks/{task.pk}/")
    expect(page.locator("#live-status")).to_contain_text("Live")
    expect(page.locator("#timeline li")).to_have_count(1)

    task_update(task=task, actor=tenant.owner, priority=80)  # committed here, announced over Redis, fetched
    expect(page.locator("#timeline li")).to_have_count(2)
    task_start(task=task, actor=tenant.owner)
    expect(page.locator("#task-status")).to_have_text("In progress")
    expect(page.locator("#timeline li")).to_have_count(3)
    shot(page, "live-1-arrived")

    daphne.proxy.cut()
    expect(page.locator("#live-status")).to_contain_text("reconnecting")
    for priority in (81, 82, 83):
        task_update(task=task, actor=tenant.owner, priority=priority)  # the page is cut off: only the database
    task_complete(task=task, actor=tenant.owner)
    time.sleep(1)
    expect(page.locator("#timeline li")).to_have_count(3)
    daphne.proxy.restore()
    expect(page.locator("#timeline li")).to_have_count(7, timeout=40_000)
    sequences = page.locator("#timeline li").evaluate_all("items => items.map(li => Number(li.dataset.sequence))")
    assert sequences == [1, 2, 3, 4, 5, 6, 7]
    expect(page.locator("#task-status")).to_have_text("Completed")
    shot(page, "live-2-replayed")

    live = [" ".join(text.split()) for text in page.locator("#timeline li").all_inner_texts()]
    page.reload()  # the server renders the same history, word for word, as the script built it
    expect(page.locator("#timeline li")).to_have_count(7)
    assert [" ".join(text.split()) for text in page.locator("#timeline li").all_inner_texts()] == live
