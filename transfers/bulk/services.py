"""Writes of bulk jobs: start one for the bulk bar, stop, undo a delete, resume, dismiss,
queue again the jobs a stopped worker left behind, and forget an erased person in them."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django.db import transaction
from django.utils import timezone

from contacts import signals
from contacts.models import Contact
from core.errors import ConflictError
from core.observability import request_id_current
from core.redaction import Redactor, strings
from transfers import tasks
from transfers.bulk.actions import BackgroundRequest
from transfers.bulk.runner import stale_seconds
from transfers.models import BulkJob

logger = logging.getLogger("transfers.bulk")

Status = BulkJob.Status
ACTIVE = (Status.QUEUED, Status.RUNNING)


def connect() -> None:
    """Forget an erased person in bulk jobs (TransfersConfig.ready)."""
    signals.contact_erasing.connect(bulk_jobs_forget, dispatch_uid="transfers.bulk")


def bulk_jobs_forget(sender: Any, *, contact: Contact, redactor: Redactor, **kwargs: Any) -> None:
    """A job's view or action that names the erased person (a search for their email, a tag
    or value that is their name) is redacted; the job and its counts stay (receives
    `contact_erasing`). The ids a delete recorded for its undo are not identifiers."""
    if not redactor.has_keys:
        return
    jobs = BulkJob.objects.filter(agent_id=contact.agent_id).only("id", "query", "params", "error")
    for job in jobs.iterator(chunk_size=500):
        pairs = parse_qsl(job.query, keep_blank_values=True)
        texts = [value for _, value in pairs] + list(strings(job.params)) + [job.error]
        if not any(redactor.names_person(text) for text in texts):
            continue
        BulkJob.objects.filter(pk=job.pk).update(
            query=urlencode([(key, redactor.scrub(value)) for key, value in pairs]),
            params=_scrubbed(job.params, redactor),
            error=redactor.scrub(job.error),
        )


def _scrubbed(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.scrub(value)
    if isinstance(value, dict):
        return {key: _scrubbed(item, redactor) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, redactor) for item in value]
    return value


def _enqueue(job: BulkJob) -> None:
    job_id, request_id = str(job.pk), request_id_current()
    transaction.on_commit(lambda: tasks.run_bulk_job.enqueue(job_id, request_id=request_id))


def bulk_job_start(request: BackgroundRequest) -> BulkJob:
    """Queue `request.action` on every contact of the view; one job at a time per member and
    agent, so the notice above the table follows one job."""
    user = request.user
    with transaction.atomic():
        running = BulkJob.objects.filter(
            agent=request.agent, created_by=user, status__in=ACTIVE
        ).exists()
        if running:
            raise ConflictError(
                "Your previous bulk action is still running; wait for it to finish or stop it."
            )
        now = timezone.now()
        job = BulkJob.objects.create(
            agent=request.agent,
            created_by=user,
            actor_label=user.get_username()[:255],
            action=request.action.action,
            params=request.action.params,
            query=request.query,
            estimated_total=request.estimate,
            estimate_exact=request.estimate_exact,
            heartbeat_at=now,
            created_at=now,
        )
        # Older finished notices make way for this job's.
        BulkJob.objects.filter(
            agent=request.agent, created_by=user, dismissed_at__isnull=True
        ).exclude(pk=job.pk).exclude(status__in=ACTIVE).update(dismissed_at=now)
        _enqueue(job)
    return job


def bulk_job_cancel(*, job: BulkJob) -> BulkJob:
    """Stop a job: a queued one at once, a running one after its current batch."""
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=job.pk)
        if job.status == Status.QUEUED:
            job.status = Status.CANCELLED
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "finished_at"])
        elif job.status == Status.RUNNING:
            job.cancel_requested = True
            job.save(update_fields=["cancel_requested"])
        else:
            raise ConflictError("This bulk action has already ended.")
    return job


def bulk_job_can_undo(job: BulkJob) -> bool:
    """A finished or stopped bulk delete that deleted someone and was not undone yet."""
    return (
        job.action == "delete"
        and not job.is_active
        and job.changed_count > 0
        and not BulkJob.objects.filter(undo_of=job).exists()
    )


def bulk_job_undo(*, job: BulkJob, user) -> BulkJob:
    """Restore exactly the contacts a bulk delete deleted (those still deleted), as a job."""
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=job.pk)
        if job.action != "delete":
            raise ConflictError("Only a bulk delete can be undone.")
        if job.is_active:
            raise ConflictError("Stop the delete first, then undo it.")
        if BulkJob.objects.filter(undo_of=job).exists():
            raise ConflictError("This delete is already undone.")
        if not job.changed_count:
            raise ConflictError("This delete deleted no one; there is nothing to undo.")
        now = timezone.now()
        undo = BulkJob.objects.create(
            agent_id=job.agent_id,
            created_by=user,
            actor_label=user.get_username()[:255],
            action="restore",
            undo_of=job,
            estimated_total=job.changed_count,
            heartbeat_at=now,
            created_at=now,
        )
        job.dismissed_at = now
        job.save(update_fields=["dismissed_at"])
        _enqueue(undo)
    return undo


def bulk_job_is_stalled(job: BulkJob) -> bool:
    """Queued or running without a sign of life for IMPORT_STALE_SECONDS."""
    if not job.is_active or job.heartbeat_at is None:
        return False
    return (timezone.now() - job.heartbeat_at).total_seconds() > stale_seconds()


def bulk_job_can_resume(job: BulkJob) -> bool:
    return job.status == Status.FAILED or bulk_job_is_stalled(job)


def _requeue(job: BulkJob) -> None:
    """Queue a (locked) interrupted job again: it goes on after its last committed batch."""
    job.status = Status.QUEUED
    job.run_token = ""
    job.error = ""
    job.finished_at = None
    job.heartbeat_at = timezone.now()
    job.save(update_fields=["status", "run_token", "error", "finished_at", "heartbeat_at"])
    _enqueue(job)


def bulk_job_resume(*, job: BulkJob) -> BulkJob:
    """Go on with a failed or stalled job after the contacts it has done."""
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=job.pk)
        if not bulk_job_can_resume(job):
            raise ConflictError("Only a stopped or stalled bulk action can be resumed.")
        _requeue(job)
    return job


def bulk_job_dismiss(*, job: BulkJob) -> BulkJob:
    """Close the notice of an ended job (the job and its undo stay)."""
    if job.is_active:
        raise ConflictError("The bulk action is still running; stop it first.")
    job.dismissed_at = timezone.now()
    job.save(update_fields=["dismissed_at"])
    return job


def bulk_jobs_recover_stalled() -> list[BulkJob]:
    """Queue again the running jobs whose worker stopped (the task worker calls this with
    the import recovery); returns them. A queued job whose task still waits is left alone."""
    stale = timezone.now() - timedelta(seconds=stale_seconds())
    candidates = BulkJob.objects.filter(status__in=ACTIVE, heartbeat_at__lt=stale)
    recovered = []
    for job_id in list(candidates.values_list("pk", flat=True)):
        with transaction.atomic():
            job = BulkJob.objects.select_for_update().filter(pk=job_id).first()
            if job is None or not bulk_job_is_stalled(job):
                continue
            if job.status == Status.QUEUED and tasks.bulk_task_waiting(job_id=job.pk):
                continue
            logger.warning(
                "Bulk job %s stalled after %s contacts; queued again", job.pk, job.processed_count
            )
            tasks.task_rows_abandon(
                tasks.bulk_task_rows(job_id=job.pk),
                reason="The worker running this bulk action stopped before the end.",
            )
            _requeue(job)
        recovered.append(job)
    return recovered
