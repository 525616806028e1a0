from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from attributes.services import attribute_create
from contacts.models import Contact
from transfers import tasks
from transfers.imports import engine
from transfers.imports.engine import import_run
from transfers.models import ContactImport
from transfers.services import import_create, import_start


@pytest.fixture(params=["services", "fast"])
def writer(request, settings, db) -> str:
    """Every engine test runs through the row-by-row services and through the database's
    set-based fast path (COPY on PostgreSQL, bulk statements on SQLite): both must give the
    same results."""
    settings.IMPORT_FAST_PATH = request.param == "fast"
    return request.param


@pytest.fixture
def schema(agent):
    """The attributes most tests import into: one of each kind that matters."""
    return {
        "plan": attribute_create(agent=agent, key="plan", type="select", options=["Free", "Pro"]),
        "mrr": attribute_create(agent=agent, key="mrr", type="number"),
        "beta": attribute_create(agent=agent, key="beta", type="boolean"),
        "signup": attribute_create(agent=agent, key="signup", type="date"),
        "tier": attribute_create(agent=agent, key="tier", type="text", secure=True),
    }


def upload(content: str | bytes, name: str = "people.csv") -> SimpleUploadedFile:
    data = content.encode() if isinstance(content, str) else content
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


@pytest.fixture
def run_import(agent, writer) -> Callable[..., ContactImport]:
    """Upload `content`, optionally adjust the mapping, and run the job to its end."""

    def run(
        content: str | bytes,
        *,
        name: str = "people.csv",
        mapping: dict[str, str] | None = None,
        new_attributes: dict[str, str] | None = None,
        dry_run: bool = False,
        on_agent=None,
    ) -> ContactImport:
        job = import_create(
            agent=on_agent or agent,
            upload=upload(content, name),
            actor_label="import by test",
            mapping=mapping,
            new_attributes=new_attributes,
        )
        import_start(job=job, dry_run=dry_run)
        import_run(job.pk)
        job.refresh_from_db()
        return job

    return run


def counts(job: ContactImport) -> dict[str, int]:
    return {
        "created": job.created_count,
        "updated": job.updated_count,
        "unchanged": job.unchanged_count,
        "failed": job.failed_count,
        "skipped": job.skipped_count,
    }


class Killed(BaseException):
    """A worker's SIGKILL as the import sees it: no handler runs, nothing records the end."""


FIVE_ROWS = "external_id,name\n" + "".join(f"u{n},Person {n}\n" for n in range(5))


def killed_import(
    agent, monkeypatch, *, content: str = FIVE_ROWS, dry_run: bool = False
) -> tuple[ContactImport, DBTaskResult]:
    """An import whose worker took its task and was killed after the first batch (2 rows
    of 5 saved), left as it would be IMPORT_STALE_SECONDS later: the job running with an
    old heartbeat, its task row RUNNING. Returns the job and that task row."""
    monkeypatch.setattr(settings, "IMPORT_BATCH_ROWS", 2)
    job = import_create(agent=agent, upload=upload(content), actor_label="import by test")
    import_start(job=job, dry_run=dry_run)
    if not tasks.import_task_rows(import_id=job.pk).exists():  # enqueued on commit, if any
        tasks.run_import.enqueue(str(job.pk))
    task_row = tasks.import_task_rows(import_id=job.pk).get()
    task_row.claim("killed-worker")

    flush = engine._Run.flush
    batches = []

    def killed_on_second_batch(self, batch):
        batches.append(batch)
        if len(batches) == 2:
            raise Killed
        return flush(self, batch)

    with monkeypatch.context() as patch:
        patch.setattr(engine._Run, "flush", killed_on_second_batch)
        with pytest.raises(Killed):
            import_run(job.pk)

    long_ago = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS + 60)
    ContactImport.objects.filter(pk=job.pk).update(heartbeat_at=long_ago)
    DBTaskResult.objects.filter(pk=task_row.pk).update(started_at=long_ago)
    job.refresh_from_db()
    task_row.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_count) == ("running", 2, 2)
    assert Contact.objects.filter(agent=agent).count() == (0 if dry_run else 2)
    assert task_row.status == "RUNNING"
    return job, task_row
