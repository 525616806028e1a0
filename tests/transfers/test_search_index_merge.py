"""Writers of many rows merge their own search-index entries (contacts.search_index.
pending_entries_merge): after each batch of an import or a bulk job, so a widget request never
merges thousands of an import's rows before answering. On PostgreSQL the trigram index's
pending list is empty once a batch is written; elsewhere the merge is a no-op."""

from __future__ import annotations

import pytest
from django.db import connection

from contacts.search_index import pending_entries_merge
from tests.factories import ContactFactory
from transfers.bulk import runner
from transfers.bulk.actions import BackgroundRequest, BulkAction
from transfers.bulk.runner import bulk_job_run
from transfers.bulk.services import bulk_job_start
from transfers.imports import engine

pytestmark = pytest.mark.django_db

POSTGRESQL = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the trigram GIN index is PostgreSQL's"
)
ROWS = "external_id,name,email\n" + "".join(
    f"m-{n},Merged Person {n},merged{n}@example.com\n" for n in range(5)
)


def _counting(monkeypatch, module) -> list[int]:
    """Each merge's result, through the real function."""
    merged: list[int] = []

    def merge(conn) -> int:
        merged.append(pending_entries_merge(conn))
        return merged[-1]

    monkeypatch.setattr(module, "pending_entries_merge", merge)
    return merged


@POSTGRESQL
def test_written_contacts_wait_in_the_pending_list_until_merged(agent):
    pending_entries_merge(connection)  # what earlier tests left
    ContactFactory.create_batch(3, agent=agent, name="Pending Person")

    assert pending_entries_merge(connection) >= 1
    assert pending_entries_merge(connection) == 0


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's search index is FTS5")
def test_on_sqlite_there_is_nothing_to_merge(agent):
    ContactFactory.create_batch(3, agent=agent)

    assert pending_entries_merge(connection) == 0


def test_an_import_merges_its_entries_after_each_batch(run_import, settings, monkeypatch, agent):
    settings.IMPORT_BATCH_ROWS = 2
    merged = _counting(monkeypatch, engine)

    job = run_import(ROWS)

    assert job.status == "completed"
    assert agent.contacts.filter(external_id__startswith="m-").count() == 5
    assert len(merged) == 3  # batches of 2, 2 and 1
    if connection.vendor == "postgresql":
        assert all(pages >= 1 for pages in merged)
        assert pending_entries_merge(connection) == 0
    else:
        assert merged == [0, 0, 0]


def test_a_bulk_job_merges_its_entries_after_each_batch(agent, admin_user, settings, monkeypatch):
    settings.BULK_BATCH_ROWS = 2
    settings.BULK_PAUSE_RATIO = 0
    ContactFactory.create_batch(4, agent=agent, name="Bulk Person")
    pending_entries_merge(connection)
    merged = _counting(monkeypatch, runner)
    job = bulk_job_start(
        BackgroundRequest(
            agent=agent,
            user=admin_user,
            action=BulkAction("tag", {"tag": "merged"}),
            query="q=bulk",
            estimate=4,
        )
    )

    bulk_job_run(job.pk)

    job.refresh_from_db()
    assert (job.status, job.changed_count) == ("completed", 4)
    # Two batches of two, then the batch that finds no one left ends the job.
    assert len(merged) == 2
    if connection.vendor == "postgresql":
        # Tagging stamps each contact's updated_at: new row versions, new index entries.
        assert all(pages >= 1 for pages in merged)
    assert pending_entries_merge(connection) == 0
