"""Benchmark of the chat's live stream on the embedded servers. Prints figures, asserts nothing.

1. Latency from an event committed by a worker process (TaskEvent appended in its transaction, published after
   commit by the chat stream) to its arrival at a WebSocket client of a real daphne process: p50, p95, p99,
   at 50 and at 200 sockets, each socket watching its own thread that receives 2 events per second. The
   writers also report how far behind that schedule their commits fell (PostgreSQL's share).
2. Delivery: the share of written events each socket received live ("before replay"), then after every
   socket reconnects with its cursor and replays from the database ("after replay"; must be 100%). A third
   run drops a quarter of the sockets for 5 s in the middle (a network blip) to show what replay recovers.
3. Sockets one daphne process holds: idle thread sockets opened in steps until a step fails or the
   ``--hold-max`` is reached; each step is checked with a published event that must reach every socket;
   the daphne process's memory is reported per step.

Runs in a throwaway database (``bench_streaming``, or ``STAFFER_BENCH_DB``) and the Redis databases at
``STAFFER_REDIS_DB_BASE`` (default 24), with daphne started as production runs it
(``daphne config.asgi:application``) and ``--writers`` writer processes standing in for Celery workers
(they run the same code path: ``activity_record`` → ``event_append`` → commit → chat stream → Redis).

    .venv/bin/python bench/streaming.py [--seconds 30] [--writers 2] [--hold-max 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import resource
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = os.environ.get("STAFFER_BENCH_SETTINGS", "config.settings.test")  # one for all
os.environ.setdefault("STAFFER_REDIS_DB_BASE", "24")
os.environ.setdefault("LOG_LEVEL", "WARNING")
BENCH_DB = os.environ.get("STAFFER_BENCH_DB", "bench_streaming")
DAPHNE_PID = [0]
EVENTS_PER_SECOND = 2.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process (and its waited-for children), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class DaphneServer:
    def __init__(self, database: str) -> None:
        self.port = free_port()
        self.database = database
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (ROOT / "var" / "bench-streaming-daphne.log").open("ab")
        env = {**os.environ, "STAFFER_DB_NAME": self.database, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_raise_fd_limit)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError("daphne did not start; see var/bench-streaming-daphne.log")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- the writers (stand-ins for Celery worker processes) -------------------------------------------


def writer(database: str, tasks: list[int], seconds: float, rate: float, start: Any, go: Any,
           out: multiprocessing.Queue[Any]) -> None:
    """Append ``rate`` events per second to each task for ``seconds``, as the AI roles do (from ``start``)."""
    os.environ["STAFFER_DB_NAME"] = database
    import django

    django.setup()
    from django.db import connection

    from agents import chat_stream
    from agents.chat_stream import flush_stream
    from agents.services.activity import activity_record
    from automation.models import Task

    published: list[tuple[int, int, float]] = []  # when each event left this process (its group_send returned)
    send = chat_stream._send_in_order

    async def timed(layer: Any, thread_id: int, items: list[dict[str, Any]]) -> None:
        for item in items:
            await send(layer, thread_id, [item])
            data = item.get("data") or {}
            if item.get("kind") == "event":
                published.append((data.get("task"), data.get("sequence"), time.time()))

    chat_stream._send_in_order = timed
    rows = {t.pk: t for t in Task.objects.dangerously_unscoped().filter(pk__in=tasks).select_related("organization")}
    out.put({"ready": True})
    go.wait()
    start_at = start.value
    interval = 1.0 / rate
    # Each task gets its own phase so the writes spread over the second.
    schedule = [(start_at + random.random() * interval, task_id) for task_id in tasks]
    written = 0
    late = 0.0
    end = start_at + seconds
    cpu_start = time.process_time()
    committed: list[tuple[int, int, float]] = []
    while schedule:
        schedule.sort()
        due, task_id = schedule.pop(0)
        if due >= end:
            continue
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        else:
            late = max(late, -delay)
        event = activity_record(task=rows[task_id], type="iteration", role="employee", payload={"turn": written})
        committed.append((task_id, event.sequence, time.time()))  # returned: committed, handed to the stream
        written += 1
        schedule.append((due + interval, task_id))
    flush_stream(10)
    connection.close()
    out.put({"written": written, "late": late, "cpu": time.process_time() - cpu_start, "committed": committed,
             "published": published})


# --- the clients ------------------------------------------------------------------------------------


@dataclass
class Client:
    url: str
    cookie: str
    task: int
    arrivals: dict[int, float] = field(default_factory=dict)  # sequence -> arrival time, received live
    replayed: set[int] = field(default_factory=set)  # sequences received while replaying after a reconnect
    socket: Any = None
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None

    def cursor(self) -> dict[str, Any]:
        """The last sequence this client holds without a gap (what a page would send when reconnecting)."""
        last = 0
        while last + 1 in self.arrivals or last + 1 in self.replayed:
            last += 1
        return {"m": 0, "t": {str(self.task): last} if last else {}}

    async def connect(self, cursor: dict[str, Any] | None = None) -> None:
        import websockets

        self.synced = asyncio.Event()
        self.socket = await websockets.connect(self.url, additional_headers={"Cookie": self.cookie},
                                               origin="http://localhost", open_timeout=120, ping_interval=20,
                                               ping_timeout=120, max_queue=None)
        await self.socket.send(json.dumps({"type": "resume", "cursor": cursor or {}}))
        self.reader = asyncio.create_task(self.read())
        await asyncio.wait_for(self.synced.wait(), 180)

    async def read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.socket:
                item = json.loads(raw)
                kind = item.get("type")
                if kind == "synced":
                    self.synced.set()
                elif kind == "event" and item.get("task") == self.task:
                    sequence = item["sequence"]
                    if not self.synced.is_set():
                        self.replayed.add(sequence)
                    elif sequence not in self.arrivals:
                        self.arrivals[sequence] = time.time()
        except ConnectionClosed:
            pass

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)


# --- setup ------------------------------------------------------------------------------------------


def make_world(count: int) -> tuple[str, str, list[tuple[int, int]]]:
    """An organization, one user, ``count`` threads each with one request task; the user's session cookie."""
    from django.conf import settings
    from django.test import Client as HttpClient

    from accounts.models import Membership, Organization, User
    from accounts.roles import Role
    from agents.loop.manager import work_for_request
    from agents.services.conversations import thread_create
    from automation.services.tasks import task_create

    organization = Organization.objects.filter(slug="bench").first() or Organization.objects.create(
        slug="bench", name="Bench")
    user = User.objects.filter(email="bench@bench.test").first()
    if user is None:
        user = User.objects.create_user(email="bench@bench.test", password="bench-password-1")
        Membership.objects.for_org(organization).create(organization=organization, user=user, role=Role.MEMBER)
    pairs = []
    for n in range(count):
        thread = thread_create(organization=organization, user=user, title=f"bench {n}")
        task = task_create(organization=organization, actor=user, title=f"bench {n}", source="chat",
                           execution_type="semi_automated", executor="ai",
                           parameters={"request": "bench", "thread": thread.pk})
        work_for_request(task, requester=user, thread=thread)
        pairs.append((thread.pk, task.pk))
    http = HttpClient()
    http.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={http.cookies[settings.SESSION_COOKIE_NAME].value}"
    return organization.slug, cookie, pairs


# --- runs ----------------------------------------------------------------------------------------------


async def open_clients(port: int, slug: str, cookie: str, pairs: list[tuple[int, int]]) -> list[Client]:
    clients = [Client(url=f"ws://127.0.0.1:{port}/ws/orgs/{slug}/chat/threads/{thread}/", cookie=cookie, task=task)
               for thread, task in pairs]
    for start in range(0, len(clients), 50):
        await asyncio.gather(*(c.connect() for c in clients[start:start + 50]))
    return clients


def start_writers(database: str, tasks: list[int], seconds: float,
                  writers: int) -> tuple[list[multiprocessing.Process], multiprocessing.Queue[Any], float]:
    """Start the writers, wait until each is ready, then give them one start time; return it."""
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[Any] = context.Queue()
    start = context.Value("d", 0.0)
    go = context.Event()
    processes = []
    for index in range(writers):
        share = tasks[index::writers]
        process = context.Process(target=writer, args=(database, share, seconds, EVENTS_PER_SECOND, start, go, out))
        process.start()
        processes.append(process)
    for _ in processes:
        out.get(timeout=300)
    start.value = time.time() + 0.5
    go.set()
    return processes, out, start.value


async def run_load(port: int, database: str, slug: str, cookie: str, pairs: list[tuple[int, int]], seconds: float,
                   writers: int, blip: bool = False) -> dict[str, Any]:
    from automation.models import TaskEvent

    clients = await open_clients(port, slug, cookie, pairs)
    daphne_pid = DAPHNE_PID[0]
    baseline = {c.task: max(c.replayed | set(c.arrivals), default=0) for c in clients}
    processes, out, start_at = await asyncio.to_thread(start_writers, database, [c.task for c in clients], seconds,
                                                       writers)
    cpu_before = (cpu_seconds(daphne_pid), time.process_time(), time.monotonic())
    dropped: list[Client] = []
    if blip:
        await asyncio.sleep(max(0.0, start_at - time.time()) + seconds / 2)
        dropped = clients[: len(clients) // 4]
        await asyncio.gather(*(c.close() for c in dropped))
        await asyncio.sleep(5)
        for c in dropped:  # they come back with their cursor; what the replay brings is not counted as live
            await c.connect(cursor=c.cursor())
    results = [await asyncio.to_thread(out.get) for _ in processes]
    for process in processes:
        await asyncio.to_thread(process.join)
    await asyncio.sleep(3)  # the last events in flight
    elapsed = time.monotonic() - cpu_before[2]
    cpu = {"daphne": (cpu_seconds(daphne_pid) - cpu_before[0]) / elapsed,
           "clients": (time.process_time() - cpu_before[1]) / elapsed,
           "writers": sum(r["cpu"] for r in results) / elapsed}
    written = dict(await asyncio.to_thread(lambda: {
        t: list(TaskEvent.objects.dangerously_unscoped().filter(task_id=t, sequence__gt=baseline[t])
                .values_list("sequence", flat=True)) for t in baseline}))
    total = sum(len(v) for v in written.values())
    live = sum(len([s for s in written[c.task] if s in c.arrivals]) for c in clients)
    committed_at = {(task, sequence): at for r in results for task, sequence, at in r["committed"]}
    published_at = {(task, sequence): at for r in results for task, sequence, at in r["published"]}
    latencies = [c.arrivals[s] - committed_at[(c.task, s)] for c in clients for s in written[c.task]
                 if s in c.arrivals and (c.task, s) in committed_at]
    leaving = [published_at[key] - at for key, at in committed_at.items() if key in published_at]
    crossing = [c.arrivals[s] - published_at[(c.task, s)] for c in clients for s in written[c.task]
                if s in c.arrivals and (c.task, s) in published_at]
    # Replay: every socket reconnects with the cursor it holds (its last sequence without a gap).
    await asyncio.gather(*(c.close() for c in clients))
    for start in range(0, len(clients), 50):
        await asyncio.gather(*(c.connect(cursor=c.cursor()) for c in clients[start:start + 50]))
    await asyncio.gather(*(c.close() for c in clients))
    after = sum(len([s for s in written[c.task] if s in c.arrivals or s in c.replayed]) for c in clients)
    return {"sockets": len(clients), "written": total, "live": live, "after": after, "latencies": latencies,
            "writer_late_s": max(r["late"] for r in results), "blip": len(dropped), "cpu": cpu,
            "leaving": leaving, "crossing": crossing}


async def hold_sockets(port: int, slug: str, cookie: str, pairs: list[tuple[int, int]], steps: list[int],
                       pid: int) -> list[tuple[int, bool, float, float]]:
    from agents.chat_stream import flush_stream
    from agents.services.activity import activity_record
    from automation.models import Task

    rows: list[tuple[int, bool, float, float]] = []
    clients: list[Client] = []
    for target in steps:
        started = time.monotonic()
        try:
            more = await open_clients(port, slug, cookie, pairs[len(clients):target])
        except Exception as exc:  # report the step that failed, whatever failed
            print(f"   opening socket {len(clients) + 1}…{target} failed: {type(exc).__name__}: {exc}")
            rows.append((target, False, rss_mib(pid), time.monotonic() - started))
            break
        clients += more
        row = await asyncio.to_thread(lambda task=clients[0].task: Task.objects.dangerously_unscoped()
                                      .select_related("organization").get(pk=task))
        event = await asyncio.to_thread(activity_record, task=row, type="iteration", role="employee", payload={})
        await asyncio.to_thread(flush_stream, 5.0)
        await asyncio.sleep(2)
        alive = sum(1 for c in clients if c.socket.close_code is None)
        ok = alive == len(clients) and event.sequence in clients[0].arrivals
        rows.append((len(clients), ok, rss_mib(pid), time.monotonic() - started))
        if not ok:
            break
    await asyncio.gather(*(c.close() for c in clients))
    return rows


def sizes_of(args: argparse.Namespace) -> list[int]:
    return [int(n) for n in args.sizes.split(",") if n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30, help="length of each load run")
    parser.add_argument("--writers", type=int, default=4, help="writer processes (stand-ins for worker processes)")
    parser.add_argument("--hold-max", type=int, default=2000, help="stop the holding test at this many sockets "
                                                                   "(0: skip it)")
    parser.add_argument("--sizes", default="50,200", help="socket counts of the load runs")
    parser.add_argument("--no-blip", action="store_true", help="skip the run with dropped sockets")
    args = parser.parse_args()

    import django

    django.setup()
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.conf import settings
    from django.db import connection

    _raise_fd_limit()
    settings.DATABASES["default"]["TEST"]["NAME"] = BENCH_DB
    original = connection.settings_dict["NAME"]
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)
    async_to_sync(get_channel_layer().flush)()
    layer = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    host = layer["hosts"][0]
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    print(f"database {name}; Redis databases from {settings.REDIS.base}; {os.cpu_count()} CPUs; "
          f"channel layer {backend} (capacity {layer.get('capacity', 'n/a')}, socket_timeout "
          f"{host.get('socket_timeout')}, max_connections {host.get('max_connections')}); {args.writers} writer "
          f"processes; {EVENTS_PER_SECOND:g} events/s per socket for {args.seconds:g} s")
    server = DaphneServer(name)
    try:
        slug, cookie, pairs = make_world(max([*sizes_of(args), args.hold_max]))
        server.start()
        assert server.process is not None
        DAPHNE_PID[0] = server.process.pid
        print(f"daphne pid {server.process.pid}, {rss_mib(server.process.pid):.0f} MiB at start")
        sizes = sizes_of(args)
        runs = [(n, False) for n in sizes] + ([] if args.no_blip else [(max(sizes), True)])
        for count, blip in runs:
            chosen = pairs[:count]
            result = async_to_sync(run_load)(server.port, name, slug, cookie, chosen, args.seconds, args.writers,
                                             blip)
            lat = result["latencies"]
            label = f"{count} sockets" + (f", {result['blip']} dropped for 5 s midway" if blip else "")
            print(f"\n{label}: {result['written']} events written ({result['written'] / args.seconds:.0f}/s), "
                  f"writers at most {result['writer_late_s'] * 1000:.0f} ms behind schedule")
            if lat:
                print(f"   latency commit→socket: p50 {percentile(lat, .5) * 1000:.1f} ms, "
                      f"p95 {percentile(lat, .95) * 1000:.1f} ms, p99 {percentile(lat, .99) * 1000:.1f} ms, "
                      f"max {max(lat) * 1000:.1f} ms")
            for label, values in (("   of which commit→sent to Redis (in the writer)", result["leaving"]),
                                  ("   and sent→socket (Redis, daphne, client)", result["crossing"])):
                if values:
                    print(f"{label}: p50 {percentile(values, .5) * 1000:.1f} ms, "
                          f"p95 {percentile(values, .95) * 1000:.1f} ms, p99 {percentile(values, .99) * 1000:.1f} ms")
            cpu = result["cpu"]
            print(f"   CPU used (share of one core): daphne {cpu['daphne']:.0%}, the {count} clients "
                  f"{cpu['clients']:.0%}, writers {cpu['writers']:.0%} (the machine has {os.cpu_count()} cores, "
                  f"shared with PostgreSQL, Redis and anything else running)")
            total = max(1, result["written"])
            print(f"   delivered live, before any replay (gaps the socket itself read back included): "
                  f"{result['live']}/{result['written']} "
                  f"= {100 * result['live'] / total:.2f}%")
            print(f"   after replay from the database: {result['after']}/{result['written']} "
                  f"= {100 * result['after'] / total:.2f}%")
        steps = [s for s in (200, 500, 1000, 1500, 2000, 3000, 4000) if s <= args.hold_max]
        if not steps:
            return
        print(f"\nholding idle sockets in one daphne process (up to {args.hold_max}):")
        rows = async_to_sync(hold_sockets)(server.port, slug, cookie, pairs, steps, server.process.pid)
        for count, ok, rss, took in rows:
            state = "all open, event delivered" if ok else "FAILED"
            print(f"   {count:5d} sockets: {state}; daphne RSS {rss:.0f} MiB; step took {took:.1f} s")
        held = max((count for count, ok, _, _ in rows if ok), default=0)
        print(f"   held: {held} sockets in one process" + (" (the limit of this run, not of daphne)"
                                                          if held == args.hold_max else ""))
    finally:
        server.stop()
        with connection.cursor() as cursor:  # sessions left by threads of this process and by the stopped daphne
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = %s AND pid <> pg_backend_pid()", [name])
        connection.creation.destroy_test_db(original, verbosity=0)


if __name__ == "__main__":
    main()
