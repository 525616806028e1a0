"""Several task workers share one queue of imports: each import is run by one worker at a
time, every row is written exactly once, a worker killed mid-import is noticed by the
import's heartbeat and its job finished by another worker, and a worker asked to stop
(SIGTERM) ends after the batch it is writing, hands the import back and exits 0.

The fleet tests start real `manage.py worker` processes against the test database (as
tests/webhooks/test_worker_process.py does), with small batches so that an import takes
dozens of transactions, and watch the task rows while they run. They run on PostgreSQL and
on SQLite, where the workers take turns at the file's single write lock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_tasks_db.management.commands import db_worker

from contacts.models import AuditEvent, Contact
from tests.transfers.conftest import counts, upload
from tests.webhooks.test_worker_process import database_url
from transfers import tasks
from transfers.imports import engine
from transfers.imports.engine import import_run
from transfers.management.commands import worker
from transfers.models import ContactImport, ImportRowIssue
from transfers.services import import_create, import_start

ROOT = Path(__file__).resolve().parents[2]
BATCH = 20  # rows per transaction in the worker processes
ROWS = 1_200  # 60 batches an import
BAD_EVERY = 50  # every 50th row has an invalid email: a failed row, reported once
STOPPED = "transfers.tasks.WorkerStopped"
# How long a stopped worker may take to exit: the batch it is writing (milliseconds here),
# then its loops' last writes (the heartbeat removing its row, the relay recording a pass),
# which it waits for up to LOOPS_STOP_SECONDS; on SQLite those wait for the write lock.
EXIT_SECONDS = worker.LOOPS_STOP_SECONDS + 15


@pytest.fixture(autouse=True)
def _stop_flag_cleared():
    """The stop flag is process-wide: what a test sets must not stop the next one's runs."""
    engine.stop_requested.clear()
    yield
    engine.stop_requested.clear()


def people_csv(tag: str, rows: int = ROWS) -> str:
    lines = ["external_id,name,email"]
    for n in range(1, rows + 1):
        email = "not-an-email" if n % BAD_EVERY == 0 else f"{tag}-{n}@example.com"
        lines.append(f"{tag}-{n},Person {n},{email}")
    return "\n".join(lines) + "\n"


def queued_import(agent, tag: str, rows: int = ROWS, *, dry_run: bool = False) -> ContactImport:
    job = import_create(
        agent=agent, upload=upload(people_csv(tag, rows), f"{tag}.csv"), actor_label="fleet"
    )
    return import_start(job=job, dry_run=dry_run)


def bad_rows(rows: int = ROWS) -> int:
    return rows // BAD_EVERY


class Fleet:
    """Worker processes by name, each writing its output to a log file the failure shows."""

    def __init__(self, folder: Path, *, stale_seconds: int) -> None:
        self.folder = folder
        self.stale_seconds = stale_seconds
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "IMPORT_BATCH_ROWS": str(BATCH),
            "IMPORT_STALE_SECONDS": str(self.stale_seconds),
            "PYTHONUNBUFFERED": "1",  # the log shows when the worker polls (wait_ready)
        }
        log = (self.folder / f"{name}.log").open("wb")
        # This checkout's manage.py with fixed arguments: nothing from outside the test.
        self.processes[name] = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "manage.py",
                "worker",
                "--no-reload",
                "--no-startup-delay",
                "--worker-id",
                name,
                "--interval",
                "0.1",
                "--recover-interval",
                "1",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self.processes[name]

    def wait_ready(self, seconds: float) -> None:
        """Until every worker has started polling the queue (db_worker logs it)."""
        deadline = time.monotonic() + seconds
        for name in self.processes:
            while f"worker_id={name}" not in (self.folder / f"{name}.log").read_text():
                if time.monotonic() > deadline:
                    raise AssertionError(f"{name} did not start\n{self.logs()}")
                time.sleep(0.05)

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n{(self.folder / f'{name}.log').read_text(errors='replace')[-3000:]}"
            for name in self.processes
        )

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@pytest.fixture
def fleet(tmp_path):
    fleets: list[Fleet] = []

    def make(*, stale_seconds: int) -> Fleet:
        fleets.append(Fleet(tmp_path, stale_seconds=stale_seconds))
        return fleets[-1]

    yield make
    for made in fleets:
        made.stop_all()


def running_task_holders() -> dict[str, str]:
    """Import id -> the worker whose task row for it is RUNNING, checking that no import has
    two running task rows and no worker two running imports."""
    rows = list(
        tasks.import_task_rows().filter(status="RUNNING").values_list("args_kwargs", "worker_ids")
    )
    jobs = Counter(a["args"][0] for a, _ in rows)
    workers = Counter(w[-1] for _, w in rows)
    assert max(jobs.values(), default=0) <= 1, f"an import is run twice at once: {rows}"
    assert max(workers.values(), default=0) <= 1, f"a worker runs two imports: {rows}"
    return {a["args"][0]: w[-1] for a, w in rows}


def watch(check, seconds: float, what: str, fleet: Fleet):
    """Poll `check` (returning a true value when done) while asserting, at every poll, that
    no import is run by two workers at once; returns check's value."""
    deadline = time.monotonic() + seconds
    while True:
        running_task_holders()
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{fleet.logs()}")
        time.sleep(0.02)


def mid_job(job_ids) -> ContactImport | None:
    """A running import with at least one batch committed and more than half still to go."""
    return (
        ContactImport.objects.filter(
            pk__in=job_ids,
            status="running",
            processed_rows__gte=BATCH,
            processed_rows__lte=ROWS // 2,
        )
        .order_by("processed_rows")
        .first()
    )


def assert_written_exactly_once(job: ContactImport, tag: str) -> None:
    """Every row counted once, each good row one contact created once, each bad row one
    issue: a batch committed twice would show as updated or unchanged rows, extra progress,
    a second audit entry or a second issue for the same row."""
    job.refresh_from_db()
    good = ROWS - bad_rows()
    assert job.status == "completed", job.error
    assert job.total_rows == job.processed_rows == ROWS
    assert counts(job) == {
        "created": good, "updated": 0, "unchanged": 0, "failed": bad_rows(), "skipped": 0,
    }  # fmt: skip
    contacts = Contact.objects.filter(agent=job.agent, external_id__startswith=f"{tag}-")
    ids = list(contacts.values_list("pk", flat=True))
    assert len(ids) == good
    assert contacts.values("email").distinct().count() == good
    expected = {f"{tag}-{n}" for n in range(1, ROWS + 1) if n % BAD_EVERY}
    assert set(contacts.values_list("external_id", flat=True)) == expected
    created = AuditEvent.objects.filter(contact_id__in=ids)
    assert created.count() == good
    assert set(created.values_list("action", flat=True)) == {"created"}
    issues = ImportRowIssue.objects.filter(job=job)
    assert sorted(issues.values_list("row_number", flat=True)) == [
        n + 1 for n in range(BAD_EVERY, ROWS + 1, BAD_EVERY)
    ]  # file line numbers, the header being line 1


@pytest.mark.django_db(transaction=True)
def test_three_workers_share_the_imports_and_one_killed_mid_import_is_finished_by_another(
    agent, fleet
):
    names = {"fleet-a", "fleet-b", "fleet-c"}
    workers = fleet(stale_seconds=10)  # the smallest IMPORT_STALE_SECONDS the settings take
    for name in sorted(names):
        workers.start(name)
    workers.wait_ready(30)
    # Queued while the three poll: each takes one (a worker runs one task at a time) and the
    # fourth waits for the first one free.
    tags = ["north", "south", "east", "west"]
    jobs = {tag: queued_import(agent, tag) for tag in tags}
    job_ids = [str(job.pk) for job in jobs.values()]

    victim_job = watch(lambda: mid_job(job_ids), 60, "an import halfway", workers)
    victim = running_task_holders()[str(victim_job.pk)]
    workers.processes[victim].send_signal(signal.SIGKILL)  # nothing runs, nothing is recorded
    assert workers.processes[victim].wait(10) == -signal.SIGKILL
    victim_job.refresh_from_db()
    assert victim_job.status == "running"  # as the dead worker left it
    assert BATCH <= victim_job.processed_rows < ROWS
    assert victim_job.processed_rows % BATCH == 0  # only whole batches were committed

    watch(
        lambda: ContactImport.objects.filter(pk__in=job_ids, status="completed").count() == 4,
        60,
        "every import to complete",
        workers,
    )
    survivors = names - {victim}
    for tag, job in jobs.items():
        assert_written_exactly_once(job, tag)
        ends = [r.return_value for r in tasks.import_task_rows(import_id=job.pk)]
        # Run to the end once. Any other run ended "lost" having committed nothing more: a
        # live worker silent past IMPORT_STALE_SECONDS (on SQLite, waiting that long for the
        # write lock) has its import taken over, and its next batch rolls back.
        assert ends.count("completed") == 1
        assert set(ends) <= {"completed", "lost", None}
    # The killed worker's run: its task row closed by the heartbeat check, its job resumed
    # after its last committed batch by one of the other workers.
    rows = list(tasks.import_task_rows(import_id=victim_job.pk))
    dead = [r for r in rows if r.worker_ids[-1] == victim]
    assert [(r.status, r.exception_class_path) for r in dead] == [("FAILED", STOPPED)]
    resumed = next(r for r in rows if r.return_value == "completed")
    assert resumed.status == "SUCCESSFUL"
    assert resumed.worker_ids[-1] in survivors
    claimed = {
        w for ids in tasks.import_task_rows().values_list("worker_ids", flat=True) for w in ids
    }
    if connection.vendor == "postgresql":
        # All three took imports from the one queue. SQLite has one write lock and no queue
        # for it: a worker committing batch after batch can keep another from claiming a
        # task for many seconds (20 s seen), so there only the victim and the survivor
        # that resumed its import are sure to have run one.
        assert claimed == names
    assert {victim, resumed.worker_ids[-1]} <= claimed <= names
    for name in survivors:  # idle now: a stop signal ends them, with status 0
        workers.processes[name].terminate()
    for name in survivors:
        assert workers.processes[name].wait(EXIT_SECONDS) == 0, workers.logs()


@pytest.mark.django_db(transaction=True)
def test_a_worker_stopped_with_sigterm_hands_its_import_back_after_a_batch_and_exits_0(
    agent, fleet
):
    job = queued_import(agent, "stop")
    # Stalls are noticed after five minutes only: what resumes the import below is the
    # stopped worker handing it back, not the heartbeat check.
    workers = fleet(stale_seconds=300)
    first = workers.start("stopping")
    watch(lambda: mid_job([job.pk]), 60, "the import halfway", workers)

    first.send_signal(signal.SIGTERM)
    try:
        code = first.wait(EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the worker did not stop in time\n{workers.logs()}") from None
    assert code == 0, workers.logs()

    job.refresh_from_db()
    assert (job.status, job.run_token) == ("queued", "")
    assert BATCH <= job.processed_rows < ROWS
    assert job.processed_rows % BATCH == 0
    # What was committed is exactly what the progress says.
    written = Contact.objects.filter(agent=agent, external_id__startswith="stop-").count()
    assert written == job.created_count
    assert ImportRowIssue.objects.filter(job=job).count() == job.failed_count
    assert written + job.failed_count == job.processed_rows
    released, waiting = tasks.import_task_rows(import_id=job.pk).order_by("enqueued_at")
    assert (released.status, released.return_value, released.worker_ids) == (
        "SUCCESSFUL", "released", ["stopping"],
    )  # fmt: skip
    assert waiting.status == "READY"  # queued for the next worker at once

    workers.start("next")
    watch(
        lambda: ContactImport.objects.filter(pk=job.pk, status="completed").exists(),
        45,
        "the import to complete",
        workers,
    )
    assert_written_exactly_once(job, "stop")
    waiting.refresh_from_db()
    assert (waiting.status, waiting.return_value, waiting.worker_ids) == (
        "SUCCESSFUL", "completed", ["next"],
    )  # fmt: skip


# --- the same, in process ----------------------------------------------------------------------


def stop_after_batches(monkeypatch, n: int) -> None:
    """Set the stop flag once `n` batches have been written, as the worker's SIGTERM
    handler would while the import is writing its n-th batch."""
    flush = engine._Run.flush
    done = []

    def flush_then_stop(self, batch):
        flush(self, batch)
        done.append(batch)
        if len(done) == n:
            engine.stop_requested.set()

    monkeypatch.setattr(engine._Run, "flush", flush_then_stop)


@pytest.mark.django_db(transaction=True)
def test_a_stopped_run_commits_its_batch_hands_the_job_back_and_enqueues_its_next_run(
    agent, settings, monkeypatch
):
    settings.IMPORT_BATCH_ROWS = 100
    job = queued_import(agent, "half", rows=500)
    stop_after_batches(monkeypatch, 2)

    assert tasks.run_import.call(str(job.pk)) == "released"

    job.refresh_from_db()
    assert (job.status, job.run_token, job.processed_rows) == ("queued", "", 200)
    assert counts(job) == {"created": 196, "updated": 0, "unchanged": 0, "failed": 4, "skipped": 0}
    assert Contact.objects.filter(agent=agent).count() == 196
    # The task row the start enqueued (called directly here, not taken by a worker) and the
    # next run, enqueued by the release.
    assert tasks.import_task_rows(import_id=job.pk).filter(status="READY").count() == 2

    engine.stop_requested.clear()
    assert import_run(job.pk) == "completed"
    job.refresh_from_db()
    assert job.processed_rows == 500
    assert counts(job) == {"created": 490, "updated": 0, "unchanged": 0, "failed": 10, "skipped": 0}
    assert Contact.objects.filter(agent=agent).count() == 490
    assert ImportRowIssue.objects.filter(job=job).count() == 10


@pytest.mark.django_db(transaction=True)
def test_a_stopped_dry_run_is_handed_back_to_start_over(agent, settings, monkeypatch):
    settings.IMPORT_BATCH_ROWS = 100
    job = queued_import(agent, "dry", rows=300, dry_run=True)
    stop_after_batches(monkeypatch, 1)

    assert import_run(job.pk) == "released"

    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.total_rows, job.failed_count) == (
        "queued", 0, None, 0,
    )  # fmt: skip
    assert not ImportRowIssue.objects.filter(job=job).exists()
    engine.stop_requested.clear()
    assert import_run(job.pk) == "completed"
    job.refresh_from_db()
    assert job.dry_run_summary["created"] == 294
    assert ImportRowIssue.objects.filter(job=job).count() == 6
    assert not Contact.objects.filter(agent=agent).exists()


def take_over_after_batch(monkeypatch, job: ContactImport, n: int, *, stop: bool = False):
    """After this run's `n`-th batch, another worker claims the job (this run was silent past
    IMPORT_STALE_SECONDS and thought dead), and with `stop` this run's worker is then told to
    stop; returns a list that holds the new run's token once taken."""
    flush = engine._Run.flush
    seen, taken = [], []

    def flush_then_take_over(self, batch):
        flush(self, batch)
        seen.append(batch)
        if len(seen) == n:
            long_ago = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS + 1)
            ContactImport.objects.filter(pk=job.pk).update(heartbeat_at=long_ago)
            _, token = engine.import_claim(job.pk)
            taken.append(token)
            if stop:
                engine.stop_requested.set()

    monkeypatch.setattr(engine._Run, "flush", flush_then_take_over)
    return taken


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_import_was_claimed_by_another_rolls_its_batch_back(
    agent, settings, monkeypatch
):
    settings.IMPORT_BATCH_ROWS = 100
    job = queued_import(agent, "slow", rows=300)
    taken = take_over_after_batch(monkeypatch, job, 1)

    assert import_run(job.pk) == "lost"

    job.refresh_from_db()
    # The second batch was written, then found the job claimed under the job's row lock and
    # rolled back: only the first batch is there, counted once, for the new run to go on from.
    assert (job.status, job.run_token, job.processed_rows) == ("running", taken[0], 100)
    assert counts(job) == {"created": 98, "updated": 0, "unchanged": 0, "failed": 2, "skipped": 0}
    external_ids = set(Contact.objects.filter(agent=agent).values_list("external_id", flat=True))
    assert external_ids == {f"slow-{n}" for n in range(1, 101) if n % BAD_EVERY}
    assert ImportRowIssue.objects.filter(job=job).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_stopping_run_that_lost_its_claim_leaves_the_new_claim_alone(
    agent, settings, monkeypatch
):
    settings.IMPORT_BATCH_ROWS = 100
    job = queued_import(agent, "lost", rows=300)
    taken = take_over_after_batch(monkeypatch, job, 1, stop=True)
    requeued = []

    assert import_run(job.pk, requeue=lambda: requeued.append(job.pk)) == "lost"

    job.refresh_from_db()
    assert (job.status, job.run_token, job.processed_rows) == ("running", taken[0], 100)
    assert requeued == []  # the new run holds the job: nothing is queued behind its back


def test_the_first_stop_signal_asks_the_running_import_to_stop_and_lets_the_task_end():
    running = worker.Worker(
        queue_names=["default"],
        interval=1,
        batch=False,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="w",
        excluded_queue_names=[],
    )
    running.running_task = True

    running.shutdown(signal.SIGTERM, None)  # returns: the task goes on to its next batch

    assert engine.stop_requested.is_set()
    assert running.running is False  # and no task is taken after it


def test_the_worker_command_runs_the_worker_that_stops_imports(monkeypatch):
    built = []
    monkeypatch.setattr(worker.Worker, "run", lambda self: built.append(type(self)))
    monkeypatch.setattr(worker.Worker, "configure_signals", lambda self: None)
    monkeypatch.setattr(worker, "recover_stalled_imports", lambda: None)
    lowered = []
    monkeypatch.setattr(worker, "lower_priority", lambda: lowered.append(True))

    call_command("worker", "--batch", "--no-reload", "--no-startup-delay", verbosity=0)

    assert built == [worker.Worker]
    assert lowered == [True]  # before the first task
    assert db_worker.Worker is not worker.Worker  # the library's own class is back


@pytest.mark.parametrize(("setting", "step"), [("7", 7), ("0", 0), ("40", 19)])
def test_a_worker_runs_below_the_web_servers_cpu_priority(setting, step):
    """`lower_priority` (called by `manage.py worker`) lowers the process's priority by
    WORKER_NICE, capped at nice's 19; 0 leaves it. In a child: niceness is for good."""
    script = (
        "import os, django; django.setup(); before = os.nice(0)\n"
        "from transfers.management.commands.worker import lower_priority\n"
        "lower_priority(); print(os.nice(0) - before)"
    )
    env = {**os.environ, "WORKER_NICE": setting, "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    before = os.nice(0)
    assert int(result.stdout.strip().splitlines()[-1]) == min(step, 19 - before)
