"""A worker killed mid-import: the import resumes by itself when a worker runs, without
writing a row twice, and the dead run's task row does not stay RUNNING."""

from __future__ import annotations

import csv
import io
import threading
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand
from django_tasks_db.models import DBTaskResult

from contacts.models import Contact
from tests.transfers.conftest import FIVE_ROWS, counts, killed_import, upload
from transfers import tasks
from transfers.imports.engine import import_run
from transfers.imports.files import report_name
from transfers.management.commands import worker
from transfers.models import ContactImport
from transfers.services import import_create, imports_recover_stalled

pytestmark = pytest.mark.django_db

ALL_CREATED = {"created": 5, "updated": 0, "unchanged": 0, "failed": 0, "skipped": 0}
STOPPED = "transfers.tasks.WorkerStopped"


@pytest.fixture(autouse=True)
def _keep_the_test_runs_priority(monkeypatch):
    """The worker command runs in this process here: it must not lower the test run's own CPU
    priority (os.nice cannot be undone without privileges), or every later test — and the
    processes they start — would run at the lowest one."""
    monkeypatch.setattr(worker, "lower_priority", lambda: None)


def long_ago(settings):
    return timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS + 60)


def rows_of(job: ContactImport) -> list[DBTaskResult]:
    return list(tasks.import_task_rows(import_id=job.pk).order_by("enqueued_at"))


def test_a_stalled_import_is_queued_again_and_resumes_after_its_last_saved_batch(
    agent, monkeypatch, django_capture_on_commit_callbacks
):
    job, dead = killed_import(agent, monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        recovered = imports_recover_stalled()

    assert [j.pk for j in recovered] == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.run_token, job.processed_rows, job.created_count) == (
        "queued", "", 2, 2,
    )  # fmt: skip
    dead.refresh_from_db()
    assert (dead.status, dead.exception_class_path) == ("FAILED", STOPPED)
    assert "stopped (killed or lost) before the end" in dead.traceback
    assert dead.finished_at is not None
    assert [r.status for r in rows_of(job)] == ["FAILED", "READY"]

    assert import_run(job.pk) == "completed"  # what the worker does with the new task
    job.refresh_from_db()
    assert counts(job) == ALL_CREATED
    assert job.processed_rows == job.total_rows == 5
    assert sorted(Contact.objects.filter(agent=agent).values_list("external_id", flat=True)) == [
        "u0", "u1", "u2", "u3", "u4",
    ]  # fmt: skip
    assert imports_recover_stalled() == []


@pytest.mark.django_db(transaction=True)
def test_a_worker_started_after_one_was_killed_finishes_the_import_by_itself(agent, monkeypatch):
    job, dead = killed_import(agent, monkeypatch)

    call_command("worker", "--batch", "--no-reload", "--no-startup-delay", verbosity=0)

    job.refresh_from_db()
    assert job.status == "completed"
    assert counts(job) == ALL_CREATED
    assert Contact.objects.filter(agent=agent).count() == 5
    dead_row, resumed = rows_of(job)
    assert dead_row.pk == dead.pk
    assert (dead_row.status, dead_row.exception_class_path) == ("FAILED", STOPPED)
    assert (resumed.status, resumed.return_value) == ("SUCCESSFUL", "completed")
    assert not tasks.import_task_rows().filter(status="RUNNING").exists()


def test_a_stalled_dry_run_starts_over_so_its_report_has_every_row(
    agent, monkeypatch, django_capture_on_commit_callbacks
):
    job, _dead = killed_import(agent, monkeypatch, dry_run=True)

    with django_capture_on_commit_callbacks(execute=True):
        imports_recover_stalled()
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.total_rows) == ("queued", 0, None)
    import_run(job.pk)

    job.refresh_from_db()
    assert (job.status, job.dry_run) == ("completed", True)
    assert counts(job) == ALL_CREATED
    with default_storage.open(report_name(job), "r") as report:
        lines = list(csv.reader(io.StringIO(report.read())))
    assert [line[:3] for line in lines[1:]] == [
        [str(n), "create", f"u{n - 2}"] for n in range(2, 7)
    ]
    assert not Contact.objects.exists()


def test_live_and_waiting_imports_are_left_alone_and_task_rows_of_ended_ones_are_closed(
    agent, settings, django_capture_on_commit_callbacks
):
    old = long_ago(settings)

    def job_in(status: str, heartbeat) -> ContactImport:
        job = import_create(agent=agent, upload=upload(FIVE_ROWS), actor_label="test")
        ContactImport.objects.filter(pk=job.pk).update(status=status, heartbeat_at=heartbeat)
        return job

    def task_row(job: ContactImport, status: str) -> DBTaskResult:
        tasks.run_import.enqueue(str(job.pk))
        row = rows_of(job)[-1]
        DBTaskResult.objects.filter(pk=row.pk).update(status=status, started_at=old)
        return row

    # Running for long, its worker alive (the heartbeat is fresh): a big import.
    live = job_in("running", timezone.now())
    live_row = task_row(live, "RUNNING")
    # Queued long ago, its task still waiting: the worker now running takes it.
    waiting = job_in("queued", old)
    waiting_row = task_row(waiting, "READY")
    # Queued long ago, its task taken by a worker that died before starting the job.
    taken = job_in("queued", old)
    taken_row = task_row(taken, "RUNNING")
    # Finished, but its worker died before recording the end of the task.
    done = job_in("completed", old)
    done_row = task_row(done, "RUNNING")

    with django_capture_on_commit_callbacks(execute=True):
        recovered = imports_recover_stalled()

    assert [j.pk for j in recovered] == [taken.pk]
    status = {r.pk: r.status for r in DBTaskResult.objects.all()}
    assert status[live_row.pk] == "RUNNING"
    assert status[waiting_row.pk] == "READY"
    assert status[taken_row.pk] == "FAILED"
    assert status[done_row.pk] == "FAILED"
    assert [r.status for r in rows_of(waiting)] == ["READY"]  # not queued twice
    assert [r.status for r in rows_of(taken)] == ["FAILED", "READY"]
    live.refresh_from_db()
    done.refresh_from_db()
    assert (live.status, done.status) == ("running", "completed")


def test_the_worker_checks_again_every_interval_and_survives_a_failed_check(monkeypatch):
    calls = []
    third = threading.Event()

    def recover():
        calls.append(1)
        if len(calls) == 3:
            third.set()
        if len(calls) == 1:
            raise RuntimeError("database away")
        return []

    monkeypatch.setattr(worker, "imports_recover_stalled", recover)
    handled = []
    monkeypatch.setattr(DbWorkerCommand, "handle", lambda self, **options: handled.append(options))
    command = worker.Command()

    call_command(command, "--no-reload", "--recover-interval", "0.01", verbosity=0)

    assert third.wait(timeout=10)
    command.recovery_stop.set()
    command.recovery_thread.join(timeout=10)
    assert not command.recovery_thread.is_alive()
    assert len(calls) >= 3  # at start-up, then again and again despite the first failing
    assert handled[0]["batch"] is False
    assert handled[0]["reload"] is False


def test_a_batch_worker_checks_once_at_start_up_and_starts_no_thread(monkeypatch):
    calls = []
    monkeypatch.setattr(worker, "imports_recover_stalled", lambda: calls.append(1) or [])
    monkeypatch.setattr(DbWorkerCommand, "handle", lambda self, **options: None)
    command = worker.Command()

    call_command(command, "--batch", "--no-reload", verbosity=0)

    assert calls == [1]
    assert not hasattr(command, "recovery_thread")
