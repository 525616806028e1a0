"""`manage.py worker`: the task worker (django-tasks-db's `db_worker`, same options) that also
resumes the imports and bulk actions a stopped worker left behind, and runs the loops apps
register in `core.worker_loops` (the webhooks relay delivers the outbox) on threads of their
own.

A worker killed mid-import (SIGKILL, out of memory, a lost machine) leaves its import
"running" and its task row RUNNING, and `db_worker` never looks at a RUNNING task again: the
import would wait for someone to press Resume. This command runs `imports_recover_stalled`
when it starts and then every --recover-interval seconds: imports silent for
IMPORT_STALE_SECONDS are queued again (they go on after their last saved batch, so no row
is written twice) and the dead run's task row is marked failed. Bulk actions on a whole view
(`transfers.bulk`) are recovered the same way, after their last committed batch.

Why in the worker command: the stopped import's own task can never run again, and a
restarted worker may get no other task for hours, so only the worker's loop is sure to
come round. `db_worker`'s loop has no hook between polls, hence a small thread with its own
database connection; a check that fails (the database busy or away) is logged and tried
again at the next interval, and the thread dies with the worker.

Stopping (SIGTERM from a deploy or a process manager, or Ctrl+C): `db_worker` lets the task
in progress run to its end before it exits, which for an import of a million rows is
minutes. This worker also sets `transfers.imports.engine.stop_requested`: the import in
progress commits the batch it is writing, hands the job back queued with its next run
enqueued (another worker resumes it after that batch at once, not after
IMPORT_STALE_SECONDS), and the worker exits with status 0 once that batch is committed and
its loops have finished (at most LOOPS_STOP_SECONDS more). A second signal ends the task at
once: the open batch rolls back and the import resumes like a killed worker's, after
IMPORT_STALE_SECONDS.

Several workers, on one host or many, share the queue: `db_worker` claims a task row with
`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL (on SQLite in an exclusive transaction, one
writer at a time), so a task runs once, and an import's run token (see the engine) keeps
two runs of one import from both committing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands import db_worker
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand
from django_tasks_db.management.commands.db_worker import valid_interval

from core import worker_loops
from transfers.bulk.services import bulk_jobs_recover_stalled
from transfers.imports import engine
from transfers.services import imports_recover_stalled

logger = logging.getLogger("transfers.imports")
# How long a stopping worker waits for its loops (a webhook pass in flight: its sends are
# bounded by WEBHOOK_TIMEOUT_SECONDS).
LOOPS_STOP_SECONDS = 15


def lower_priority() -> None:
    """Lower this process's CPU priority by WORKER_NICE: when the machine is busy, the web
    server's requests (the widget's identify, the dashboard) get the cores first and an
    import or bulk action takes longer instead. (The database server's own work for the
    job is not affected: it runs in PostgreSQL's processes.)"""
    if settings.WORKER_NICE and hasattr(os, "nice"):
        try:
            os.nice(settings.WORKER_NICE)
        except OSError as exc:
            logger.warning("Could not lower the worker's CPU priority: %s", exc)


def recover_stalled_imports() -> None:
    """One pass of `imports_recover_stalled` and `bulk_jobs_recover_stalled`, never raising:
    the worker must keep going."""
    try:
        imports_recover_stalled()
    except Exception:
        logger.exception("Checking for stalled imports failed; trying again later")
    try:
        bulk_jobs_recover_stalled()
    except Exception:
        logger.exception("Checking for stalled bulk actions failed; trying again later")


def recover_periodically(interval: float, stop: threading.Event) -> None:
    """Every `interval` seconds until `stop`, on this thread's own database connection."""
    while not stop.wait(interval):
        close_old_connections()
        recover_stalled_imports()
        connections.close_all()  # this thread's connections only


class Worker(db_worker.Worker):
    """`db_worker`'s worker, whose first stop signal also asks a running import to stop at
    its next batch (the signal handler runs on the main thread, between the import's
    statements; the import reads the flag before each batch)."""

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        engine.stop_requested.set()
        super().shutdown(signum, frame)


@contextlib.contextmanager
def _worker_class(cls: type[db_worker.Worker]) -> Iterator[None]:
    """Have `db_worker`'s `handle` build its worker from `cls` while it runs.

    That `handle` makes its `Worker` itself and has no hook to choose another class; naming
    ours in its module for the command's lifetime keeps the rest of its `handle` (options,
    autoreload, signals) theirs instead of a copy that would drift from the library."""
    original = db_worker.Worker
    db_worker.Worker = cls
    try:
        yield
    finally:
        db_worker.Worker = original


class Command(DbWorkerCommand):
    help = "Run the task worker; imports whose worker stopped are resumed automatically"

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--recover-interval",
            default=60,
            type=valid_interval,
            help="Seconds between checks for imports whose worker stopped (0: at start-up "
            "only; default: %(default)r).",
        )

    def handle(self, *, recover_interval: float, batch: bool, reload: bool, **options: Any):
        lower_priority()
        # Before the first task is taken, so the imports queued again run in this worker.
        recover_stalled_imports()
        # The thread belongs in the process that runs tasks: with --reload that is the
        # reloader's child, not the parent watching the files.
        runs_tasks = not reload or batch or os.environ.get(DJANGO_AUTORELOAD_ENV) == "true"
        if not batch and runs_tasks:
            # The registered loops (the webhooks relay): for as long as the worker runs.
            self.loops_stop = threading.Event()
            self.loop_threads = [
                threading.Thread(target=loop, args=(self.loops_stop,), name=name, daemon=True)
                for name, loop in worker_loops.registered().items()
            ]
            for thread in self.loop_threads:
                thread.start()
        if recover_interval and not batch and runs_tasks:
            self.recovery_stop = threading.Event()
            self.recovery_thread = threading.Thread(
                target=recover_periodically,
                args=(recover_interval, self.recovery_stop),
                name="import-recovery",
                daemon=True,  # ends with the worker
            )
            self.recovery_thread.start()
        try:
            with _worker_class(Worker):
                super().handle(batch=batch, reload=reload, **options)
        finally:
            self._stop_loops()

    def _stop_loops(self) -> None:
        """On the way out (SIGTERM included): the loops finish what they are doing (the relay
        records the pass it sent, the heartbeat removes this worker's row) for up to
        LOOPS_STOP_SECONDS in all, then the process ends with them or without them."""
        stop = getattr(self, "loops_stop", None)
        if stop is None:
            return
        stop.set()
        deadline = time.monotonic() + LOOPS_STOP_SECONDS
        for thread in self.loop_threads:
            thread.join(max(0.0, deadline - time.monotonic()))
