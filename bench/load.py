"""Mixed load against `make serve`: many clients at once on the production stack.

The other sections measure one kind of work at a time. Support staff, integrations and
the widget do not take turns: here CLIENTS clients send back to back (a closed loop, no
pause between calls) for a minute (BENCH_LOAD_SECONDS, below), each call drawn from a mix:

- table (25 %): the dashboard's contact list of the bench agent as its admin sees it
  (session cookie), default order, another sort, a search, or the page after one it got;
- API read (35 %): a page of `GET /api/v1/contacts/` (some sorted or filtered, some the
  next page by cursor) or one contact by id, with the bench agent's API key;
- identify (40 %): a verified identify of the identify section's returning users, with a
  fresh HS256 token each time;

and, a fifth of the way into the timed part (at most 5 s), one CSV of IMPORT_ROWS new
contacts is uploaded to `POST /api/v1/imports/` and polled until the task worker has
finished it.

The server is `manage.py serve`, as `make serve` starts it with RAPPORT_ENV=production:
collectstatic, gunicorn from config/gunicorn.conf.py (WEB_CONCURRENCY processes of
GUNICORN_THREADS threads, recycled after GUNICORN_MAX_REQUESTS), one task worker, and a
psycopg pool of at most DB_POOL_SIZE connections in every process, request logs on (to a
file, var/bench-load-server.log). Only the plain-http settings of `make serve LOCAL_HTTP=1`
and the rate limits differ: one loopback client sends every call, so the per-address
widget limit and the per-key API limit are lifted for it. The sizes suit the 2-core
reference machine: three processes of eight threads hold 24 requests at once, each process
never needs more connections than its pool holds, and 64 clients queue in gunicorn rather
than in the database.

What must hold:
- no errors: every answer is the one expected (200 and the table's markup, 200 JSON, the
  import completed with every row created), no connection refused or reset; a keep-alive
  connection the server closed between two calls (idle timeout, a gunicorn process being
  recycled) is opened again and the call sent once more, as browsers and HTTP libraries do;
  such reconnects are reported, not counted as errors;
- the server's database connections, counted every SAMPLE_EVERY_S seconds in
  pg_stat_activity, never exceed (WEB_CONCURRENCY + WORKER_PROCESSES) × DB_POOL_SIZE. The
  server's processes carry their own application_name (PGAPPNAME), so the benchmark's own
  connections and anyone else's are not counted.

p50/p95/p99 per kind are measured after a warm-up (the first fifth of the run, at most 5 s;
errors count from the first call). The clients do not pause, so the server is saturated:
the latencies include the wait for one of its threads, and the rates add up to what it
serves of this mix on this machine.

The import's rows are deleted afterwards, with its job, file and task row, and the session
the clients used, so repeated runs leave the agent as it was.

BENCH_LOAD_SECONDS sets the timed part (default 60 s, or 5 s when the agent holds fewer
than SMALL_AGENT contacts, as CI's `--smoke` run on 3,000 contacts does); BENCH_LOAD_CLIENTS
and BENCH_LOAD_IMPORT_ROWS the clients and the import (never more rows than the agent has).
"""

from __future__ import annotations

import html
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import psycopg
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from bench import identify, imports
from bench.bulk import _database_url
from bench.context import BenchContext
from bench.harness import Row, Timing, ms
from workspaces.selectors import identity_secret_current

SMALL_AGENT = 100_000
CLIENTS = int(os.environ.get("BENCH_LOAD_CLIENTS", "64"))
IMPORT_ROWS = int(os.environ.get("BENCH_LOAD_IMPORT_ROWS", "20000"))
# Server sizes (see the module docstring): 3 × 8 threads, one task worker, pools of 8.
WEB_CONCURRENCY = 3
GUNICORN_THREADS = 8
WORKER_PROCESSES = 1
DB_POOL_SIZE = 8
CONNECTION_BOUND = (WEB_CONCURRENCY + WORKER_PROCESSES) * DB_POOL_SIZE
SAMPLE_EVERY_S = 0.25
# After the load, the import may take this much longer before it counts as failed.
IMPORT_GRACE_S = 120.0
READY_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 30.0

MIX = (("table", 25), ("api", 35), ("identify", 40))
LABELS = {"table": "contacts table page", "api": "API read", "identify": "verified identify"}
TABLE_VARIANTS = (
    {},
    {"ordering": "name"},
    {"ordering": "email"},
    {"ordering": "-last_seen_at"},
    {"ordering": "-attr.mrr"},
    {"q": "mart"},
    {"q": "heather"},
)
API_LIST_VARIANTS = (
    {},
    {"ordering": "name"},
    {"ordering": "-attr.mrr"},
    {"tag": "vip"},
    {"identity": "verified"},
    {"q": "garcia"},
)
# Share of table and API list calls that ask for the page after the client's last one.
NEXT_PAGE_SHARE = 0.25
# Share of API reads that fetch one contact rather than a page.
DETAIL_SHARE = 0.4
TABLE_MARKUP = b'id="contact-table"'
NEXT_LINK = re.compile(rb'rel="next" href="([^"]+)"')
IMPORT_FILE = Path("var/bench-load-import.csv")
SERVER_LOG = Path("var/bench-load-server.log")


def duration_s(contacts: int) -> float:
    """The timed part: BENCH_LOAD_SECONDS, else 60 s, or 5 s for a small (CI smoke) agent."""
    configured = os.environ.get("BENCH_LOAD_SECONDS")
    if configured:
        return float(configured)
    return 60.0 if contacts >= SMALL_AGENT else 5.0


# --- The server ----------------------------------------------------------------------------------


def _migrations_pending() -> bool:
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def server_env(*, port: int, secret_key: str, metrics_dir: str, app_name: str) -> dict[str, str]:
    """What `make serve LOCAL_HTTP=1` sets, this database and its encryption key, the sizes
    above, the client's rate limits lifted and an application_name on every connection the
    server opens."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "RAPPORT_ENV": "production",
        "DEBUG": "false",
        "SECRET_KEY": secret_key,
        # The identity secrets in the database were encrypted by this process's key.
        "RAPPORT_ENCRYPTION_KEY": settings.RAPPORT_ENCRYPTION_KEY or settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SECURE_HSTS_SECONDS": "0",
        "DATABASE_URL": _database_url(),
        # Uploaded imports where this process deletes them afterwards.
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(WEB_CONCURRENCY),
        "GUNICORN_THREADS": str(GUNICORN_THREADS),
        "WORKER_PROCESSES": str(WORKER_PROCESSES),
        "DB_POOL_SIZE": str(DB_POOL_SIZE),
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "WIDGET_RATE_LIMIT_PER_ADDRESS": "1000000/minute",
        "API_RATE_LIMIT": "1000000/minute",
        "PGAPPNAME": app_name,
    }
    # Settings of the development process that are not production's.
    for name in ("BEHIND_TLS_PROXY", "METRICS_ALLOWED_NETWORKS", "LOG_FORMAT", "REQUEST_LOG"):
        env.pop(name, None)
    return env


class Server:
    """`manage.py serve` on loopback for the length of a `with` block, ready on /readyz; on
    leaving it gets SIGTERM, as an operator stops it, and `exit_status` is what it returned."""

    def __init__(self, *, secret_key: str, app_name: str) -> None:
        self.port = identify._free_port()
        self.secret_key, self.app_name = secret_key, app_name
        self.exit_status: int | None = None

    def __enter__(self) -> Server:
        self.metrics_dir = tempfile.mkdtemp(prefix="rapport-bench-metrics-")
        command = [sys.executable, "manage.py", "serve"]
        if not _migrations_pending():
            command.append("--skip-migrate")
        env = server_env(
            port=self.port,
            secret_key=self.secret_key,
            metrics_dir=self.metrics_dir,
            app_name=self.app_name,
        )
        SERVER_LOG.parent.mkdir(parents=True, exist_ok=True)
        with SERVER_LOG.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        status = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"manage.py serve exited with status {self.process.returncode}: {log_tail()}"
                )
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/readyz")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"manage.py serve was not ready in time (/readyz {status})")

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.exit_status = self.process.returncode
        shutil.rmtree(self.metrics_dir, ignore_errors=True)


def log_tail(lines: int = 20) -> str:
    try:
        return "\n".join(SERVER_LOG.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


# --- Counting the server's connections -----------------------------------------------------------


class ConnectionSampler(threading.Thread):
    """Counts, every SAMPLE_EVERY_S, the client connections to this database that carry the
    server's application_name (open, and of those not idle), on a connection of its own."""

    def __init__(self, app_name: str) -> None:
        super().__init__(daemon=True)
        self.app_name = app_name
        self.stopping = threading.Event()
        self.samples: list[tuple[int, int]] = []
        # The server's backends at the last sample (their CPU is the database's share).
        self.pids: list[int] = []
        self.error: str | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(_database_url(), autocommit=True) as conn:
                while not self.stopping.is_set():
                    row = conn.execute(
                        "SELECT count(*), count(*) FILTER (WHERE state <> 'idle'), "
                        "coalesce(array_agg(pid), '{}') "
                        "FROM pg_stat_activity WHERE datname = current_database() "
                        "AND backend_type = 'client backend' AND application_name = %s "
                        "AND pid <> pg_backend_pid()",
                        [self.app_name],
                    ).fetchone()
                    self.samples.append((row[0], row[1]))
                    self.pids = list(row[2])
                    self.stopping.wait(SAMPLE_EVERY_S)
        except psycopg.Error as exc:
            self.error = repr(exc)

    def stop(self) -> None:
        self.stopping.set()
        if self.ident is not None:
            self.join(timeout=10)

    @property
    def max_open(self) -> int:
        return max((opened for opened, _ in self.samples), default=0)

    @property
    def max_active(self) -> int:
        return max((active for _, active in self.samples), default=0)


# --- Clients -------------------------------------------------------------------------------------


@dataclass
class Setup:
    """What every client needs to build its calls."""

    port: int
    table_path: str
    session_cookie: str
    api_key: str
    contact_ids: list[str]
    identify_path: str
    identify_secret: str


@dataclass
class Tally:
    """Latencies (ms) of the timed calls and errors of all calls, by kind."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    reconnects: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def latency(self, kind: str, value: float) -> None:
        with self.lock:
            self.latencies.setdefault(kind, []).append(value)

    def error(self, kind: str, what: str) -> None:
        with self.lock:
            self.errors.setdefault(kind, []).append(what)

    def reconnected(self) -> None:
        with self.lock:
            self.reconnects += 1


class CallError(Exception):
    """A call that did not get the answer expected."""


class HttpClient:
    """One keep-alive connection to the server. A call on a connection that already carried
    one and that the server has closed since is sent again, once, on a new connection."""

    STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)

    def __init__(self, port: int, tally: Tally) -> None:
        self.port, self.tally = port, tally
        self.conn: http.client.HTTPConnection | None = None
        self.used = False

    def _connect(self) -> http.client.HTTPConnection:
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        self.used = False
        return self.conn

    def call(
        self, method: str, path: str, *, body: bytes | str | None = None, headers: dict
    ) -> tuple[int, bytes]:
        for attempt in (1, 2):
            conn = self.conn or self._connect()
            reused = self.used
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                content = response.read()
            except self.STALE as exc:
                self.close()
                if reused and attempt == 1:
                    self.tally.reconnected()
                    continue
                raise CallError(repr(exc)) from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise CallError(repr(exc)) from None
            self.used = True
            if response.will_close:
                self.close()
            return response.status, content
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None


class LoadClient:
    """A client of the mix: each call's kind drawn by weight, its latency and outcome noted."""

    def __init__(self, setup: Setup, tally: Tally, seed: int) -> None:
        self.setup, self.tally = setup, tally
        self.rng = random.Random(seed)
        self.http = HttpClient(setup.port, tally)
        self.signer = identify._Sender(setup.port, setup.identify_path, setup.identify_secret)
        self.signer.rng = random.Random(seed + 1)
        self.kinds = [kind for kind, _ in MIX]
        self.weights = [weight for _, weight in MIX]
        self.next_table: str | None = None
        self.next_api: str | None = None

    def table(self) -> None:
        if self.next_table and self.rng.random() < NEXT_PAGE_SHARE:
            path = self.next_table
        else:
            params = self.rng.choice(TABLE_VARIANTS)
            path = self.setup.table_path + (f"?{urlencode(params)}" if params else "")
        status, body = self.http.call(
            "GET", path, headers={"Cookie": f"sessionid={self.setup.session_cookie}"}
        )
        if status != 200 or TABLE_MARKUP not in body:
            raise CallError(f"HTTP {status} for {path}" + (" without the table" * (status == 200)))
        found = NEXT_LINK.search(body)
        self.next_table = html.unescape(found.group(1).decode()) if found else None

    def api(self) -> None:
        headers = {"Authorization": f"Bearer {self.setup.api_key}"}
        if self.rng.random() < DETAIL_SHARE:
            path = f"/api/v1/contacts/{self.rng.choice(self.setup.contact_ids)}/"
            status, _ = self.http.call("GET", path, headers=headers)
            if status != 200:
                raise CallError(f"HTTP {status} for {path}")
            return
        if self.next_api and self.rng.random() < NEXT_PAGE_SHARE:
            path = self.next_api
        else:
            params = {"page_size": 50, **self.rng.choice(API_LIST_VARIANTS)}
            path = "/api/v1/contacts/?" + urlencode(params)
        status, body = self.http.call("GET", path, headers=headers)
        if status != 200:
            raise CallError(f"HTTP {status} for {path}")
        page = json.loads(body)
        following = page.get("next")
        self.next_api = None
        if following:
            parts = urlsplit(following)
            self.next_api = f"{parts.path}?{parts.query}"

    def identify(self) -> None:
        status, _ = self.http.call(
            "POST",
            self.setup.identify_path,
            body=self.signer.body(),
            headers={"Content-Type": "application/json"},
        )
        if status != 200:
            raise CallError(f"HTTP {status}")

    def once(self, kind: str, *, timed: bool) -> None:
        started = time.perf_counter()
        try:
            getattr(self, kind)()
        except CallError as exc:
            self.tally.error(kind, str(exc))
            return
        except Exception as exc:  # whatever went wrong, the call failed
            self.tally.error(kind, repr(exc))
            return
        if timed:
            self.tally.latency(kind, (time.perf_counter() - started) * 1000)

    def loop(self, measure_from: float, stop: float) -> None:
        while (now := time.monotonic()) < stop:
            kind = self.rng.choices(self.kinds, self.weights)[0]
            self.once(kind, timed=now >= measure_from)
        self.http.close()


# --- The import ----------------------------------------------------------------------------------


@dataclass
class ImportOutcome:
    rows: int
    status: str = "not started"
    created: int = 0
    failed: int = 0
    error: str = ""
    upload_ms: float = 0.0
    # Seconds from the upload's start until the job was seen completed (or gave up).
    seconds: float | None = None
    # Seconds from the start of the timed load until then.
    finished_at_s: float | None = None

    @property
    def done(self) -> bool:
        return self.status == "completed" and self.created == self.rows and not self.error


def _multipart(path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    return head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode(), boundary


def import_under_load(
    setup: Setup,
    path: Path,
    outcome: ImportOutcome,
    *,
    start_at: float,
    load_start: float,
    give_up_at: float,
    tally: Tally,
) -> None:
    """Upload the CSV at `start_at` (monotonic) and poll the job until it ends."""
    time.sleep(max(0.0, start_at - time.monotonic()))
    client = HttpClient(setup.port, tally)
    headers = {"Authorization": f"Bearer {setup.api_key}"}
    body, boundary = _multipart(path)
    started = time.monotonic()
    try:
        status, content = client.call(
            "POST",
            "/api/v1/imports/",
            body=body,
            headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        outcome.upload_ms = (time.monotonic() - started) * 1000
        if status != 202:
            raise CallError(f"upload: HTTP {status}: {content[:200]!r}")
        job_id = json.loads(content)["id"]
        while True:
            status, content = client.call("GET", f"/api/v1/imports/{job_id}/", headers=headers)
            if status != 200:
                raise CallError(f"poll: HTTP {status}")
            job = json.loads(content)
            outcome.status = job["status"]
            outcome.created = job["counts"]["created"]
            outcome.failed = job["counts"]["failed"]
            if job["status"] in ("completed", "failed"):
                outcome.error = job["error"]
                break
            if time.monotonic() > give_up_at:
                outcome.error = f"still {job['status']} {IMPORT_GRACE_S:g} s after the load"
                break
            time.sleep(0.5)
    except (CallError, ValueError, KeyError) as exc:
        outcome.error = str(exc)
    finally:
        client.close()
        ended = time.monotonic()
        outcome.seconds = ended - started
        outcome.finished_at_s = ended - load_start
    if outcome.error or outcome.status != "completed":
        tally.error("import", outcome.error or outcome.status)


def _forget_import(ctx: BenchContext) -> None:
    """The rows an earlier import left (imports.py's `imp_` ids), and this section's jobs
    with their stored files and task rows."""
    from transfers.models import ContactImport
    from transfers.tasks import import_task_rows

    imports._forget_imported(ctx)
    for job in ContactImport.objects.filter(agent=ctx.agent, filename=IMPORT_FILE.name):
        import_task_rows(import_id=job.pk).delete()
        if job.file:
            job.file.delete(save=False)
        job.delete()


# --- The run -------------------------------------------------------------------------------------


def _session_cookie(ctx: BenchContext, secret_key: str) -> str:
    """A session of the bench user, signed with the server's SECRET_KEY."""
    with override_settings(SECRET_KEY=secret_key):
        client = Client()
        client.force_login(ctx.user)
        return client.cookies["sessionid"].value


def _contact_ids(ctx: BenchContext, count: int = 1000) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM contacts_contact WHERE agent_id = %s AND deleted_at IS NULL "
            "ORDER BY random() LIMIT %s",
            [ctx.agent.pk, count],
        )
        return [str(row[0]) for row in cursor.fetchall()]


def _preflight(setup: Setup, tally: Tally) -> None:
    """One call of each kind before the load, so a broken setup fails at once and clearly."""
    client = LoadClient(setup, tally, seed=0)
    for kind, _ in MIX:
        try:
            getattr(client, kind)()
        except (CallError, ValueError) as exc:
            raise RuntimeError(f"{kind} does not work before the load: {exc}") from None
    client.http.close()


def kind_row(kind: str, share: int, latencies: list[float], errors: list[str], seconds: float):
    timing = Timing(latencies or [0.0])
    return Row(
        work=f"load: {LABELS[kind]} ({share} % of calls)",
        target="0 errors",
        measured=(
            f"{len(latencies):,} calls, {len(latencies) / seconds:,.0f} req/s; "
            f"p50 {ms(timing.p50)}, p95 {ms(timing.p95)}, p99 {ms(timing.p99)}; "
            f"{len(errors)} errors"
        ),
        ok=bool(latencies) and not errors,
    )


def import_row(outcome: ImportOutcome, seconds: float) -> Row:
    if outcome.seconds and outcome.done:
        when = (
            f"finished {outcome.finished_at_s:.1f} s into the load"
            if outcome.finished_at_s is not None and outcome.finished_at_s <= seconds
            else f"finished {outcome.finished_at_s - seconds:.1f} s after the load"
        )
        measured = (
            f"{outcome.seconds:.1f} s from upload to completed "
            f"({outcome.rows / outcome.seconds:,.0f} rows/s; upload {ms(outcome.upload_ms)}), "
            f"{when}"
        )
    else:
        measured = (
            f"{outcome.status}: {outcome.error or 'no error given'} "
            f"({outcome.created:,} of {outcome.rows:,} created)"
        )
    return Row(
        work=f"load: import of a {outcome.rows:,}-row CSV through the API and the task worker",
        target="completed, every row created, 0 errors",
        measured=measured,
        ok=outcome.done,
    )


def connections_row(sampler: ConnectionSampler) -> Row:
    sizes = (
        f"({WEB_CONCURRENCY} web processes + {WORKER_PROCESSES} task worker) × pool {DB_POOL_SIZE}"
    )
    measured = (
        f"max {sampler.max_open} open ({sampler.max_active} busy) in "
        f"{len(sampler.samples):,} samples every {SAMPLE_EVERY_S:g} s"
    )
    if sampler.error:
        measured += f"; sampling failed: {sampler.error}"
    return Row(
        work=f"load: server's database connections, {sizes}",
        target=f"≤ {CONNECTION_BOUND}",
        measured=measured,
        # None seen would mean the count missed the server, not that it used none.
        ok=sampler.error is None and 1 <= sampler.max_open <= CONNECTION_BOUND,
    )


def _proc_cpu(stat: Path, *, reaped: bool) -> tuple[int, float] | None:
    """(process group, CPU seconds) of a process from /proc, with those of the children it
    has waited for when `reaped`; None when it is gone (or there is no /proc)."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return int(fields[2]), ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    """CPU seconds used so far by the benchmark's process (the clients), the server's
    processes (one process group: gunicorn, its workers and the task worker, with the
    gunicorn workers already recycled) and each of the server's database backends."""

    clients: float
    server: float
    backends: dict[int, float]

    @classmethod
    def now(cls, server_pid: int, backend_pids: list[int]) -> Usage:
        server = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            found = _proc_cpu(stat, reaped=True)
            if found and found[0] == server_pid:
                server += found[1]
        backends = {}
        for pid in backend_pids:
            found = _proc_cpu(Path(f"/proc/{pid}/stat"), reaped=False)
            if found:
                backends[pid] = found[1]
        return cls(time.process_time(), server, backends)

    def since(self, start: Usage) -> tuple[float, float, float]:
        """Clients', server's and its backends' CPU seconds from `start` to this one."""
        backends = sum(cpu - start.backends.get(pid, 0.0) for pid, cpu in self.backends.items())
        return self.clients - start.clients, self.server - start.server, backends


def _run_clients(
    clients: list[LoadClient], *, load_start: float, stop: float, usage: Callable[[], Usage]
) -> tuple[float, float, float]:
    """Run the clients to `stop`; the CPU seconds used from `load_start` to `stop`."""
    threads = [threading.Thread(target=client.loop, args=(load_start, stop)) for client in clients]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, load_start - time.monotonic()))
    start = usage()
    time.sleep(max(0.0, stop - time.monotonic()))
    used = usage().since(start)
    for thread in threads:
        thread.join()
    return used


def run(ctx: BenchContext, *, repeat: int, log) -> list[Row]:
    seconds = duration_s(ctx.contacts)
    warm_up = min(5.0, seconds / 5)
    import_after = min(5.0, seconds / 5)
    rows = min(IMPORT_ROWS, ctx.contacts)
    identify_agent = identify._identify_agent()
    imports._ensure_schema(ctx)
    _forget_import(ctx)
    path = imports.generate(rows, IMPORT_FILE)
    secret_key = secrets.token_urlsafe(50)
    cookie = _session_cookie(ctx, secret_key)
    setup = Setup(
        port=0,
        table_path=reverse("contacts:list", kwargs={"agent_public_id": ctx.agent.public_id}),
        session_cookie=cookie,
        api_key=ctx.api_key,
        contact_ids=_contact_ids(ctx),
        identify_path=f"/widget/v1/{identify_agent.public_id}/identify",
        identify_secret=identity_secret_current(agent=identify_agent).secret,
    )
    app_name = f"rapport-bench-load-{uuid.uuid4().hex[:8]}"
    tally = Tally()
    outcome = ImportOutcome(rows=rows)
    sampler = ConnectionSampler(app_name)
    log(
        f"  manage.py serve: {WEB_CONCURRENCY} × {GUNICORN_THREADS} threads, "
        f"{WORKER_PROCESSES} task worker, DB_POOL_SIZE {DB_POOL_SIZE}; {CLIENTS} clients for "
        f"{warm_up:g} s + {seconds:g} s, a {rows:,}-row import {import_after:g} s in"
    )
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    server = Server(secret_key=secret_key, app_name=app_name)
    try:
        with server:
            setup.port = server.port
            sampler.start()
            _preflight(setup, tally)
            load_start = time.monotonic() + warm_up
            stop = load_start + seconds
            importer = threading.Thread(
                target=import_under_load,
                args=(setup, path, outcome),
                kwargs={
                    "start_at": load_start + import_after,
                    "load_start": load_start,
                    "give_up_at": stop + IMPORT_GRACE_S,
                    "tally": tally,
                },
            )
            importer.start()
            clients = [LoadClient(setup, tally, seed=n) for n in range(1, CLIENTS + 1)]
            client_cpu, server_cpu, backend_cpu = _run_clients(
                clients,
                load_start=load_start,
                stop=stop,
                usage=lambda: Usage.now(server.process.pid, sampler.pids),
            )
            importer.join()
            sampler.stop()
    finally:
        sampler.stop()
        from django.contrib.sessions.models import Session

        Session.objects.filter(session_key=cookie).delete()
        _forget_import(ctx)
        path.unlink(missing_ok=True)
    timed = sum(map(len, tally.latencies.values()))
    log(
        f"  {timed:,} timed calls ({timed / seconds:,.0f} req/s), "
        f"{sum(map(len, tally.errors.values()))} errors, {tally.reconnects} reconnects; "
        f"server stopped with status {server.exit_status} (log: {SERVER_LOG})"
    )
    # The server may not have had the machine to itself: what it and the clients took of it.
    cores = os.cpu_count() or 1
    log(
        f"  CPU in the {seconds:g} s timed: server {server_cpu:.1f} s, its database backends "
        f"{backend_cpu:.1f} s ({(server_cpu + backend_cpu) / seconds:.2f} of {cores} cores), "
        f"clients {client_cpu:.1f} s"
    )
    for kind, errors in tally.errors.items():
        log(f"  {kind} errors ({len(errors)}), first: {errors[:3]}")
    out = [
        kind_row(kind, share, tally.latencies.get(kind, []), tally.errors.get(kind, []), seconds)
        for kind, share in MIX
    ]
    out += [import_row(outcome, seconds), connections_row(sampler)]
    for row in out:
        log(f"  {row.work}: {row.measured}")
    return out
