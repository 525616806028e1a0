from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from attributes.services import attribute_create
from contacts.imports.engine import import_run
from contacts.imports.services import import_create, import_start
from contacts.models import ContactImport


@pytest.fixture(params=["services", "copy"])
def writer(request, settings, db) -> str:
    """Every engine test runs through the row-by-row services and, on PostgreSQL, through
    the COPY fast path: both must give the same results."""
    if request.param == "copy" and connection.vendor != "postgresql":
        pytest.skip("the COPY fast path exists on PostgreSQL only")
    settings.IMPORT_FAST_PATH = request.param == "copy"
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
