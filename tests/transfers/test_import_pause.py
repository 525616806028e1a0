"""IMPORT_PAUSE_RATIO: a large import rests after each batch for that fraction of the time
the batch took, so the dashboard and the widget keep their speed; the rows it writes are the
same as flat out."""

from __future__ import annotations

import pytest

from contacts.models import Contact
from transfers.imports import engine

from .conftest import counts

pytestmark = pytest.mark.django_db

ROWS = "external_id,name,email\n" + "".join(
    f"u-{n},Person {n},p{n}@example.com\n" for n in range(7)
)


def _rests(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(engine, "sleep", slept.append)
    return slept


def test_an_import_rests_after_each_batch_for_its_share_of_the_batch(
    run_import, settings, monkeypatch, agent
):
    settings.IMPORT_BATCH_ROWS = 2
    settings.IMPORT_PAUSE_RATIO = 0.5
    ticks = iter(range(0, 1000, 4))  # each monotonic() reading 4 s after the last
    monkeypatch.setattr(engine, "monotonic", lambda: next(ticks))
    slept = _rests(monkeypatch)

    job = run_import(ROWS)

    assert job.status == "completed"
    assert counts(job)["created"] == 7
    assert Contact.objects.filter(agent=agent, external_id__startswith="u-").count() == 7
    # Four batches (2+2+2+1); each took 4 s by the clock, each rest is half of it.
    assert slept == [2.0, 2.0, 2.0, 2.0]


def test_an_import_that_rests_writes_short_batches(run_import, settings, monkeypatch):
    """Each resting batch holds the database for less time: IMPORT_RESTING_BATCH_ROWS caps
    the batch while IMPORT_PAUSE_RATIO is set; flat out the batch size is as configured."""
    settings.IMPORT_BATCH_ROWS = 5
    settings.IMPORT_RESTING_BATCH_ROWS = 3
    settings.IMPORT_PAUSE_RATIO = 1.0
    slept = _rests(monkeypatch)
    written: list[int] = []
    flush = engine._Run.flush

    def counting(self, batch):
        written.append(len(batch.rows))
        return flush(self, batch)

    monkeypatch.setattr(engine._Run, "flush", counting)
    job = run_import(ROWS)
    assert counts(job)["created"] == 7
    assert written == [3, 3, 1]
    assert len(slept) == 3

    settings.IMPORT_PAUSE_RATIO = 0.0
    written.clear()
    run_import(ROWS.replace("u-", "w-"))
    assert written == [5, 2]


def test_a_rest_never_exceeds_five_seconds_and_flat_out_never_rests(
    run_import, settings, monkeypatch
):
    settings.IMPORT_BATCH_ROWS = 4
    settings.IMPORT_PAUSE_RATIO = 10.0
    ticks = iter(range(0, 1000, 3))
    monkeypatch.setattr(engine, "monotonic", lambda: next(ticks))
    slept = _rests(monkeypatch)
    run_import(ROWS)
    assert slept == [engine.MAX_PAUSE_SECONDS, engine.MAX_PAUSE_SECONDS]

    settings.IMPORT_PAUSE_RATIO = 0.0
    slept.clear()
    job = run_import(ROWS.replace("u-", "w-"))
    assert counts(job)["created"] == 7
    assert slept == []
