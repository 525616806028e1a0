"""Verified identify under load: gunicorn on loopback, a bounded threaded client.

The server is the production stack (gunicorn, DEBUG off, persistent database connections);
the client signs a fresh HS256 token per request for user ids drawn from a fixed pool, each
from one of three visitor ids (devices), so the same person is identified concurrently many
times — which must never create a second contact for them.
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
DURATION_S = float(os.environ.get("BENCH_IDENTIFY_SECONDS", "20"))
CLIENT_THREADS = int(os.environ.get("BENCH_IDENTIFY_THREADS", "12"))
USER_POOL = 2_000
WORKERS = int(os.environ.get("BENCH_GUNICORN_WORKERS", str((os.cpu_count() or 2) + 1)))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _identify_agent() -> Agent:
    workspace, _ = workspace_get_or_create(name="Bench")
    agent = Agent.objects.filter(workspace=workspace, name="Identify load").first()
    return agent or agent_create(workspace=workspace, name="Identify load")


def _start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "DEBUG": "false", "DB_CONN_MAX_AGE": "600"}
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "config.wsgi",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(WORKERS),
        "--worker-class", "gthread",
        "--threads", "2",
        "--keep-alive", "30",
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


def _client(port: int, path: str, secret: str, stop: float, out: list, errors: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    rng = random.Random()
    while time.monotonic() < stop:
        user = rng.randrange(USER_POOL)
        token = jwt.encode(
            {
                "user_id": f"load-{user}",
                "exp": int(time.time()) + 300,
                "contact_attributes": {
                    "name": f"Load User {user}",
                    "email": f"load{user}@example.com",
                },
            },
            secret,
            algorithm="HS256",
        )
        # A browser keeps its visitor id: each user comes back from one of a few devices.
        body = json.dumps({"visitor_id": f"v-{user}-{rng.randrange(3)}", "token": token})
        started = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            errors.append(repr(exc))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            errors.append(f"HTTP {response.status}")
        else:
            out.append(elapsed)
    conn.close()


def run(ctx: BenchContext, *, repeat: int, log) -> list[Row]:
    agent = _identify_agent()
    secret = identity_secret_current(agent=agent).secret
    port = _free_port()
    path = f"/widget/v1/{agent.public_id}/identify"
    server = _start_server(port)
    try:
        # Warm every worker's connection and code paths.
        warm: list[float] = []
        _client(port, path, secret, time.monotonic() + 2, warm, [])
        samples: list[float] = []
        errors: list[str] = []
        stop = time.monotonic() + DURATION_S
        started = time.monotonic()
        threads = [
            threading.Thread(target=_client, args=(port, path, secret, stop, samples, errors))
            for _ in range(CLIENT_THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
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
    rps = len(samples) / elapsed
    timing = Timing(samples or [0.0])
    log(
        f"  {len(samples):,} identifies in {elapsed:.1f} s with {CLIENT_THREADS} client threads "
        f"and {WORKERS} gunicorn workers: {rps:,.0f} req/s, p50 {ms(timing.p50)}, "
        f"p95 {ms(timing.p95)}, {len(errors)} errors, {contacts:,} contacts for "
        f"{USER_POOL:,} user ids, {duplicates} duplicated"
    )
    if errors:
        log(f"  first errors: {errors[:3]}")
    ok = rps >= TARGET_RPS and timing.p95 <= TARGET_P95_MS and duplicates == 0 and not errors
    return [
        Row(
            work="verified identify under load (gunicorn, loopback)",
            target=f"≥ {TARGET_RPS} req/s, p95 ≤ {TARGET_P95_MS} ms, 0 duplicates",
            measured=(
                f"{rps:,.0f} req/s, p50 {ms(timing.p50)}, p95 {ms(timing.p95)}, "
                f"{duplicates} duplicates, {len(errors)} errors"
            ),
            ok=ok,
        )
    ]
