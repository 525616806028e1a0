"""The benchmark's table section runs every scenario against the real URL stack (the
timings themselves are for `make bench`, never asserted here)."""

from __future__ import annotations

import pytest
from django.db import connection

from bench import table
from bench.context import BenchContext
from tests.factories import ContactFactory
from workspaces.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the benchmark measures PostgreSQL")
def test_the_table_section_measures_every_page_beside_its_baselines(agent, admin_user):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    ContactFactory.create_batch(3, agent=agent)
    ctx = BenchContext(
        agent=agent,
        user=admin_user,
        api_key=api_key_create(agent=agent, name="bench").raw,
        contacts=3,
    )
    rows = table.run(ctx, repeat=1, log=lambda *args: None)
    works = [row.work for row in rows]
    for label in ("table: default sort (newest first)", "table: sort by email"):
        assert label in works
    assert any(work.startswith("table: search") for work in works)
    assert all("HTTP" not in row.measured for row in rows), [r.measured for r in rows]
    assert all(
        row.baseline != "—" or row.work.endswith(("company", "last seen")) for row in rows[:3]
    )


def test_the_api_section_goes_a_hundredth_of_the_list_deep_beyond_a_million():
    from bench.api import deep_page_for

    assert deep_page_for(10_000_000) == 100_000
    assert deep_page_for(1_000_000) == 10_000
    assert deep_page_for(3_000) == 59  # the last page but one of a small agent
    assert deep_page_for(60) == 2


def test_alternating_measurements_take_turns_and_time_each_call():
    from bench.harness import measure_alternating

    calls: list[str] = []
    first, second = measure_alternating(
        [lambda: calls.append("page"), lambda: calls.append("admin")], repeat=3, warmup=1
    )
    assert calls == ["page", "admin"] * 4
    assert len(first.samples_ms) == len(second.samples_ms) == 3
