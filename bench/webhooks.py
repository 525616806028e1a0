"""Webhooks under load: identify at the target rate and a large import, each without and
with an endpoint subscribed to every event while the relay delivers.

The receiver (`bench.receiver`, its own process on loopback) answers 204 and counts
requests, distinct `webhook-id` values, bad signatures and the contacts the messages
carry. The relay is the worker's own loop (`webhooks.relay.relay_forever`) in a child
process, as `manage.py worker` runs it, so the outbox is drained while the load runs. The
endpoint is made through `webhooks.services.endpoint_create` (subscribed to "*"); the
loopback URL is allowed by WEBHOOK_ALLOW_PRIVATE_NETWORKS, which the benchmark sets for
itself and every process it starts.

1. Identify: the identify section's returning users change nothing but their last-seen
   time, which is no event. Here NEW_SHARE of the calls come from user ids the agent has
   never seen (contact.created) and CHANGE_SHARE from returning users whose `visits`
   attribute changes (contact.updated); the rest are the identify section's calls. The same
   mix runs open loop at the identify target rate first with no endpoint (the baseline),
   then with the endpoint and the relay; p95 is held to the identify section's target.
2. Import: the import section's generated CSV at IMPORT_ROWS (or the agent's size, if
   smaller) through the real engine, with no endpoint and with the endpoint and the relay,
   alternating for IMPORT_ROUNDS rounds; the best import with webhooks may take at most
   TARGET_RATIO times as long as the best without.

Each side reports how many messages were written and delivered, the outbox lag (from the
message's write, in the change's transaction, to its delivery: p50, p95 and max), how long
the outbox took to empty after the load and the relay's CPU time. Afterwards the endpoint,
its deliveries and messages, the contacts and audit entries the load wrote and the import
jobs are removed.

The section scales like the others: the import follows `--contacts` (CI's smoke run imports
3,000 rows) and the identify phases BENCH_IDENTIFY_SECONDS.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connection
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from bench import identify, imports
from bench.bulk import _database_url
from bench.context import BenchContext
from bench.harness import Row, Timing, ms
from workspaces.models import Agent

IMPORT_ROWS = int(os.environ.get("BENCH_WEBHOOK_IMPORT_ROWS", "100000"))
# Imports on each side, alternating; the best of each side is compared (one import varies
# by several per cent from run to run, as much as the margin the target leaves).
IMPORT_ROUNDS = int(os.environ.get("BENCH_WEBHOOK_IMPORT_ROUNDS", "2"))
TARGET_RATIO = 1.2
# Shares of the identify calls that make an event (the rest change nothing): one call in
# ten, 30 events a second at the target rate.
NEW_SHARE = 0.05
CHANGE_SHARE = 0.05
NEW_PREFIX = "wh-"
DESCRIPTION = "Benchmark receiver"
IMPORT_FILE = Path("var/bench-webhooks-import.csv")
# The longest wait for the outbox to empty once the load is over.
DRAIN_TIMEOUT_S = float(os.environ.get("BENCH_WEBHOOK_DRAIN_SECONDS", "300"))

RELAY = """
import signal, sys, threading
import django
django.setup()
from transfers.management.commands.worker import lower_priority
from webhooks.relay import deliver_due, relay_forever
lower_priority()  # as `manage.py worker`, whose thread the relay is in production
deliver_due()  # the first pass's queries and connection, before the timed load
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
print("ready", flush=True)
relay_forever(stop)
"""
RELAY_START_TIMEOUT_S = 120


def child_env() -> dict[str, str]:
    """The environment of the processes the section starts: this database (a test database
    under pytest, too), DEBUG off, and loopback allowed as a webhook target."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "DATABASE_URL": _database_url(),
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
    }


def _wait_listening(port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the {what} exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the {what} did not start listening")


def _wait_ready(process: subprocess.Popen) -> None:
    """Until the relay says it is set up (its first line), or fail with its exit status."""
    ready = threading.Event()

    def read() -> None:
        if process.stdout is not None and process.stdout.readline().strip() == "ready":
            ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(RELAY_START_TIMEOUT_S):
        raise RuntimeError(f"the webhook relay did not start (exit status {process.poll()})")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Delivered:
    """What one side wrote to the outbox for the endpoint and what reached the receiver."""

    written: int
    by_type: dict[str, int]
    succeeded: int
    pending: int
    failed: int
    received: dict[str, Any]
    lag: Timing | None
    drained_s: float | None
    # CPU seconds the relay's process used (None where /proc is not there to tell).
    relay_cpu_s: float | None = None

    @property
    def complete(self) -> bool:
        """Every message written was delivered once at least, signed, and nothing is left."""
        return (
            self.written > 0
            and self.succeeded == self.written
            and self.pending == 0
            and self.failed == 0
            and self.received["distinct_ids"] == self.written
            and self.received["bad_signatures"] == 0
        )

    def contacts(self, event_type: str) -> int:
        return self.received["contacts"].get(event_type, 0)

    def summary(self) -> str:
        types = ", ".join(f"{count:,} {name}" for name, count in sorted(self.by_type.items()))
        lag = (
            f"lag p50 {self.lag.p50 / 1000:,.2f} s, p95 {self.lag.p95 / 1000:,.2f} s, "
            f"max {self.lag.percentile(1) / 1000:,.2f} s"
        )
        drained = (
            f"outbox empty {self.drained_s:,.1f} s after the load"
            if self.drained_s is not None
            else f"{self.pending:,} still pending after {DRAIN_TIMEOUT_S:g} s"
        )
        cpu = f", relay CPU {self.relay_cpu_s:,.1f} s" if self.relay_cpu_s is not None else ""
        return (
            f"{self.received['distinct_ids']:,} of {self.written:,} messages delivered "
            f"({types}), {lag if self.lag else 'no lag measured'}, {drained}{cpu}"
        )


class Subscribed:
    """An endpoint of `agent` subscribed to every event, the receiver it points at and the
    relay, for the length of a `with` block; on leaving, all three go, with the endpoint's
    deliveries and the messages no other endpoint needs."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def __enter__(self) -> Subscribed:
        from webhooks.services import endpoint_create

        self.port = identify._free_port()
        self.endpoint, secret = endpoint_create(
            agent=self.agent,
            url=f"http://127.0.0.1:{self.port}/hook",
            events=["*"],
            description=DESCRIPTION,
        )
        env = child_env()
        self.receiver = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "bench.receiver", str(self.port)],
            env={**env, "BENCH_RECEIVER_SECRET": secret},
        )
        self.relay = None
        try:
            _wait_listening(self.port, self.receiver, "webhook receiver")
            self.relay = subprocess.Popen(  # noqa: S603 - our own interpreter and script
                [sys.executable, "-c", RELAY], env=env, stdout=subprocess.PIPE, text=True
            )
            # Django's start-up (a second or two of CPU) stays out of the timed load.
            _wait_ready(self.relay)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def received(self) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/stats")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def _pending(self) -> int:
        from webhooks.models import WebhookDelivery

        return WebhookDelivery.objects.filter(
            endpoint=self.endpoint, status=WebhookDelivery.Status.PENDING
        ).count()

    def wait_drained(self, timeout: float = DRAIN_TIMEOUT_S) -> float | None:
        """Seconds until no delivery to the endpoint is pending, or None after `timeout`."""
        started = time.monotonic()
        while self._pending():
            if self.relay is not None and self.relay.poll() is not None:
                raise RuntimeError(f"the relay exited with code {self.relay.returncode}")
            if time.monotonic() - started > timeout:
                return None
            time.sleep(0.2)
        return time.monotonic() - started

    def delivered(self, drained_s: float | None) -> Delivered:
        from webhooks.models import WebhookDelivery

        deliveries = WebhookDelivery.objects.filter(endpoint=self.endpoint)
        by_type: dict[str, int] = {}
        for event_type in deliveries.values_list("message__event_type", flat=True):
            by_type[event_type] = by_type.get(event_type, 0) + 1
        status = WebhookDelivery.Status
        lags = [
            lag.total_seconds() * 1000
            for lag in deliveries.filter(status=status.SUCCEEDED)
            .annotate(lag=F("last_attempt_at") - F("message__created_at"))
            .values_list("lag", flat=True)
        ]
        return Delivered(
            written=sum(by_type.values()),
            by_type=by_type,
            succeeded=deliveries.filter(status=status.SUCCEEDED).count(),
            pending=deliveries.filter(status=status.PENDING).count(),
            failed=deliveries.filter(status=status.FAILED).count(),
            received=self.received(),
            lag=Timing(lags) if lags else None,
            drained_s=drained_s,
            relay_cpu_s=cpu_seconds(self.relay.pid) if self.relay is not None else None,
        )

    def __exit__(self, *exc_info: object) -> None:
        for process in (self.relay, self.receiver):
            if process is not None:
                _stop(process)
        forget_endpoints([self.agent])


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds a running process has used so far, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def forget_endpoints(agents: list[Agent]) -> None:
    """Remove the benchmark's endpoints of these agents (an interrupted run may have left
    one, which would make every later section write to the outbox), their deliveries, and
    the messages of these agents no endpoint needs any more."""
    from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage

    WebhookEndpoint.objects.filter(agent__in=agents, description=DESCRIPTION).delete()
    needed = WebhookDelivery.objects.filter(message_id=OuterRef("pk"))
    WebhookMessage.objects.filter(agent__in=agents).exclude(Exists(needed)).delete()


def _checkpoint() -> None:
    """Write dirty pages out now rather than in a checkpoint in the middle of a timed run."""
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


# --- 1. Identify ---------------------------------------------------------------------------------


class EventfulSender(identify._Sender):
    """Identify calls in a mix that makes events: NEW_SHARE from user ids the agent has never
    seen, CHANGE_SHARE from returning users whose `visits` changes, the rest as the identify
    section sends them (no change). `sequence` numbers the calls across senders."""

    def __init__(
        self, port: int, path: str, secret: str, run_id: str, sequence: itertools.count
    ) -> None:
        super().__init__(port, path, secret)
        self.run_id, self.sequence = run_id, sequence

    def body(self) -> str:
        n = next(self.sequence)
        roll = self.rng.random()
        if roll < NEW_SHARE:
            user_id = f"{NEW_PREFIX}{self.run_id}-{n}"
            return self.signed_body(
                user_id=user_id,
                visitor_id=f"v-{user_id}",
                attributes={"name": f"Webhook User {n}", "email": f"{user_id}@example.com"},
            )
        user = self.rng.randrange(identify.USER_POOL)
        attributes: dict[str, Any] = identify.pool_attributes(user)
        if roll < NEW_SHARE + CHANGE_SHARE:
            attributes["visits"] = n  # numbered calls: always a new value
        return self.signed_body(
            user_id=f"load-{user}",
            visitor_id=f"v-{user}-{self.rng.randrange(3)}",
            attributes=attributes,
        )


@dataclass
class Paced:
    """One open-loop phase: latencies of the answered calls, the rate served, errors."""

    timing: Timing
    served_rps: float
    answered: int
    sent: int
    errors: list[str]


def paced_phase(new_sender, *, rate: int, seconds: float) -> Paced:
    """`rate` calls a second on a fixed schedule for `seconds`, latency counted from when
    each call was due (as the identify section measures)."""
    latencies: list[float] = []
    errors: list[str] = []
    total = int(rate * seconds)
    first = time.perf_counter() + 0.5
    slots = iter([first + i / rate for i in range(total)])
    lock = threading.Lock()
    elapsed = identify._run_threads(
        identify._paced,
        lambda: (new_sender(), slots, lock, latencies, errors),
        identify.PACED_THREADS,
    )
    served = len(latencies) / max(elapsed - 0.5, 0.001)
    return Paced(Timing(latencies or [0.0]), served, len(latencies), total, errors)


def identify_row(plain: Paced, hooked: Paced, delivered: Delivered) -> Row:
    """The identify row: the identify section's p95 target and rate, every event delivered."""
    rate, target = identify.TARGET_RPS, identify.TARGET_P95_MS
    timing = hooked.timing
    ratio = timing.p95 / plain.timing.p95 if plain.timing.p95 else 0.0
    return Row(
        work=(
            f"verified identify at {rate} req/s with a webhook endpoint subscribed "
            f"({NEW_SHARE:.0%} new users, {CHANGE_SHARE:.0%} changing an attribute; "
            "relay delivering)"
        ),
        target=f"p95 ≤ {target} ms, every event delivered",
        measured=(
            f"p50 {ms(timing.p50)}, p95 {ms(timing.p95)}, p99 {ms(timing.p99)}; "
            f"{hooked.served_rps:,.0f} req/s served, {len(hooked.errors)} errors; "
            f"{delivered.summary()}"
        ),
        baseline=(
            f"no endpoint: p50 {ms(plain.timing.p50)}, p95 {ms(plain.timing.p95)}, "
            f"{plain.served_rps:,.0f} req/s"
        ),
        ratio=f"{ratio:,.2f}× p95 without" if ratio else "—",
        ok=(
            timing.p95 <= target
            and hooked.served_rps >= 0.97 * rate
            and not hooked.errors
            and delivered.complete
        ),
    )


def _ensure_visits(agent: Agent) -> None:
    from attributes.models import AttributeDefinition
    from attributes.services import attribute_create

    if not AttributeDefinition.objects.filter(agent=agent, key="visits").exists():
        attribute_create(agent=agent, key="visits", type="number")


def _forget_identified(agent: Agent, since) -> None:
    """Remove the contacts this section's new users made, their visitor sessions, and the
    audit entries written since `since` (the identify agent is the benchmark's own)."""
    from contacts.models import AuditEvent, Contact
    from identity.models import VisitorSession

    VisitorSession.objects.filter(agent=agent, visitor_id__startswith=f"v-{NEW_PREFIX}").delete()
    Contact.objects.filter(agent=agent, external_id__startswith=NEW_PREFIX).delete()
    if since is not None:
        AuditEvent.objects.filter(agent=agent, created_at__gte=since).delete()


def identify_rows(log) -> list[Row]:
    from workspaces.selectors import identity_secret_current

    agent = identify._identify_agent()
    _ensure_visits(agent)
    forget_endpoints([agent])
    _forget_identified(agent, None)
    secret = identity_secret_current(agent=agent).secret
    port = identify._free_port()
    path = f"/widget/v1/{agent.public_id}/identify"
    run_id, sequence = uuid.uuid4().hex[:8], itertools.count()
    new_sender = lambda: EventfulSender(port, path, secret, run_id, sequence)  # noqa: E731
    _checkpoint()
    since = timezone.now()
    server = identify._start_server(port, env=child_env())
    try:
        warm_until = time.monotonic() + identify.WARM_UP_S
        identify._run_threads(
            identify._closed_loop,
            lambda: (new_sender(), warm_until, [], []),
            identify.CLIENT_THREADS,
        )
        seconds = identify.DURATION_S
        plain = paced_phase(new_sender, rate=identify.TARGET_RPS, seconds=seconds)
        log(
            f"  no endpoint: {plain.answered:,} of {plain.sent:,} answered, "
            f"{plain.served_rps:,.0f} req/s, p50 {ms(plain.timing.p50)}, "
            f"p95 {ms(plain.timing.p95)}, {len(plain.errors)} errors"
        )
        with Subscribed(agent) as hooks:
            hooked = paced_phase(new_sender, rate=identify.TARGET_RPS, seconds=seconds)
            delivered = hooks.delivered(hooks.wait_drained())
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        _forget_identified(agent, since)
    log(
        f"  endpoint subscribed: {hooked.answered:,} of {hooked.sent:,} answered, "
        f"{hooked.served_rps:,.0f} req/s, p50 {ms(hooked.timing.p50)}, "
        f"p95 {ms(hooked.timing.p95)}, p99 {ms(hooked.timing.p99)}, "
        f"{len(hooked.errors)} errors"
    )
    log(f"  {delivered.summary()}; receiver: {delivered.received}")
    for errors in (plain.errors, hooked.errors):
        if errors:
            log(f"  first errors: {errors[:3]}")
    return [identify_row(plain, hooked, delivered)]


# --- 2. Import -----------------------------------------------------------------------------------


def import_row(
    rows: int,
    agent_size: int,
    plain: list[float],
    hooked: list[float],
    delivered: Delivered,
    done: bool,
) -> Row:
    """The import row: the best import with webhooks at most TARGET_RATIO × the best without,
    and every contact delivered (`delivered`: the best import's; `done`: every import
    completed, created every row and had every message delivered)."""
    best, best_plain = min(hooked), min(plain)
    ratio = best / best_plain if best_plain else float("inf")
    carried = delivered.contacts("contact.created")
    runs = f", best of {len(hooked)}" if len(hooked) > 1 else ""
    return Row(
        work=(
            f"import {rows:,}-row CSV into an agent holding {agent_size:,}, "
            "webhook endpoint subscribed (relay delivering)"
        ),
        target=f"≤ {TARGET_RATIO:g}× without webhooks, every contact delivered",
        measured=(
            f"{best:.1f} s ({rows / best:,.0f} rows/s{runs}); {carried:,} contacts in "
            f"{delivered.summary()}"
        ),
        baseline=f"no endpoint: {best_plain:.1f} s ({rows / best_plain:,.0f} rows/s{runs})",
        ratio=f"{ratio:.2f}× without",
        ok=done and ratio <= TARGET_RATIO and delivered.complete and carried == rows,
    )


def _timed_import(ctx: BenchContext, path: Path, rows: int, log, label: str) -> tuple[float, bool]:
    """Seconds the engine took, and whether it completed and created every row."""
    _checkpoint()
    seconds, counts = imports.run_import(ctx, path)
    log(f"  {label}: {seconds:.1f} s ({rows / seconds:,.0f} rows/s): {counts}")
    return seconds, counts["status"] == "completed" and counts["created"] == rows


def _forget_import_jobs(ctx: BenchContext) -> None:
    """The section's import jobs, their stored files and their task rows (no worker runs
    them: the benchmark runs the engine itself)."""
    from transfers.models import ContactImport
    from transfers.tasks import import_task_rows

    for job in ContactImport.objects.filter(agent=ctx.agent, filename=IMPORT_FILE.name):
        import_task_rows(import_id=job.pk).delete()
        if job.file:
            job.file.delete(save=False)
        job.delete()


def import_rows(ctx: BenchContext, log) -> list[Row]:
    imports._ensure_schema(ctx)
    forget_endpoints([ctx.agent])
    imports._forget_imported(ctx)
    agent_size = ctx.agent.contacts.count()
    rows = min(agent_size, IMPORT_ROWS)
    log(f"  generating a {rows:,}-row CSV")
    path = imports.generate(rows, IMPORT_FILE)
    plain: list[float] = []
    hooked: list[float] = []
    deliveries: list[Delivered] = []
    done = True
    try:
        for _ in range(IMPORT_ROUNDS):
            seconds, completed = _timed_import(ctx, path, rows, log, "no endpoint")
            plain.append(seconds)
            done &= completed
            imports._forget_imported(ctx)
            with Subscribed(ctx.agent) as hooks:
                seconds, completed = _timed_import(ctx, path, rows, log, "endpoint subscribed")
                delivered = hooks.delivered(hooks.wait_drained())
            log(f"  {delivered.summary()}; receiver: {delivered.received}")
            hooked.append(seconds)
            deliveries.append(delivered)
            done &= completed and delivered.complete
            imports._forget_imported(ctx)
    finally:
        imports._forget_imported(ctx)
        _forget_import_jobs(ctx)
    best = deliveries[hooked.index(min(hooked))]
    return [import_row(rows, agent_size, plain, hooked, best, done)]


def run(ctx: BenchContext, *, repeat: int, log) -> list[Row]:
    log(f"identify at {identify.TARGET_RPS} req/s, without and with an endpoint")
    out = identify_rows(log)
    log("import, without and with an endpoint")
    out += import_rows(ctx, log)
    return out
