"""Fast while busy: the table and identify while a large import runs.

A support team uses the dashboard, and visitors keep arriving, while someone imports their
list. A generated CSV (the import section's file: rows = the agent's size, at most
1,000,000) is queued as the dashboard queues it and run by `import_run` in a child process,
as the task worker runs it (the COPY fast path; between batches the job rests
IMPORT_PAUSE_RATIO × each batch's time: 1 unless the environment says otherwise, the value
README recommends where the same machine serves the widget). Meanwhile this process

1. sends identify calls to gunicorn at TARGET_RPS on a fixed schedule for the identify
   section's duration (open loop, latency from when each call was due), then
2. requests the table's default page through the URL stack back to back until the import
   ends (at least `repeat` times).

The same two measurements with the database idle, just before, are the baselines; each
busy figure is judged against its own target (identify p95 ≤ 50 ms at 300 req/s, table
p95 ≤ 100 ms). The imported rows are deleted afterwards so the agent keeps its size.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from django.conf import settings
from django.core.files import File
from django.urls import reverse

from bench import identify, imports
from bench.bulk import _database_url
from bench.context import BenchContext
from bench.harness import Row, Timing, child_process, measure, ms
from bench.table import TABLE_TARGET_MS

BUSY_PAUSE_RATIO = 1.0

RUN_IMPORT = """
import json, sys, time
import django
django.setup()
from transfers.imports.engine import import_run
from transfers.management.commands.worker import lower_priority
lower_priority()  # as `manage.py worker` runs it
from transfers.models import ContactImport
started = time.perf_counter()
import_run(sys.argv[1])
seconds = time.perf_counter() - started
job = ContactImport.objects.get(pk=sys.argv[1])
print(json.dumps({"status": job.status, "error": job.error, "created": job.created_count,
                  "failed": job.failed_count, "seconds": seconds}))
"""


def _queue_import(ctx: BenchContext, path):
    from transfers.services import import_create, import_start
    from transfers.tasks import import_task_rows

    with path.open("rb") as handle:
        job = import_create(
            agent=ctx.agent, upload=File(handle, name=path.name), actor_label="benchmark import"
        )
    import_start(job=job, dry_run=False)
    # The child process runs it; no task worker should take the queued task too.
    import_task_rows(import_id=job.pk).delete()
    return job


def _wait_for_writing(job, child: subprocess.Popen) -> None:
    """Until the import has written its first batch (the scan of the file comes first):
    the writing is what competes with the dashboard."""
    from transfers.models import ContactImport

    deadline = time.monotonic() + 300
    while child.poll() is None and time.monotonic() < deadline:
        if ContactImport.objects.filter(pk=job.pk, processed_rows__gt=0).exists():
            return
        time.sleep(0.2)


def _identify_at_rate(port: int, agent, secret: str) -> tuple[Timing, float, int, list[str]]:
    path = f"/widget/v1/{agent.public_id}/identify"
    latencies, errors, served, total = identify._paced_run(
        lambda: identify._Sender(port, path, secret), identify.TARGET_RPS
    )
    return Timing(latencies or [0.0]), served, total, errors


def run(ctx: BenchContext, *, repeat: int, log) -> list[Row]:
    from workspaces.selectors import identity_secret_current

    imports._ensure_schema(ctx)
    imports._forget_imported(ctx)
    # The setting README recommends for a machine that also serves the widget, unless the
    # environment chooses another (the default, 0, imports flat out).
    pause = float(os.environ.get("IMPORT_PAUSE_RATIO") or BUSY_PAUSE_RATIO)
    rows = min(ctx.agent.contacts.count(), 1_000_000)
    log(f"  generating a {rows:,}-row CSV")
    path = imports.generate(rows)

    client = ctx.client()
    url = reverse("contacts:list", kwargs={"agent_public_id": ctx.agent.public_id})
    idle_table = measure(lambda: client.get(url), repeat=repeat)

    agent = identify._identify_agent()
    secret = identity_secret_current(agent=agent).secret
    port = identify._free_port()
    server = identify._start_server(port, {"DATABASE_URL": _database_url()})
    child = None
    try:
        warm_until = time.monotonic() + identify.WARM_UP_S
        identify._run_threads(
            identify._closed_loop,
            lambda: (
                identify._Sender(port, f"/widget/v1/{agent.public_id}/identify", secret),
                warm_until,
                [],
                [],
            ),
            identify.CLIENT_THREADS,
        )
        idle_identify, idle_served, _, idle_errors = _identify_at_rate(port, agent, secret)
        log(
            f"  idle: table p95 {ms(idle_table.p95)}, identify at {identify.TARGET_RPS} req/s "
            f"p95 {ms(idle_identify.p95)} ({idle_served:,.0f} req/s served)"
        )

        job = _queue_import(ctx, path)
        child = child_process(
            RUN_IMPORT,
            str(job.pk),
            DATABASE_URL=_database_url(),
            MEDIA_ROOT=str(settings.MEDIA_ROOT),  # where the upload was stored
            IMPORT_PAUSE_RATIO=str(pause),
        )
        _wait_for_writing(job, child)
        busy_identify, busy_served, total, busy_errors = _identify_at_rate(port, agent, secret)
        identify_done_before_import = child.poll() is None
        samples: list[float] = []
        while child.poll() is None or len(samples) < repeat:
            started = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"the table answered {response.status_code} during the import")
        out, err = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"the import's process failed:\n{err}")
        child = None
    finally:
        if child is not None:
            child.kill()
            child.wait()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    result = json.loads(out.strip().splitlines()[-1])
    log(f"  import: {result}")
    busy_table = Timing(samples)
    imports._forget_imported(ctx)

    errors = idle_errors + busy_errors
    if errors:
        log(f"  first errors: {errors[:3]}")
    imported = result["status"] == "completed" and result["created"] == rows
    during = (
        f"during a {rows:,}-row import ({result['seconds']:.0f} s, "
        f"{rows / result['seconds']:,.0f} rows/s, resting {pause:g}× each batch's time)"
    )
    return [
        Row(
            work=f"verified identify at {identify.TARGET_RPS} req/s {during}",
            target=f"p95 ≤ {identify.TARGET_P95_MS} ms",
            measured=(
                f"p50 {ms(busy_identify.p50)}, p95 {ms(busy_identify.p95)}, "
                f"p99 {ms(busy_identify.p99)}; {busy_served:,.0f} req/s served of "
                f"{total / identify.DURATION_S:,.0f}, {len(errors)} errors"
            ),
            baseline=(
                f"idle p50 {ms(idle_identify.p50)}, p95 {ms(idle_identify.p95)}, "
                f"p99 {ms(idle_identify.p99)}"
            ),
            ratio=(
                f"{busy_identify.p95 / idle_identify.p95:,.1f}× idle p95"
                if idle_identify.p95
                else "—"
            ),
            ok=busy_identify.p95 <= identify.TARGET_P95_MS
            and busy_served >= 0.97 * identify.TARGET_RPS
            and not errors
            and imported
            and identify_done_before_import,
        ),
        Row(
            work=f"table: default page {during}",
            target=f"p95 ≤ {TABLE_TARGET_MS} ms",
            measured=(
                f"p50 {ms(busy_table.p50)} / p95 {ms(busy_table.p95)} ({len(samples)} requests)"
            ),
            baseline=f"idle p50 {ms(idle_table.p50)} / p95 {ms(idle_table.p95)}",
            ratio=f"{busy_table.p95 / idle_table.p95:,.1f}× idle p95" if idle_table.p95 else "—",
            ok=busy_table.p95 <= TABLE_TARGET_MS and imported,
        ),
    ]
