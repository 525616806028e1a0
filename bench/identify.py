"""Verified identify under load: gunicorn on loopback, two load phases.

The server is the production stack: gunicorn with one sync worker per core plus one, DEBUG
off, persistent database connections. Sync workers each take the next connection when they
are free; threaded workers keep a keep-alive connection to the worker that accepted it, and
under an even arrival of requests the busiest worker's queue became the p95 (125–330 ms at
300 req/s where sync workers gave 10–30 ms).

The client signs a fresh HS256 token per request for user ids drawn from a fixed pool, each
from one of three visitor ids (devices), so the same person is identified concurrently many
times — which must never create a second contact for them.

Phases, on the same server, client and connections:

1. The ceiling: CLIENT_THREADS connections back to back against a view that does the least
   a widget endpoint can (bench/urls.py: the same middleware and URL resolver, the same
   JSON body, one indexed SELECT). Absolute rates on a shared machine swing by 1.7× from
   hour to hour; identify is judged against this same-run ceiling (≥ CEILING_SHARE).
2. Capacity: the same closed loop against identify — the most identifies per second the
   server sustains. Phases 1 and 2 take turns (CAPACITY_ROUNDS of each, alternating), so
   the ratio compares the same minutes.
3. Latency at the target rate: requests are sent on a fixed schedule of TARGET_RPS per
   second (an open loop, as real widgets arrive), and each latency is counted from the
   moment its request was due, so a server falling behind shows as latency rather than
   as the client politely waiting (no coordinated omission).
4. The tail with margin: the same open loop at SHARE_OF_CAPACITY of the capacity measured
   in phase 2, judged on its p99.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import jwt
from django.db import connection

from bench.context import BenchContext
from bench.harness import Row, Timing, ms
from workspaces.models import Agent
from workspaces.selectors import identity_secret_current
from workspaces.services import agent_create, workspace_get_or_create

TARGET_RPS = 300
TARGET_P95_MS = 50
TARGET_P99_MS = 50
# Identify against the ceiling view (bench/urls.py), and the load its tail is judged at.
CEILING_SHARE = 0.5
SHARE_OF_CAPACITY = 0.7
DURATION_S = float(os.environ.get("BENCH_IDENTIFY_SECONDS", "20"))
# The ceiling and the capacity are measured in turns of DURATION_S / CAPACITY_ROUNDS each.
CAPACITY_ROUNDS = 4
CLIENT_THREADS = int(os.environ.get("BENCH_IDENTIFY_THREADS", "12"))
# Enough senders that the schedule, not the client, sets the pace at the target rate.
PACED_THREADS = 32
WARM_UP_S = min(5.0, DURATION_S)
USER_POOL = 2_000
# The browsers each user of the pool comes back from.
DEVICES = 3
WORKERS = int(os.environ.get("BENCH_GUNICORN_WORKERS", str((os.cpu_count() or 2) + 1)))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _identify_agent() -> Agent:
    workspace, _ = workspace_get_or_create(name="Bench")
    agent = Agent.objects.filter(workspace=workspace, name="Identify load").first()
    return agent or agent_create(workspace=workspace, name="Identify load")


def _start_server(port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """gunicorn serving this project on loopback; `env` adds to (or overrides) this process's
    environment for it."""
    # One loopback client sends every call: the per-address widget limit (meant for
    # visitors) is raised for it; the per-agent limit stays as configured.
    env = {
        **os.environ,
        "DEBUG": "false",
        "WIDGET_RATE_LIMIT_PER_ADDRESS": "1000000/minute",
        **(env or {}),
    }
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "config.wsgi",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(WORKERS),
        "--worker-class", "sync",
        "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, start_new_session=True)  # noqa: S603 - our own argv
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("gunicorn did not start")


def pool_attributes(user: int) -> dict[str, str]:
    """What a user of the pool always sends: the same values, so a returning user's identify
    changes nothing but when the contact was last seen."""
    return {"name": f"Load User {user}", "email": f"load{user}@example.com"}


class _Sender:
    """A client connection sending identify calls for random users of the pool (it reconnects
    by itself when the server closes the connection after an answer)."""

    def __init__(self, port: int, path: str, secret: str) -> None:
        self.port, self.path, self.secret = port, path, secret
        self.rng = random.Random()
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def body(self) -> str:
        # A browser keeps its visitor id: each user comes back from one of a few devices.
        return self.visitor_body(self.rng.randrange(USER_POOL), self.rng.randrange(DEVICES))

    def visitor_body(self, user: int, device: int) -> str:
        """The identify body of pool user `user` on their browser `device`."""
        return self.signed_body(
            user_id=f"load-{user}",
            visitor_id=f"v-{user}-{device}",
            attributes=pool_attributes(user),
        )

    def signed_body(self, *, user_id: str, visitor_id: str, attributes: dict) -> str:
        """An identify body with a fresh HS256 token for `user_id` carrying `attributes`."""
        token = jwt.encode(
            {
                "user_id": user_id,
                "exp": int(time.time()) + 300,
                "contact_attributes": attributes,
            },
            self.secret,
            algorithm="HS256",
        )
        return json.dumps({"visitor_id": visitor_id, "token": token})

    def send(self, body: str, since: float, out: list, errors: list) -> None:
        """Send one identify; its latency from `since` (perf_counter) goes to `out` when it
        answered 200, what went wrong to `errors` otherwise."""
        try:
            self.conn.request(
                "POST", self.path, body=body, headers={"Content-Type": "application/json"}
            )
            response = self.conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            errors.append(repr(exc))
            return
        if response.status == 200:
            out.append((time.perf_counter() - since) * 1000)
        else:
            errors.append(f"HTTP {response.status}")


def _closed_loop(sender: _Sender, stop: float, out: list, errors: list) -> None:
    while time.monotonic() < stop:
        body = sender.body()
        sender.send(body, time.perf_counter(), out, errors)
    sender.conn.close()


def _each_visitor(sender: _Sender, pairs, lock: threading.Lock, errors: list) -> None:
    while True:
        with lock:
            pair = next(pairs, None)
        if pair is None:
            break
        sender.send(sender.visitor_body(*pair), time.perf_counter(), [], errors)
    sender.conn.close()


def warm_every_visitor(new_sender) -> list[str]:
    """Identify every user of the pool once from each of their devices, so the timed phases
    meet the returning visitors they are meant to measure whether the database is fresh or
    not (a first identify creates the contact, its session and its audit entry: in a fresh
    database a few seconds of random warm-up left most of them to the capacity phase).
    Returns the errors."""
    pairs = iter([(user, device) for user in range(USER_POOL) for device in range(DEVICES)])
    lock = threading.Lock()
    errors: list[str] = []
    _run_threads(_each_visitor, lambda: (new_sender(), pairs, lock, errors), CLIENT_THREADS)
    return errors


def _paced(sender: _Sender, slots, lock: threading.Lock, out: list, errors: list) -> None:
    while True:
        with lock:
            due = next(slots, None)
        if due is None:
            break
        body = sender.body()
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        sender.send(body, due, out, errors)
    sender.conn.close()


def _run_threads(target, args_for, count: int) -> float:
    threads = [threading.Thread(target=target, args=args_for()) for _ in range(count)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def _paced_run(new_sender, rate: float) -> tuple[list[float], list[str], float, int]:
    """Send at `rate` per second on a fixed schedule for DURATION_S: the latencies of the
    answered calls (from when each was due), the errors, the rate served, the calls sent."""
    latencies: list[float] = []
    errors: list[str] = []
    total = int(rate * DURATION_S)
    first = time.perf_counter() + 0.5
    slots = iter([first + i / rate for i in range(total)])
    lock = threading.Lock()
    elapsed = _run_threads(
        _paced, lambda: (new_sender(), slots, lock, latencies, errors), PACED_THREADS
    )
    return latencies, errors, len(latencies) / max(elapsed - 0.5, 0.001), total


def _capacity_run(new_sender, seconds: float = 0.0) -> tuple[list[float], list[str], float, float]:
    """CLIENT_THREADS connections back to back for `seconds` (DURATION_S by default):
    latencies, errors, req/s and the seconds it took."""
    latencies: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + (seconds or DURATION_S)
    elapsed = _run_threads(
        _closed_loop, lambda: (new_sender(), stop, latencies, errors), CLIENT_THREADS
    )
    return latencies, errors, len(latencies) / elapsed, elapsed


def _capacity_rounds(*new_senders) -> list[tuple[list[float], list[str], float, float]]:
    """`_capacity_run` of each sender for DURATION_S in all, taken in CAPACITY_ROUNDS turns
    (ceiling, identify, ceiling, identify, …): the two rates then come from the same minutes
    of a machine whose speed swings, and neither from one lucky or unlucky stretch."""
    results: list[tuple[list[float], list[str], float]] = [([], [], 0.0) for _ in new_senders]
    for _ in range(CAPACITY_ROUNDS):
        for index, new_sender in enumerate(new_senders):
            latencies, errors, _rate, elapsed = _capacity_run(
                new_sender, DURATION_S / CAPACITY_ROUNDS
            )
            done, failed, seconds = results[index]
            results[index] = (done + latencies, failed + errors, seconds + elapsed)
    return [
        (latencies, errors, len(latencies) / seconds if seconds else 0.0, seconds)
        for latencies, errors, seconds in results
    ]


def run(ctx: BenchContext, *, repeat: int, log) -> list[Row]:
    agent = _identify_agent()
    secret = identity_secret_current(agent=agent).secret
    port = _free_port()
    path = f"/widget/v1/{agent.public_id}/identify"
    new_sender = lambda: _Sender(port, path, secret)  # noqa: E731
    ceiling_sender = lambda: _Sender(port, f"/bench/ceiling/{agent.pk}", secret)  # noqa: E731
    # The import section before this one leaves gigabytes of WAL behind: write its dirty
    # pages out now rather than in a checkpoint halfway through the measurement (the next
    # timed one is then minutes away).
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    # The project's URLs plus the ceiling view (bench/urls.py).
    server = _start_server(port, {"DJANGO_SETTINGS_MODULE": "bench.settings"})
    try:
        # Warm every worker's connection and code paths, and touch the pages the load will
        # write (after a checkpoint, the first change to a page logs all of it).
        warm_errors = warm_every_visitor(new_sender)
        if warm_errors:
            raise RuntimeError(f"identify failed while warming up: {warm_errors[:3]}")
        warm_until = time.monotonic() + WARM_UP_S
        _run_threads(_closed_loop, lambda: (new_sender(), warm_until, [], []), CLIENT_THREADS)
        warm_until = time.monotonic() + min(2.0, WARM_UP_S)
        _run_threads(_closed_loop, lambda: (ceiling_sender(), warm_until, [], []), CLIENT_THREADS)

        # The same client, connections and body against the ceiling view, then identify.
        (ceiling, ceiling_errors, ceiling_rps, _), (capacity, capacity_errors, rps, elapsed) = (
            _capacity_rounds(ceiling_sender, new_sender)
        )
        paced, paced_errors, paced_rps, total = _paced_run(new_sender, TARGET_RPS)
        share_rate = max(1.0, round(rps * SHARE_OF_CAPACITY))
        shared, shared_errors, shared_rps, shared_total = _paced_run(new_sender, share_rate)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM (SELECT external_id FROM contacts_contact WHERE agent_id = %s "
            "AND external_id IS NOT NULL GROUP BY external_id HAVING COUNT(*) > 1) d",
            [agent.pk],
        )
        duplicates = cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*) FROM contacts_contact WHERE agent_id = %s", [agent.pk])
        contacts = cursor.fetchone()[0]
    closed = Timing(capacity or [0.0])
    opened = Timing(paced or [0.0])
    at_share = Timing(shared or [0.0])
    top = Timing(ceiling or [0.0])
    errors = capacity_errors + paced_errors + shared_errors + ceiling_errors
    ratio = rps / ceiling_rps if ceiling_rps else 0.0
    log(
        f"  ceiling (one indexed SELECT through the same stack): {len(ceiling):,} calls, "
        f"{ceiling_rps:,.0f} req/s, p50 {ms(top.p50)}, p95 {ms(top.p95)}"
    )
    log(
        f"  capacity: {len(capacity):,} identifies in {elapsed:.1f} s over {CLIENT_THREADS} "
        f"connections, {WORKERS} gunicorn sync workers: {rps:,.0f} req/s "
        f"({ratio:.0%} of the ceiling), p50 {ms(closed.p50)}, p95 {ms(closed.p95)}"
    )
    log(
        f"  at {TARGET_RPS} req/s: {len(paced):,} of {total:,} sent on schedule answered, "
        f"{paced_rps:,.0f} req/s, p50 {ms(opened.p50)}, p95 {ms(opened.p95)}, "
        f"p99 {ms(opened.p99)}"
    )
    log(
        f"  at {share_rate:,.0f} req/s ({SHARE_OF_CAPACITY:.0%} of capacity): {len(shared):,} "
        f"of {shared_total:,} answered, p50 {ms(at_share.p50)}, p95 {ms(at_share.p95)}, "
        f"p99 {ms(at_share.p99)}"
    )
    log(
        f"  {len(errors)} errors, {contacts:,} contacts for {USER_POOL:,} user ids, "
        f"{duplicates} duplicated"
    )
    if errors:
        log(f"  first errors: {errors[:3]}")
    clean = duplicates == 0 and not errors
    return [
        Row(
            work=f"verified identify at {TARGET_RPS} req/s (open loop, gunicorn, loopback)",
            target=f"p95 ≤ {TARGET_P95_MS} ms, 0 duplicates",
            measured=(
                f"p50 {ms(opened.p50)}, p95 {ms(opened.p95)}, p99 {ms(opened.p99)}; "
                f"{paced_rps:,.0f} req/s served, {duplicates} duplicates, {len(errors)} errors"
            ),
            ok=opened.p95 <= TARGET_P95_MS and paced_rps >= 0.97 * TARGET_RPS and clean,
        ),
        Row(
            work=f"verified identify, capacity ({CLIENT_THREADS} connections back to back)",
            target=f"≥ {TARGET_RPS} req/s, ≥ {CEILING_SHARE:.0%} of the ceiling",
            measured=f"{rps:,.0f} req/s (p50 {ms(closed.p50)}, p95 {ms(closed.p95)})",
            baseline=(
                f"ceiling {ceiling_rps:,.0f} req/s (same gunicorn and client, a view making "
                "one indexed SELECT)"
            ),
            ratio=f"{ratio:.0%} of the ceiling",
            ok=rps >= TARGET_RPS and ratio >= CEILING_SHARE and clean,
        ),
        Row(
            work=(
                f"verified identify at {SHARE_OF_CAPACITY:.0%} of its capacity "
                "(open loop, gunicorn, loopback)"
            ),
            target=f"p99 ≤ {TARGET_P99_MS} ms",
            measured=(
                f"{share_rate:,.0f} req/s: p50 {ms(at_share.p50)}, p95 {ms(at_share.p95)}, "
                f"p99 {ms(at_share.p99)}; {shared_rps:,.0f} req/s served"
            ),
            ok=at_share.p99 <= TARGET_P99_MS and shared_rps >= 0.97 * share_rate and clean,
        ),
    ]
