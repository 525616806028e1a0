"""After a large import the database's statistics of the contacts table are refreshed, so
the planner knows the agent that just arrived (PostgreSQL's autovacuum waits for a tenth of
the table; SQLite has none until ANALYZE runs)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db

FILE = "email,name\nada@example.com,Ada\ngrace@example.com,Grace\nkate@example.com,Kate\n"


def _analyzed(run_import, **options) -> tuple[object, bool]:
    with CaptureQueriesContext(connection) as queries:
        job = run_import(FILE, **options)
    return job, any(q["sql"].startswith("ANALYZE") for q in queries.captured_queries)


def test_an_import_of_enough_new_contacts_refreshes_the_statistics(run_import, settings):
    settings.IMPORT_ANALYZE_FROM_ROWS = 3
    job, analyzed = _analyzed(run_import)
    assert job.status == "completed"
    assert job.created_count == 3
    assert analyzed


@pytest.mark.parametrize(("threshold", "dry_run"), [(4, False), (0, False), (3, True)])
def test_a_smaller_import_a_dry_run_or_the_switch_off_leave_them(
    run_import, settings, threshold, dry_run
):
    settings.IMPORT_ANALYZE_FROM_ROWS = threshold
    job, analyzed = _analyzed(run_import, dry_run=dry_run)
    assert job.status == "completed"
    assert analyzed is False
