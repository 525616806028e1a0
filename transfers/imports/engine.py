"""The import engine: one code path for the dashboard, the API, dry runs and resumes.

A run reads the file twice, streaming both times:

1. the scan checks the whole file is readable (a broken file fails here, before anything is
   written), counts its rows and notes rows whose contact a later row of the file also
   names (the last one wins, the earlier ones are reported as skipped);
2. the write pass converts each row through the mapping and hands batches to a writer:
   the contact services row by row (every database), or set-based: SQL fed by COPY on
   PostgreSQL (`transfers.imports.copy_writer`), bulk reads and writes on SQLite
   (`transfers.imports.sqlite_writer`).

Every row ends up counted as created, updated, unchanged, failed or skipped, and every
failed or skipped row is stored with its reason. Each batch commits together with the job's
progress, so an interrupted job resumes exactly after the last committed batch; a dry run
rolls every batch back and writes a per-row report instead.

One run at a time: a run claims the job with a fresh token under the job's row lock, and
every batch re-reads the token under that lock inside its own transaction before it
commits. A run that lost the job (it was thought dead and another run claimed it) therefore
rolls its batch back instead of committing it beside the new run's. A worker being stopped
(SIGTERM, `stop_requested`) ends its run between two batches and hands the job back, queued
again, so another worker resumes it after the last committed batch at once.
"""

from __future__ import annotations

import csv
import logging
import queue
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from time import monotonic, sleep
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from attributes.models import AttributeDefinition
from attributes.selectors import attribute_definition_map
from attributes.services import attribute_room, attributes_create_inferred
from contacts.models import Contact
from contacts.search_index import pending_entries_merge
from contacts.signals import changes_batched
from core.actors import Actor
from core.errors import DomainError, ValidationFailed
from transfers.csv_io import neutralize
from transfers.imports import files
from transfers.imports.copy_writer import CopyWriter
from transfers.imports.mapping import (
    MappingError,
    RowConverter,
    RowData,
    raw_cells,
    validate_mapping,
)
from transfers.imports.readers import FileFormatError, SourceRow, open_rows
from transfers.imports.sqlite_writer import SqliteWriter
from transfers.imports.writers import Outcome, PreparedRow, ServiceWriter
from transfers.models import ContactImport, ImportRowIssue
from transfers.signals import import_completed

logger = logging.getLogger(__name__)

Status = ContactImport.Status

# Set by the task worker when it is asked to stop (`manage.py worker`, SIGTERM or SIGINT): the
# run in progress (an import here, a bulk action in transfers.bulk.runner) stops before its
# next batch and hands its job back (`_Run.release`). An
# event rather than a signal handler here, because the worker owns the signals; reading it
# once per batch costs nothing next to the batch.
stop_requested = threading.Event()


class JobLost(Exception):
    """Another run claimed the job (a resume while this one was thought dead)."""


class _DryRunRollback(Exception):
    pass


@dataclass
class Batch:
    rows: list[PreparedRow]
    writable: list[PreparedRow]  # the rows left for the writer
    cleaned: Any  # what the writer's clean() made of them (in the reading thread)


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_DONE = object()


def refresh_statistics(created: int) -> None:
    """After an import that added IMPORT_ANALYZE_FROM_ROWS contacts or more, the database's
    statistics of the contacts table are refreshed (ANALYZE samples it: about ten seconds at
    ten million rows on PostgreSQL, whose search_text histogram has 1,000 buckets; half a
    second at 100,000 on SQLite). PostgreSQL's
    autovacuum waits for a tenth of the table to change, and SQLite has no statistics
    until someone runs ANALYZE, so an agent imported into a large table would otherwise
    look tiny to the planner, and what it plans from that picture walks the whole agent
    (a search on SQLite scans the agent instead of reading its search index). Never fails
    the import: statistics are an optimisation."""
    threshold = settings.IMPORT_ANALYZE_FROM_ROWS
    if not threshold or created < threshold:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Contact._meta.db_table}")
    except DatabaseError:
        logger.warning("Refreshing the contacts table's statistics failed", exc_info=True)


def prefetched(items: Iterator[Any], *, depth: int) -> Iterator[Any]:
    """`items`, produced by a thread up to `depth` ahead; its exceptions are raised here."""
    queue_: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                queue_.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer
            put(_Failure(exc))

    thread = threading.Thread(target=produce, name="import-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = queue_.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=30)


# The longest rest between two batches (IMPORT_PAUSE_RATIO), whatever a batch took.
MAX_PAUSE_SECONDS = 5.0

# The set-based writer of each database (IMPORT_FAST_PATH); the services everywhere else.
FAST_WRITERS = {"postgresql": CopyWriter, "sqlite": SqliteWriter}


def make_writer(*, job, actor, definitions, converter):
    writer = FAST_WRITERS.get(connection.vendor) if settings.IMPORT_FAST_PATH else None
    writer = writer or ServiceWriter
    return writer(job=job, actor=actor, definitions=definitions, converter=converter)


# --- Running a job ---------------------------------------------------------------------------


def import_claim(job_id: Any) -> tuple[ContactImport, str] | None:
    """Take the job for this run (queued, failed, or running with a silent worker)."""
    token = secrets.token_hex(16)
    now = timezone.now()
    stale = now - timedelta(seconds=settings.IMPORT_STALE_SECONDS)
    with transaction.atomic():
        job = ContactImport.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            return None
        if job.status == Status.RUNNING and job.heartbeat_at and job.heartbeat_at > stale:
            return None
        if job.status not in (Status.QUEUED, Status.RUNNING, Status.FAILED):
            return None
        job.status = Status.RUNNING
        job.run_token = token
        job.error = ""
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.finished_at = None
        job.save(
            update_fields=[
                "status", "run_token", "error", "started_at", "heartbeat_at", "finished_at"
            ]
        )  # fmt: skip
    return job, token


def import_run(job_id: Any, *, requeue: Callable[[], object] | None = None) -> str:
    """Run (or resume) one import job to its end; returns the final status, or "released"
    when the worker was asked to stop and the job was handed back after its last batch
    (`requeue` then queues its next run in the same transaction)."""
    claimed = import_claim(job_id)
    if claimed is None:
        return "skipped"
    job, token = claimed
    run = _Run(job, token, requeue=requeue)
    try:
        if not run.execute():
            return "released"
    except JobLost:
        return "lost"
    except (FileFormatError, MappingError) as exc:
        run.fail(str(exc))
    except DomainError as exc:
        run.fail(exc.message)
    except Exception:
        logger.exception("Import %s stopped", job.pk)
        run.fail(
            f"The import stopped unexpectedly after row {job.processed_rows:,}. Every row "
            "before it is saved; resume the import to continue from there."
        )
        raise
    return job.status


class _Run:
    def __init__(
        self, job: ContactImport, token: str, *, requeue: Callable[[], object] | None = None
    ) -> None:
        self.job = job
        self.token = token
        self.requeue = requeue
        self.report: Any = None
        self.report_writer: Any = None

    # -- setup -------------------------------------------------------------------------------

    def _definitions(self) -> dict[str, AttributeDefinition]:
        job = self.job
        definitions = attribute_definition_map(agent=job.agent)
        mapping = validate_mapping(job.mapping, job.columns, definitions, job.new_attributes)
        wanted = {t[4:]: job.new_attributes[t[4:]] for t in mapping.values() if t[:4] == "new:"}
        if wanted:
            missing = {k: v for k, v in wanted.items() if k not in definitions}
            room = attribute_room(agent=job.agent)
            if len(missing) > room:
                raise MappingError(
                    f"This import would create {len(missing)} attributes but the agent has room "
                    f"for {room} more (at most {settings.MAX_ATTRIBUTES_PER_AGENT}). Map some "
                    "columns to existing attributes or don't import them."
                )
            if job.dry_run:
                for key, type_ in missing.items():
                    definitions[key] = AttributeDefinition(agent=job.agent, key=key, type=type_)
            else:
                attributes_create_inferred(agent=job.agent, types=missing)
                definitions = attribute_definition_map(agent=job.agent)
            mapping = {
                c: (f"attr:{t[4:]}" if t.startswith("new:") else t) for c, t in mapping.items()
            }
        self.converter = RowConverter(mapping)
        return definitions

    def _rows(self) -> Iterator[SourceRow]:
        job = self.job
        binary = job.file.open("rb")
        try:
            _header, rows = open_rows(binary, file_format=job.file_format, delimiter=job.delimiter)
            yield from rows
        finally:
            binary.close()

    # -- pass 1 --------------------------------------------------------------------------------

    def scan(self) -> None:
        """Read the whole file once: structure, row count, and rows a later row supersedes."""
        limit = settings.IMPORT_MAX_ROWS
        seen: set[int] = set()
        last: dict[int, tuple[int, str, int]] = {}
        known = set(self.job.columns)
        unmapped: dict[str, None] = {}
        total = 0
        for index, source in enumerate(self._rows(), start=1):
            total = index
            if index > limit:
                raise FileFormatError(
                    f"The file has more than {limit:,} rows; split it into smaller files."
                )
            if self.job.file_format != "csv" and len(unmapped) < 100:
                for key in source.values:
                    if key not in known:
                        unmapped[key] = None
            key = self.converter.key_of(source.values)
            if key is None:
                continue
            digest = hash(key)
            if digest in seen:
                last[digest] = (index, key, source.number)
            else:
                seen.add(digest)
        self.superseding = last
        self.job.total_rows = total
        self.job.unmapped_columns = list(unmapped)
        self._save_job("total_rows", "unmapped_columns", "heartbeat_at")

    def superseded_by(self, index: int, source: SourceRow) -> int | None:
        """The file row that wins over this one (same contact, later), if any."""
        key = self.converter.key_of(source.values)
        if key is None:
            return None
        entry = self.superseding.get(hash(key))
        if entry and entry[1] == key and index < entry[0]:
            return entry[2]
        return None

    # -- pass 2 ---------------------------------------------------------------------------------

    def execute(self) -> bool:
        """Write every row after the last saved one and finish; False when the worker is
        stopping and the job was handed back instead."""
        job = self.job
        definitions = self._definitions()
        self.scan()
        actor = Actor.importer(job.actor_label or f"import {job.filename}")
        self.writer = make_writer(
            job=job, actor=actor, definitions=definitions, converter=self.converter
        )
        if job.dry_run:
            self._open_report()
        try:
            # Reading, converting and cleaning the next batch (Python) overlaps with writing
            # this one (the database): the two use the machine's two cores.
            pause = settings.IMPORT_PAUSE_RATIO
            for batch in prefetched(self._batches(), depth=2):
                if stop_requested.is_set():
                    self.release()
                    return False
                started = monotonic()
                self.flush(batch)
                # The batch's search-index entries are merged by the import, not by the
                # next request that happens to push the index's pending list over its limit.
                pending_entries_merge(connection)
                if pause:
                    # Yield to the people using the dashboard and the widget: the writing
                    # takes at most 1 / (1 + pause) of the time (the next batch is being
                    # read meanwhile, so the file's parsing is not slowed down).
                    sleep(min((monotonic() - started) * pause, MAX_PAUSE_SECONDS))
        finally:
            self._close_report()
        self.finish()
        return True

    def _batches(self) -> Iterator[Batch]:
        """The rows after the last saved one, prepared and cleaned, a batch at a time.

        Runs in the reading thread: no database access here."""
        start = self.job.processed_rows
        size = settings.IMPORT_BATCH_ROWS
        if settings.IMPORT_PAUSE_RATIO:
            # Resting: short batches, so no single one holds the database long.
            size = min(size, settings.IMPORT_RESTING_BATCH_ROWS)
        rows: list[PreparedRow] = []
        for index, source in enumerate(self._rows(), start=1):
            if index <= start:
                continue
            rows.append(self.prepare(index, source))
            if len(rows) >= size:
                yield self._batch(rows)
                rows = []
        if rows:
            yield self._batch(rows)

    def _batch(self, rows: list[PreparedRow]) -> Batch:
        writable = [p for p in rows if p.outcome is None]
        return Batch(rows, writable, self.writer.clean(writable))

    def prepare(self, index: int, source: SourceRow) -> PreparedRow:
        if source.error:
            outcome = Outcome("error", [{"column": "", "value": "", "message": source.error}])
            return PreparedRow(source, None, outcome)
        row = self.converter.convert(source.values)
        if row.problems:
            return PreparedRow(source, row, Outcome("error", row.problems))
        later = self.superseded_by(index, source)
        if later is not None:
            message = f"Skipped: row {later:,} of the file has the same contact and wins."
            return PreparedRow(
                source,
                row,
                Outcome("skipped", [{"column": "", "value": "", "message": message}]),
            )
        return PreparedRow(source, row)

    def flush(self, batch: Batch) -> None:
        writable = batch.writable
        if self.job.dry_run:
            try:
                with transaction.atomic():
                    outcomes = self.writer.write(writable, batch.cleaned)
                    raise _DryRunRollback
            except _DryRunRollback:
                pass
            for prepared, outcome in zip(writable, outcomes, strict=True):
                prepared.outcome = outcome
            with transaction.atomic():
                self._record(batch.rows)
            self._write_report(batch.rows)
            return
        with transaction.atomic(), changes_batched(f"import:{self.job.pk}"):
            outcomes = self.writer.write(writable, batch.cleaned)
            for prepared, outcome in zip(writable, outcomes, strict=True):
                prepared.outcome = outcome
            self._record(batch.rows)

    def _record(self, batch: list[PreparedRow]) -> None:
        """Counters, issues and progress of a batch, in the batch's transaction."""
        job = ContactImport.objects.select_for_update().get(pk=self.job.pk)
        if job.run_token != self.token:
            raise JobLost
        counts = {"created": 0, "updated": 0, "unchanged": 0, "error": 0, "skipped": 0}
        issues = []
        for prepared in batch:
            outcome = prepared.outcome
            counts[outcome.action] += 1
            if outcome.action in ("error", "skipped"):
                issues.append(
                    ImportRowIssue(
                        job_id=job.pk,
                        agent_id=job.agent_id,
                        row_number=prepared.source.number,
                        kind=ImportRowIssue.Kind.ERROR
                        if outcome.action == "error"
                        else ImportRowIssue.Kind.SKIPPED,
                        problems=outcome.problems,
                        raw=raw_cells(prepared.source.raw),
                    )
                )
        ImportRowIssue.objects.bulk_create(issues, batch_size=1000)
        ContactImport.objects.filter(pk=job.pk).update(
            processed_rows=F("processed_rows") + len(batch),
            created_count=F("created_count") + counts["created"],
            updated_count=F("updated_count") + counts["updated"],
            unchanged_count=F("unchanged_count") + counts["unchanged"],
            failed_count=F("failed_count") + counts["error"],
            skipped_count=F("skipped_count") + counts["skipped"],
            heartbeat_at=timezone.now(),
        )
        self.job.processed_rows = job.processed_rows + len(batch)

    # -- end ------------------------------------------------------------------------------------

    def finish(self) -> None:
        with transaction.atomic():
            job = ContactImport.objects.select_for_update().get(pk=self.job.pk)
            if job.run_token != self.token:
                raise JobLost
            job.status = Status.COMPLETED
            job.finished_at = timezone.now()
            if job.dry_run:
                job.dry_run_summary = {
                    "rows": job.total_rows,
                    "created": job.created_count,
                    "updated": job.updated_count,
                    "unchanged": job.unchanged_count,
                    "failed": job.failed_count,
                    "skipped": job.skipped_count,
                }
            job.save()
            if not job.dry_run:
                import_completed.send(sender=ContactImport, job=job)
        if not job.dry_run:
            # The file holds personal data and is not needed any more: failed rows are kept
            # in ImportRowIssue for their download.
            files.files_delete(job.pk)
            ContactImport.objects.filter(pk=job.pk).update(file="")
            refresh_statistics(job.created_count)
        self.job.refresh_from_db()

    def release(self) -> None:
        """Hand the job back after its last committed batch: queued and unclaimed, with its
        next run enqueued in the same transaction (`requeue`), so a worker resumes it now
        rather than after IMPORT_STALE_SECONDS. A dry run starts over (see `progress_reset`)."""
        with transaction.atomic():
            job = ContactImport.objects.select_for_update().get(pk=self.job.pk)
            if job.run_token != self.token:
                raise JobLost
            if job.dry_run:
                progress_reset(job)
            job.status = Status.QUEUED
            job.run_token = ""
            job.heartbeat_at = timezone.now()
            job.save()
            if self.requeue is not None:
                self.requeue()
        logger.info(
            "Import %s handed back after %s rows: its worker is stopping",
            job.pk,
            job.processed_rows,
        )
        self.job = job

    def fail(self, message: str) -> None:
        updated = ContactImport.objects.filter(pk=self.job.pk, run_token=self.token).update(
            status=Status.FAILED, error=message[:2000], finished_at=timezone.now()
        )
        if updated:
            self.job.refresh_from_db()

    def _save_job(self, *fields: str) -> None:
        self.job.heartbeat_at = timezone.now()
        updated = ContactImport.objects.filter(pk=self.job.pk, run_token=self.token).update(
            **{name: getattr(self.job, name) for name in fields}
        )
        if not updated:
            raise JobLost

    # -- the dry-run report -------------------------------------------------------------------

    def _open_report(self) -> None:
        self.report = files.report_open(self.job)
        self.report_writer = csv.writer(self.report)
        self.report_writer.writerow(["row", "action", "contact", "column", "value", "reason"])

    def _write_report(self, batch: list[PreparedRow]) -> None:
        write = self.report_writer.writerow
        for prepared in batch:
            outcome = prepared.outcome
            label = neutralize(_row_label(prepared.row))
            if not outcome.problems:
                write([prepared.source.number, ACTION_WORDS[outcome.action], label, "", "", ""])
            for problem in outcome.problems:
                write(
                    [
                        prepared.source.number,
                        ACTION_WORDS[outcome.action],
                        label,
                        neutralize(problem["column"]),
                        neutralize(problem["value"]),
                        neutralize(problem["message"]),
                    ]
                )

    def _close_report(self) -> None:
        if self.report is not None:
            self.report.close()
            self.report = None


ACTION_WORDS = {
    "created": "create",
    "updated": "update",
    "unchanged": "unchanged",
    "error": "error",
    "skipped": "skip",
}


def _row_label(row: RowData | None) -> str:
    if row is None:
        return ""
    data = row.data
    return str(data.get("external_id") or data.get("email") or data.get("phone") or "")[:200]


def progress_reset(job: ContactImport) -> None:
    """Back to before the first row: counters, row issues and times (the caller saves).

    What a dry run goes through whenever it is run again: its per-row report is written in
    one go from the first row."""
    ImportRowIssue.objects.filter(job=job).delete()
    job.error = ""
    job.total_rows = None
    job.processed_rows = 0
    job.created_count = job.updated_count = job.unchanged_count = 0
    job.failed_count = job.skipped_count = 0
    job.started_at = job.finished_at = None


def check_valid_mapping(job: ContactImport) -> None:
    """Raise ValidationFailed when the job's mapping cannot run (for views and API)."""
    definitions = attribute_definition_map(agent=job.agent)
    try:
        validate_mapping(job.mapping, job.columns, definitions, job.new_attributes)
    except MappingError as exc:
        raise ValidationFailed({"mapping": [str(exc)]}) from None
