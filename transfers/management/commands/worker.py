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
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from django.db import close_old_connections, connections
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand
from django_tasks_db.management.commands.db_worker import valid_interval

from core import worker_loops
from transfers.bulk.services import bulk_jobs_recover_stalled
from transfers.services import imports_recover_stalled

logger = logging.getLogger("transfers.imports")


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
        # Before the first task is taken, so the imports queued again run in this worker.
        recover_stalled_imports()
        # The thread belongs in the process that runs tasks: with --reload that is the
        # reloader's child, not the parent watching the files.
        runs_tasks = not reload or batch or os.environ.get(DJANGO_AUTORELOAD_ENV) == "true"
        if not batch and runs_tasks:
            # The registered loops (the webhooks relay): for as long as the worker runs.
            self.loops_stop = threading.Event()
            for name, loop in worker_loops.registered().items():
                threading.Thread(
                    target=loop, args=(self.loops_stop,), name=name, daemon=True
                ).start()
        if recover_interval and not batch and runs_tasks:
            self.recovery_stop = threading.Event()
            self.recovery_thread = threading.Thread(
                target=recover_periodically,
                args=(recover_interval, self.recovery_stop),
                name="import-recovery",
                daemon=True,  # ends with the worker
            )
            self.recovery_thread.start()
        super().handle(batch=batch, reload=reload, **options)
