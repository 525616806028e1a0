"""The benchmark's busy section imports a file in a child process (the worker's code) while
it sends identify calls and requests the table, and leaves the agent as it found it (the
timings are for `make bench`)."""

from __future__ import annotations

import pytest
from django.db import connection

from bench import busy, identify
from bench.context import BenchContext
from contacts.models import Contact
from tests.factories import ContactFactory
from transfers.models import ContactImport
from workspaces.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the benchmark measures PostgreSQL")
def test_the_busy_section_imports_measures_and_cleans_up(agent, admin_user, monkeypatch, tmp_path):
    monkeypatch.setattr(identify, "DURATION_S", 1.0)
    monkeypatch.setattr(identify, "WARM_UP_S", 0.5)
    monkeypatch.setattr(busy.imports, "FILE", tmp_path / "busy.csv")
    ContactFactory.create_batch(40, agent=agent)
    ctx = BenchContext(
        agent=agent,
        user=admin_user,
        api_key=api_key_create(agent=agent, name="bench").raw,
        contacts=40,
    )
    lines: list[str] = []
    rows = busy.run(ctx, repeat=2, log=lines.append)

    assert [row.work.split(" during ")[0] for row in rows] == [
        "verified identify at 300 req/s",
        "table: default page",
    ]
    assert "during a 40-row import" in rows[0].work
    assert rows[0].baseline.startswith("idle p50 ")
    assert rows[1].measured.startswith("p50 ")
    assert any("'status': 'completed'" in line and "'created': 40" in line for line in lines)
    # The imported rows are gone again; the agent keeps its own 40.
    assert Contact.objects.filter(agent=agent).count() == 40
    assert ContactImport.objects.filter(agent=agent, status="completed").count() == 1
