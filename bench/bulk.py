"""A bulk action on a million contacts through the real job code, and the table while it
runs.

Up to a million contacts the job takes every contact of the agent; in a larger agent it
takes the newest million (the view "created after <the millionth newest moment>"), as a
support lead would tag this year's sign-ups. The job is queued as the bulk bar queues it
("Select all N matching" + Add tag, through
`transfers.bulk.services.bulk_job_start`) and run by `bulk_job_run` in a child process, as
the task worker would run it: keyset batches in id order, each one INSERT … ON CONFLICT DO
NOTHING of the tag links, the contacts' updated_at, one audit entry per contact and the
job's progress in one transaction. Meanwhile this process requests the table's default page
through the URL stack (as the table section does) again and again: its p95 under the job's
load is what a support lead feels while a million contacts are being tagged. The same page
with the database idle is the baseline.

Afterwards the tag, its links, the job's audit entries and the job go, and the tables are
vacuumed, so the agent is the same from run to run.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote, urlencode

from django.db import connection
from django.urls import reverse

from bench.context import BenchContext
from bench.harness import Row, Timing, child_process, measure, ms
from bench.table import TABLE_TARGET_MS
from transfers.bulk.runner import batch_size, pause_ratio

TAG = "bench-bulk"
# The job's size: a million contacts (the "bulk action on a million contacts"),
# every contact of a smaller agent.
MAX_CONTACTS = 1_000_000

RUN_JOB = """
import json, sys, time
import django
django.setup()
from transfers.bulk.runner import bulk_job_run
from transfers.management.commands.worker import lower_priority
lower_priority()  # as `manage.py worker` runs it
from transfers.models import BulkJob
started = time.perf_counter()
status = bulk_job_run(sys.argv[1])
seconds = time.perf_counter() - started
job = BulkJob.objects.get(pk=sys.argv[1])
print(json.dumps({"status": status, "error": job.error, "processed": job.processed_count,
                  "changed": job.changed_count, "seconds": seconds}))
"""


def _database_url() -> str:
    """This process's database, for the child (a test database under pytest, too)."""
    db = connection.settings_dict
    user = quote(db["USER"] or "postgres")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def _forget(ctx: BenchContext) -> None:
    """Remove what an earlier run left: the tag and its links, the jobs' audit entries."""
    from contacts.models import AuditEvent, Tag
    from transfers.models import BulkJob
    from transfers.tasks import bulk_task_rows

    label = f"{ctx.user.get_username()} (bulk action)"
    AuditEvent.objects.filter(agent=ctx.agent, actor_label=label).delete()
    Tag.objects.filter(agent=ctx.agent, name=TAG).delete()  # its links cascade
    for job_id in BulkJob.objects.filter(agent=ctx.agent).values_list("pk", flat=True):
        bulk_task_rows(job_id=job_id).delete()
    BulkJob.objects.filter(agent=ctx.agent).delete()
    if connection.get_autocommit():
        with connection.cursor() as cursor:
            cursor.execute(
                "VACUUM ANALYZE contacts_contact, contacts_contacttag, contacts_auditevent"
            )


def selection(ctx: BenchContext) -> tuple[str, int, int]:
    """The view the job acts on (its query string), how many contacts it matches and how many
    live contacts the agent has: every live contact, or in an agent of more than
    MAX_CONTACTS the newest MAX_CONTACTS of them (by a `created_after` moment; contacts
    created in the same microsecond all count)."""
    from transfers.bulk.actions import bulk_matching

    live = ctx.agent.contacts.filter(deleted_at__isnull=True)
    total = live.count()
    if total <= MAX_CONTACTS:
        return "", total, total
    newest = live.order_by("-created_at").values_list("created_at", flat=True)
    since = newest[MAX_CONTACTS - 1 : MAX_CONTACTS].get()
    query = urlencode({"created_after": since.isoformat()})
    return query, bulk_matching(agent=ctx.agent, query=query).count(), total


def _queue(ctx: BenchContext, query: str, count: int):
    from transfers.bulk.actions import BackgroundRequest, BulkAction
    from transfers.bulk.services import bulk_job_start
    from transfers.tasks import bulk_task_rows

    job = bulk_job_start(
        BackgroundRequest(
            agent=ctx.agent,
            user=ctx.user,
            action=BulkAction("tag", {"tag": TAG}),
            query=query,
            estimate=count,
        )
    )
    # The child process runs it; no task worker should take the queued task too.
    bulk_task_rows(job_id=job.pk).delete()
    return job


def run(ctx: BenchContext, *, repeat: int, log) -> list[Row]:
    _forget(ctx)
    query, count, live = selection(ctx)
    client = ctx.client()
    url = reverse("contacts:list", kwargs={"agent_public_id": ctx.agent.public_id})
    idle = measure(lambda: client.get(url), repeat=repeat)
    log(f"  table idle: p50 {ms(idle.p50)} / p95 {ms(idle.p95)}")

    job = _queue(ctx, query, count)
    child = child_process(RUN_JOB, str(job.pk), DATABASE_URL=_database_url())
    samples: list[float] = []
    # The table's page, requested back to back while the job runs (at least once).
    while child.poll() is None or not samples:
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            child.kill()
            raise RuntimeError(f"the table answered {response.status_code} during the job")
    out, err = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the bulk job's process failed:\n{err}")
    result = json.loads(out.strip().splitlines()[-1])
    log(f"  job: {result}")
    busy = Timing(samples)
    rate = result["processed"] / result["seconds"] if result["seconds"] else 0.0
    done = result["status"] == "completed" and result["processed"] == count
    _forget(ctx)
    return [
        Row(
            work=(
                f"bulk tag of {count:,} matching contacts "
                f"({f'the newest of {live:,}; ' if query else ''}background job)"
            ),
            target="completes; each contact audited",
            measured=(
                f"{rate:,.0f} rows/s ({result['seconds']:.1f} s, {result['changed']:,} tagged; "
                f"batches of {batch_size():,}, resting {pause_ratio():g}× each batch's time)"
            ),
            baseline="—",
            ok=done,
        ),
        Row(
            work="table: default page while the bulk job runs",
            target=f"p95 ≤ {TABLE_TARGET_MS} ms",
            measured=f"p50 {ms(busy.p50)} / p95 {ms(busy.p95)} ({len(samples)} requests)",
            baseline=f"idle p50 {ms(idle.p50)} / p95 {ms(idle.p95)}",
            ratio=f"{busy.p95 / idle.p95:,.1f}× idle p95" if idle.p95 else "—",
            ok=busy.p95 <= TABLE_TARGET_MS,
        ),
    ]
