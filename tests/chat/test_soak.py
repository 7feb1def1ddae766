"""Soak: 200 idle thread sockets held for two minutes against a real daphne process; the server closes none.

redis-py's defaults (a 5 s socket timeout) close idle consumers after about 5 s, and a small connection pool
caps the sockets one process holds; config/redis_urls.py sets both on purpose. This test holds the sockets
through many of those timeouts, then proves each one still works: an item published at the end reaches all.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
from django.conf import settings
from django.db import connection

from tests.chat.live import ROOT, DaphneCommand
from tests.chat.support import make_request, make_thread, record, session_headers

SOCKETS = int(os.environ.get("CHAT_SOAK_SOCKETS", "200"))
HOLD_SECONDS = float(os.environ.get("CHAT_SOAK_SECONDS", "120"))

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("clean_layer")]


def test_200_idle_sockets_stay_open_for_two_minutes(tenant_a):
    """Every socket is still open after the idle period and receives the next event; none was closed."""
    import websockets

    thread = make_thread(tenant_a.member, tenant_a.organization)
    root = make_request(thread)
    cookie = dict(session_headers(tenant_a.member))[b"cookie"].decode()
    server = DaphneCommand(database=connection.settings_dict["NAME"], redis_base=settings.REDIS.base,
                           log=ROOT / "var" / "test-logs" / "chat-soak-daphne.log").start()
    url = f"ws://127.0.0.1:{server.port}/ws/orgs/{tenant_a.slug}/chat/threads/{thread.pk}/"

    async def open_one() -> websockets.ClientConnection:
        socket = await websockets.connect(url, additional_headers={"Cookie": cookie}, origin="http://localhost",
                                          open_timeout=60, ping_interval=20, ping_timeout=60)
        await socket.send(json.dumps({"type": "resume", "cursor": {}}))
        while json.loads(await asyncio.wait_for(socket.recv(), 60))["type"] != "synced":
            pass
        return socket

    async def soak() -> tuple[int, list[int | None], int, float]:
        sockets = []
        for start in range(0, SOCKETS, 25):  # open in batches, as pages load
            sockets += await asyncio.gather(*(open_one() for _ in range(start, min(SOCKETS, start + 25))))
        opened = time.monotonic()
        closed_early: list[int | None] = []
        while time.monotonic() - opened < HOLD_SECONDS:
            await asyncio.sleep(5)
            closed_early = [s.close_code for s in sockets if s.close_code is not None]
            if closed_early:
                break
        held = time.monotonic() - opened
        event = await asyncio.to_thread(record, root, "iteration", role="employee", turn=1)
        from agents.chat_stream import flush_stream

        await asyncio.to_thread(flush_stream, 5.0)

        async def got_it(socket: websockets.ClientConnection) -> bool:
            while True:
                item = json.loads(await asyncio.wait_for(socket.recv(), 60))
                if item.get("type") == "event" and item.get("sequence") == event.sequence:
                    return True

        received = sum(await asyncio.gather(*(got_it(s) for s in sockets)))
        await asyncio.gather(*(s.close() for s in sockets))
        return len(sockets), closed_early, received, held

    try:
        opened, closed_early, received, held = asyncio.run(soak())
    finally:
        server.stop()
    assert opened == SOCKETS
    assert closed_early == [], f"the server closed {len(closed_early)} sockets: {closed_early[:5]}"
    assert held >= HOLD_SECONDS
    assert received == SOCKETS
