"""Writes of import jobs: upload, mapping, start (dry run or for real), resume, delete."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.tasks import TaskResultStatus
from django.utils import timezone

from attributes.models import AttributeType
from attributes.selectors import attribute_definitions
from core.errors import ConflictError, TooLargeError, ValidationFailed
from core.observability import request_id_current
from transfers import tasks
from transfers.imports import files
from transfers.imports.engine import check_valid_mapping, progress_reset
from transfers.imports.mapping import auto_map
from transfers.imports.readers import FORMATS, FileFormatError, analyze
from transfers.models import ContactImport
from workspaces.models import Agent

logger = logging.getLogger(__name__)

Status = ContactImport.Status


def size_text(size: int) -> str:
    """1.5 MB, 200 MB, 64 KB: a limit as people read it."""
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:,.1f}".removesuffix(".0") + " MB"
    return f"{size / 1024:,.0f} KB"


def _too_large_message() -> str:
    limit = size_text(settings.IMPORT_MAX_BYTES)
    return f"The file is larger than {limit}; split it into smaller files."


def import_create(
    *,
    agent: Agent,
    upload: UploadedFile,
    actor_label: str,
    user=None,
    file_format: str = "",
    mapping: Mapping[str, str] | None = None,
    new_attributes: Mapping[str, str] | None = None,
    create_unknown: bool = False,
) -> ContactImport:
    """Store an uploaded file, read its columns and map them automatically (then `mapping`).

    A file that is too large, not text or not readable as its format is refused with a
    precise message and nothing is stored.
    """
    if upload.size is not None and upload.size > settings.IMPORT_MAX_BYTES:
        raise TooLargeError(_too_large_message())
    if file_format and file_format not in FORMATS:
        raise ValidationFailed({"format": ["Use csv, json or jsonl."]})
    name = Path(upload.name or "import").name[:200] or "import"
    upload.seek(0)
    try:
        analysis = analyze(upload, filename=name, file_format=file_format)
    except FileFormatError as exc:
        raise ValidationFailed({"file": [str(exc)]}) from None
    upload.seek(0)
    definitions = attribute_definitions(agent=agent, include_archived=True)
    suggestion = auto_map(
        analysis.columns,
        definitions,
        [row.values for row in analysis.sample],
        create_unknown=create_unknown,
    )
    chosen = dict(suggestion.mapping)
    types = dict(suggestion.new_attributes)
    if mapping:
        unknown = [c for c in mapping if c not in analysis.columns]
        if unknown:
            raise ValidationFailed(
                {"mapping": [f"The file has no column named {', '.join(map(repr, unknown))}."]}
            )
        chosen.update(mapping)
    if new_attributes:
        types.update(new_attributes)
    job = ContactImport(
        agent=agent,
        created_by=user,
        actor_label=actor_label[:255],
        filename=name,
        size=upload.size or 0,
        file_format=analysis.file_format,
        delimiter=analysis.delimiter,
        columns=analysis.columns,
        mapping=chosen,
        new_attributes=types,
    )
    job.file.save(name, upload, save=False)
    try:
        job.save(force_insert=True)
    except Exception:
        job.file.delete(save=False)
        raise
    return job


def import_set_mapping(
    *, job: ContactImport, mapping: Mapping[str, Any], new_attributes: Mapping[str, Any]
) -> ContactImport:
    """Change the column mapping of a job that has not started writing."""
    if job.is_active:
        raise ConflictError("The import is running; wait for it to finish.")
    if not job.mapping_editable:
        raise ConflictError("This import is finished; upload the file again to import it anew.")
    job.mapping = {c: str(mapping.get(c, "ignore")) for c in job.columns}
    types = dict(job.new_attributes)
    for key, type_ in new_attributes.items():
        if type_ in AttributeType.values:
            types[str(key)] = type_
    job.new_attributes = types
    check_valid_mapping(job)
    job.save(update_fields=["mapping", "new_attributes"])
    return job


def _enqueue(job: ContactImport) -> None:
    job_id, request_id = str(job.pk), request_id_current()
    transaction.on_commit(lambda: tasks.run_import.enqueue(job_id, request_id=request_id))


WORKER_STOPPED = (
    "The worker running this import stopped (killed or lost) before the end; the import "
    "was queued again."
)


def _queue(job: ContactImport) -> None:
    """Queue a run of the job (locked, being saved as queued): the task rows of a run whose
    worker stopped are closed, and a new task is enqueued unless one already waits."""
    rows = tasks.import_task_rows(import_id=job.pk)
    tasks.task_rows_abandon(rows, reason=WORKER_STOPPED)
    if not tasks.import_task_waiting(import_id=job.pk):
        _enqueue(job)


def import_start(*, job: ContactImport, dry_run: bool) -> ContactImport:
    """Queue a dry run or the real import from the first row (previous results cleared).

    A stalled job (its worker silent for IMPORT_STALE_SECONDS) counts as interrupted, not
    as running: it can be started again, like a failed one."""
    with transaction.atomic():
        job = ContactImport.objects.select_for_update().get(pk=job.pk)
        if job.is_active and not import_is_stalled(job):
            raise ConflictError("The import is already queued or running.")
        if job.status == Status.COMPLETED and not job.dry_run:
            raise ConflictError("This file is already imported; upload it again to re-run it.")
        if not job.file:
            raise ConflictError("The file of this import is no longer stored; upload it again.")
        check_valid_mapping(job)
        progress_reset(job)
        job.dry_run = dry_run
        job.status = Status.QUEUED
        # While queued, the heartbeat says since when: no worker for long is worth a warning.
        job.heartbeat_at = timezone.now()
        job.run_token = ""
        job.save()
        _queue(job)
    return job


def import_is_stalled(job: ContactImport) -> bool:
    """A running job whose worker has been silent too long (crashed or stopped), or a queued
    one that no worker has picked up."""
    if job.status not in (Status.RUNNING, Status.QUEUED) or job.heartbeat_at is None:
        return False
    age = (timezone.now() - job.heartbeat_at).total_seconds()
    return age > settings.IMPORT_STALE_SECONDS


def import_is_quiet(job: ContactImport) -> bool:
    """A running job without progress for long enough to mention on its page: half of
    IMPORT_STALE_SECONDS (after which it counts as stalled), and at least a minute. A batch
    (IMPORT_BATCH_ROWS rows in one transaction) normally commits well within that."""
    if job.status != Status.RUNNING or job.heartbeat_at is None:
        return False
    age = (timezone.now() - job.heartbeat_at).total_seconds()
    return age > max(settings.IMPORT_STALE_SECONDS // 2, 60)


def import_can_resume(job: ContactImport) -> bool:
    return bool(job.file) and (
        (job.status == Status.FAILED and not job.dry_run and job.processed_rows > 0)
        or import_is_stalled(job)
    )


def _requeue(job: ContactImport) -> None:
    """Queue an interrupted job (locked) again: an import goes on after its last saved batch
    (each batch commits with the job's progress, so no row is written twice); a dry run
    starts over, since its per-row report is written in one go."""
    if job.dry_run:
        progress_reset(job)
    job.status = Status.QUEUED
    job.run_token = ""
    job.error = ""
    job.heartbeat_at = timezone.now()
    job.save()
    _queue(job)


def import_resume(*, job: ContactImport) -> ContactImport:
    """Continue a failed or stalled import after its last saved row."""
    with transaction.atomic():
        job = ContactImport.objects.select_for_update().get(pk=job.pk)
        if not import_can_resume(job):
            raise ConflictError("Only an interrupted import can be resumed.")
        _requeue(job)
    return job


def imports_recover_stalled() -> list[ContactImport]:
    """Queue again the imports a stopped worker left, and close the task rows it left.

    The task worker (`manage.py worker`) calls this when it starts and then every minute.
    A job running or queued without a heartbeat for IMPORT_STALE_SECONDS is stalled
    (`import_is_stalled`): a running one is queued again and resumes after its last saved
    batch; a queued one whose task still waits is left to the worker that will take it.
    A run that was only slow, not dead, loses its claim at its next batch (the run token
    changed) and that batch rolls back, so a row is never written twice. Returns the jobs
    queued again."""
    stale = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS)
    candidates = ContactImport.objects.filter(
        status__in=(Status.QUEUED, Status.RUNNING), heartbeat_at__lt=stale
    ).values_list("pk", flat=True)
    recovered = []
    for job_id in list(candidates):
        with transaction.atomic():
            job = ContactImport.objects.select_for_update().filter(pk=job_id).first()
            if job is None or not import_is_stalled(job):
                continue  # finished, deleted or taken up meanwhile
            if job.status == Status.QUEUED and tasks.import_task_waiting(import_id=job.pk):
                continue
            if not job.file:  # cannot happen before the end, unless the storage lost it
                job.status = Status.FAILED
                job.error = "The file of this import is no longer stored; upload it again."
                job.finished_at = timezone.now()
                job.save(update_fields=["status", "error", "finished_at"])
                tasks.task_rows_abandon(tasks.import_task_rows(import_id=job.pk), reason=job.error)
                continue
            logger.warning(
                "Import %s stalled after %s rows (no heartbeat since %s); queued again",
                job.pk,
                job.processed_rows,
                job.heartbeat_at,
            )
            _requeue(job)
        recovered.append(job)
    # Task rows a stopped worker left on jobs that have ended (or been deleted) since.
    running = tasks.import_task_rows().filter(status=TaskResultStatus.RUNNING, started_at__lt=stale)
    for row_id, args_kwargs in running.values_list("pk", "args_kwargs"):
        job_id = ((args_kwargs or {}).get("args") or [""])[0]
        try:
            job = ContactImport.objects.filter(pk=job_id).only("status").first()
        except (ValueError, ValidationError):  # not a job id: no job
            job = None
        if job is None or not job.is_active:
            tasks.task_rows_abandon(
                running.filter(pk=row_id),
                reason="The worker running this import stopped (killed or lost) before "
                "recording its end.",
            )
    return recovered


def import_delete(*, job: ContactImport) -> None:
    """Delete a job, its row reports and its files (not the contacts it wrote)."""
    if job.is_active and not import_is_stalled(job):
        raise ConflictError("The import is running; wait for it to finish before deleting it.")
    job_id = job.pk
    job.delete()
    files.files_delete(job_id)


def max_upload_text() -> str:
    return size_text(settings.IMPORT_MAX_BYTES)
