"""One run of a bulk job: batches of contacts in id order, each in one transaction with the
job's progress.

Every batch locks the job row, checks that this run still owns it (`run_token`) and that
nobody asked it to stop, checks again that the member who started it still belongs to the
workspace (and may still do this action), reads the next ids of the view after
`last_contact_id`, applies the action (`transfers.bulk.actions.bulk_apply`) and saves the
counts and the new position. A run killed mid-batch loses only that batch's transaction; the
next run starts after the last committed batch, and the actions change nothing that is
already done, so no contact is changed or audited twice.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from contacts.search_index import pending_entries_merge
from core.actors import Actor, Channel
from core.errors import DomainError, ValidationFailed
from transfers.bulk.actions import BulkAction, bulk_action_clean, bulk_apply, bulk_next_ids
from transfers.bulk.actions import bulk_matching as matching
from transfers.imports.engine import stop_requested
from transfers.models import BulkJob, BulkJobContact
from workspaces.models import Membership

logger = logging.getLogger("transfers.bulk")

Status = BulkJob.Status
DEFAULT_BATCH = 2000
# After each batch the job rests this fraction of the time the batch took (BULK_PAUSE_RATIO).
DEFAULT_PAUSE_RATIO = 0.5
MAX_PAUSE_SECONDS = 5.0
PROGRESS_FIELDS = ("processed_count", "changed_count", "last_contact_id", "heartbeat_at")


class JobLost(Exception):
    """Another run took the job over (this one was thought dead): stop without a word."""


class JobStopped(DomainError):
    """The job may not go on (the member left the workspace, the view no longer applies)."""


def batch_size() -> int:
    return max(1, int(getattr(settings, "BULK_BATCH_ROWS", DEFAULT_BATCH)))


def pause_ratio() -> float:
    return max(0.0, float(getattr(settings, "BULK_PAUSE_RATIO", DEFAULT_PAUSE_RATIO)))


def stale_seconds() -> int:
    # The same patience as for imports: a job silent this long has lost its worker.
    return int(settings.IMPORT_STALE_SECONDS)


def bulk_job_claim(job_id: Any) -> tuple[BulkJob, str] | None:
    """Take the job for this run: queued, or running with a worker silent too long."""
    token = secrets.token_hex(16)
    now = timezone.now()
    stale = now - timedelta(seconds=stale_seconds())
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status not in (Status.QUEUED, Status.RUNNING):
            return None
        if job.status == Status.RUNNING and job.heartbeat_at and job.heartbeat_at > stale:
            return None
        job.status = Status.RUNNING
        job.run_token = token
        job.error = ""
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.save(update_fields=["status", "run_token", "error", "started_at", "heartbeat_at"])
    return job, token


def bulk_job_run(job_id: Any, *, requeue: Callable[[], object] | None = None) -> str:
    """Run (or resume) one bulk job to its end; returns the final status, or "released" when
    the worker was asked to stop (SIGTERM) and the job was handed back after its last batch
    (`requeue` then queues its next run in the same transaction)."""
    claimed = bulk_job_claim(job_id)
    if claimed is None:
        return "skipped"
    job, token = claimed
    run = _Run(job, token, requeue=requeue)
    try:
        if not run.execute():
            return "released"
    except JobLost:
        return "lost"
    except DomainError as exc:
        run.fail(_sentence(exc))
    except Exception:
        logger.exception("Bulk job %s stopped", job.pk)
        run.fail(
            f"The job stopped unexpectedly after {run.job.processed_count:,} contacts. Every "
            "contact before them is done; resume it to go on from there."
        )
        raise
    return run.status


def _sentence(error: DomainError) -> str:
    fields = [m for ms in error.fields.values() for m in ms]
    return " ".join(fields) or error.message


class _Run:
    def __init__(
        self, job: BulkJob, token: str, *, requeue: Callable[[], object] | None = None
    ) -> None:
        self.job = job
        self.token = token
        self.requeue = requeue
        self.status = job.status
        self.next_ids: Callable[[Any, int], list[Any]] | None = None

    def execute(self) -> bool:
        """Batches until the job ends (True), or until the worker is asked to stop: then the
        job is handed back after its last batch (False)."""
        size, pause = batch_size(), pause_ratio()
        while True:
            if stop_requested.is_set():
                self.release()
                return False
            started = time.monotonic()
            if self._batch(size):
                return True
            # The batch's search-index entries are merged here, not by the next request that
            # pushes the index's pending list over its limit.
            pending_entries_merge(connection)
            # Yield to the people using the dashboard: the job takes at most 1 / (1 + pause)
            # of the time, so a million contacts never starve the table's own queries.
            if pause:
                time.sleep(min((time.monotonic() - started) * pause, MAX_PAUSE_SECONDS))

    def _source(self, job: BulkJob) -> Callable[[Any, int], list[Any]]:
        """Where the ids come from: the contacts a delete recorded (an undo), or the view."""
        if job.undo_of_id:
            items = BulkJobContact.objects.filter(job_id=job.undo_of_id)

            def recorded(after: Any, size: int) -> list[Any]:
                rows = items.filter(contact_id__gt=after) if after is not None else items
                return list(rows.order_by("contact_id").values_list("contact_id", flat=True)[:size])

            return recorded
        try:
            qs = matching(agent=job.agent, query=job.query)
        except ValidationFailed as exc:
            raise JobStopped(f"The view's filters no longer apply: {_sentence(exc)}") from None
        return lambda after, size: bulk_next_ids(qs, after=after, size=size)

    def _actor(self, job: BulkJob) -> Actor:
        """The member the job runs for, as they are now (404-like refusal if they left)."""
        user = job.created_by
        role = (
            Membership.objects.filter(
                user_id=job.created_by_id, workspace_id=job.agent.workspace_id
            )
            .values_list("role", flat=True)
            .first()
        )
        if user is None or role is None or not user.is_active:
            raise JobStopped(
                "The member who started this job is no longer in the workspace, so it stopped."
            )
        return Actor(
            Channel.STAFF,
            label=f"{user.get_username()} (bulk action)"[:255],
            user_id=user.pk,
            is_admin=role == Membership.Role.ADMIN,
        )

    def _action(self, job: BulkJob, actor: Actor) -> BulkAction:
        """The action checked again as the member may do it now (a secure attribute needs an
        admin; the attribute must still exist with a type its value fits)."""
        if job.action != "set_attribute":  # checked when queued; needs nothing of the member
            return BulkAction(job.action, dict(job.params))
        value = job.params.get("value")
        data = {"attribute": job.params.get("key"), "value": "" if value is None else value}
        try:
            return bulk_action_clean(agent=job.agent, actor=actor, action=job.action, data=data)
        except ValidationFailed as exc:
            raise JobStopped(f"The action no longer applies: {_sentence(exc)}") from None

    def _batch(self, size: int) -> bool:
        """One batch in one transaction; True when the job has ended."""
        with transaction.atomic():
            job = (
                BulkJob.objects.select_for_update(of=("self",))
                .select_related("agent", "created_by")
                .get(pk=self.job.pk)
            )
            if job.run_token != self.token:
                raise JobLost
            if job.cancel_requested:
                return self._end(job, Status.CANCELLED)
            actor = self._actor(job)
            action = self._action(job, actor)
            if self.next_ids is None:
                self.next_ids = self._source(job)
            ids = self.next_ids(job.last_contact_id, size)
            if not ids:
                return self._end(job, Status.COMPLETED)
            changed = bulk_apply(agent=job.agent, actor=actor, action=action, contact_ids=ids)
            if job.action == "delete" and changed:
                BulkJobContact.objects.bulk_create(
                    [BulkJobContact(job_id=job.pk, contact_id=pk) for pk in changed],
                    ignore_conflicts=True,
                    batch_size=size,
                )
            job.processed_count += len(ids)
            job.changed_count += len(changed)
            job.last_contact_id = ids[-1]
            job.heartbeat_at = timezone.now()
            job.save(update_fields=PROGRESS_FIELDS)
            self.job = job
        return False

    def release(self) -> None:
        """Hand the job back, queued and unclaimed, with its next run enqueued in the same
        transaction (`requeue`): another worker goes on after the last committed batch at
        once, not after IMPORT_STALE_SECONDS."""
        with transaction.atomic():
            job = BulkJob.objects.select_for_update(of=("self",)).get(pk=self.job.pk)
            if job.run_token != self.token:
                raise JobLost
            job.status = Status.QUEUED
            job.run_token = ""
            job.heartbeat_at = timezone.now()
            job.save(update_fields=["status", "run_token", "heartbeat_at"])
            if self.requeue is not None:
                self.requeue()
        logger.info(
            "Bulk job %s handed back after %s contacts: its worker is stopping",
            job.pk,
            job.processed_count,
        )
        self.job, self.status = job, Status.QUEUED

    def _end(self, job: BulkJob, status: str) -> bool:
        job.status = status
        job.finished_at = job.heartbeat_at = timezone.now()
        job.save(update_fields=["status", "finished_at", "heartbeat_at"])
        self.job, self.status = job, status
        return True

    def fail(self, message: str) -> None:
        updated = BulkJob.objects.filter(pk=self.job.pk, run_token=self.token).update(
            status=Status.FAILED, error=message[:2000], finished_at=timezone.now()
        )
        if updated:
            self.status = Status.FAILED
