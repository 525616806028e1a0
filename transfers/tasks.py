"""Background work of the transfers app (run by `manage.py worker`, see that command): imports
and bulk actions on every contact of a view.

The task rows are django-tasks-db's: one per enqueued run, READY until a worker claims it,
RUNNING while it runs, then SUCCESSFUL or FAILED. A worker that is killed mid-task leaves
its row RUNNING for good; the helpers below find a job's rows so that its recovery
(`transfers.services.imports_recover_stalled`, `transfers.bulk.services`) can close them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from django.db.models import QuerySet
from django.tasks import TaskResultStatus, task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from core.observability import task_logging
from transfers.bulk.runner import bulk_job_run
from transfers.imports.engine import import_run

logger = structlog.get_logger("transfers.tasks")


class WorkerStopped(Exception):
    """Recorded on the task row of a run whose worker stopped before the end."""


def _logged_run(what: str, request_id: str, run: Callable[[], str], **ids: str) -> str:
    """A job's run with its start and end logged under the id of the request that started
    the job (`ids` name the job)."""
    with task_logging(request_id, **ids):
        logger.info(f"{what} run started")
        status = run()
        logger.info(f"{what} run ended", status=status)
        return status


@task
def run_import(import_id: str, request_id: str = "") -> str:
    """Run or resume one import job (see transfers.imports.engine). A run its stopping worker
    hands back enqueues the next run in the transaction that releases the job: the job is
    never queued without a task waiting for it. `request_id`: the request that started it,
    named in this run's log lines."""
    requeue = lambda: run_import.enqueue(import_id, request_id=request_id)  # noqa: E731
    return _logged_run(
        "import", request_id, lambda: import_run(import_id, requeue=requeue), import_id=import_id
    )


@task
def run_bulk_job(job_id: str, request_id: str = "") -> str:
    """Run or resume one bulk action on every contact of a view (see transfers.bulk); like
    an import's, a run its stopping worker hands back enqueues the next one."""
    requeue = lambda: run_bulk_job.enqueue(job_id, request_id=request_id)  # noqa: E731
    return _logged_run(
        "bulk job", request_id, lambda: bulk_job_run(job_id, requeue=requeue), bulk_job_id=job_id
    )


def bulk_task_rows(*, job_id: Any) -> QuerySet[DBTaskResult]:
    """The task rows of one bulk job's runs."""
    return DBTaskResult.objects.filter(
        task_path=run_bulk_job.module_path, args_kwargs__args__0=str(job_id)
    )


def bulk_task_waiting(*, job_id: Any) -> bool:
    """Whether a run of this bulk job is queued and not yet taken by a worker."""
    return bulk_task_rows(job_id=job_id).filter(status=TaskResultStatus.READY).exists()


def import_task_rows(*, import_id: Any = None) -> QuerySet[DBTaskResult]:
    """The task rows of `run_import` (of one import when `import_id` is given)."""
    rows = DBTaskResult.objects.filter(task_path=run_import.module_path)
    if import_id is not None:
        rows = rows.filter(args_kwargs__args__0=str(import_id))
    return rows


def import_task_waiting(*, import_id: Any) -> bool:
    """Whether a run of this import is queued and not yet taken by a worker."""
    return import_task_rows(import_id=import_id).filter(status=TaskResultStatus.READY).exists()


def task_rows_abandon(rows: QuerySet[DBTaskResult], *, reason: str) -> int:
    """Mark RUNNING task rows failed because their worker stopped; returns how many.

    Only rows still RUNNING change: a worker that was merely slow and finishes after all
    records its own result over this one."""
    error = WorkerStopped(reason)
    return rows.filter(status=TaskResultStatus.RUNNING).update(
        status=TaskResultStatus.FAILED,
        finished_at=timezone.now(),
        return_value=None,
        exception_class_path=f"{WorkerStopped.__module__}.{WorkerStopped.__qualname__}",
        traceback=f"{WorkerStopped.__module__}.{WorkerStopped.__qualname__}: {error}\n",
    )
