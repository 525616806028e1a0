"""Import jobs and the rows they could not write.

These tables were created by the contacts app and keep their names (`db_table`): moving
them here changed Django's bookkeeping, not the database (see migrations/0001).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from contacts.ids import uuid7
from transfers.imports.files import upload_name


def _import_upload_to(instance: ContactImport, filename: str) -> str:
    return upload_name(instance.pk, filename)


class ContactImport(models.Model):
    """One uploaded file and its way through mapping, dry run and the background import.

    Progress is saved in the same transaction as each batch of rows, so `processed_rows`
    always says exactly how far the data got: an interrupted job resumes from there.
    """

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Waiting for the column mapping"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    agent = models.ForeignKey("workspaces.Agent", on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who the audit trail names: "import data.csv by ada@example.com" or the API key.
    actor_label = models.CharField(max_length=255, blank=True, default="")
    file = models.FileField(upload_to=_import_upload_to, max_length=255)
    filename = models.CharField(max_length=255)
    size = models.BigIntegerField(default=0)
    file_format = models.CharField(max_length=8)
    delimiter = models.CharField(max_length=1, blank=True, default="")
    columns = models.JSONField(default=list, blank=True)
    # column -> target ("email", "attr:plan", "new:plan", "tags", "ignore", …)
    mapping = models.JSONField(default=dict, blank=True)
    # key -> type of the attributes the import creates ("new:<key>" targets)
    new_attributes = models.JSONField(default=dict, blank=True)
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED)
    error = models.TextField(blank=True, default="")
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    # The outcome of the last dry run, kept when the real import runs.
    dry_run_summary = models.JSONField(default=dict, blank=True)
    # Columns met in the file that the mapping did not cover (JSON keys past the preview).
    unmapped_columns = models.JSONField(default=list, blank=True)
    # A run claims the job with a fresh token; a second worker on the same job stops.
    run_token = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "contacts_contactimport"
        indexes = [models.Index(fields=["agent", "-created_at"], name="import_agent_time")]

    def __str__(self) -> str:
        return f"import {self.filename} ({self.status})"

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.COMPLETED:
            return 100
        if not self.total_rows:
            return 0
        return min(100, int(self.processed_rows * 100 / self.total_rows))

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def mapping_editable(self) -> bool:
        """Before the real import wrote anything: uploaded, after a dry run, or failed."""
        return bool(self.file) and (
            self.status in (self.Status.UPLOADED, self.Status.FAILED)
            or (self.status == self.Status.COMPLETED and self.dry_run)
        )


class ImportRowIssue(models.Model):
    """A row that was not written (error) or was superseded by a later row with the same key."""

    class Kind(models.TextChoices):
        ERROR = "error", "Error"
        SKIPPED = "skipped", "Skipped"

    job = models.ForeignKey(ContactImport, on_delete=models.CASCADE, related_name="issues")
    # The job's agent, copied: every tenant's table carries its tenant key, so the table
    # could be distributed by agent (docs/SCALING.md). No index: rows are read by job.
    # Nullable until every writer sets it (the engine does; rows made before it are filled
    # by migration 0003).
    agent = models.ForeignKey(
        "workspaces.Agent",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    row_number = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.ERROR)
    # [{"column", "value", "message"}, …]: every problem of the row, named by column.
    problems = models.JSONField(default=list)
    # The row as read (CSV cells in column order, or the JSON object) for the failed-rows file.
    raw = models.JSONField(default=list)

    class Meta:
        db_table = "contacts_importrowissue"
        ordering = ["row_number", "id"]
        indexes = [models.Index(fields=["job", "row_number"], name="importissue_job_row")]

    def __str__(self) -> str:
        return f"row {self.row_number} of {self.job_id}"

    @property
    def message(self) -> str:
        return "; ".join(
            f"{p['column']}: {p['message']}" if p.get("column") else p["message"]
            for p in self.problems
        )


class BulkJob(models.Model):
    """A bulk action (tag, untag, set an attribute, delete, restore) on every contact a table
    view matched, run by the task worker in batches.

    The view is kept as its filter query string (`query`) and read again through the contact
    filters when the job runs, not as a list of ids. Batches go in id order and each commits
    with the job's progress (`last_contact_id`, counts), so an interrupted job resumes after
    its last batch and no batch is applied twice. An undo job (`undo_of`) restores exactly the
    contacts the delete job recorded in BulkJobContact.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Stopped"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    agent = models.ForeignKey(
        "workspaces.Agent", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # The member it runs for: their membership and role are checked again at every batch.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=255, blank=True, default="")
    action = models.CharField(max_length=16)
    params = models.JSONField(default=dict, blank=True)
    query = models.TextField(blank=True, default="")
    undo_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="undo_job"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True, default="")
    # The table's count when the job was asked for (an estimate above 10,000 contacts).
    estimated_total = models.PositiveIntegerField(default=0)
    estimate_exact = models.BooleanField(default=True)
    processed_count = models.PositiveIntegerField(default=0)
    changed_count = models.PositiveIntegerField(default=0)
    last_contact_id = models.UUIDField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # A run claims the job with a fresh token; a second worker on the same job stops.
    run_token = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The member closed the finished notice above the table.
    dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["agent", "created_by", "-created_at"], name="bulkjob_agent_user"),
            models.Index(
                fields=["status", "heartbeat_at"],
                name="bulkjob_active",
                condition=models.Q(status__in=["queued", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"bulk {self.action} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def total(self) -> int:
        """How many contacts the job goes through: the estimate until it has finished."""
        if not self.is_active:
            return self.processed_count
        return max(self.estimated_total, self.processed_count)

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.COMPLETED:
            return 100
        if not self.total:
            return 0
        # Never 100 before the end: the estimate can be short of the real count.
        return min(99, int(self.processed_count * 100 / self.total))


class BulkJobContact(models.Model):
    """A contact a bulk delete soft-deleted: what its undo restores, exactly those.

    One narrow row per contact (the job and a plain id, no foreign key: the contact may be
    erased since), keyed by both so the undo reads them in id order from the key's index
    and a batch recorded twice is one row."""

    pk = models.CompositePrimaryKey("job", "contact_id")
    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="+", db_index=False)
    contact_id = models.UUIDField()

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.job_id}"
