"""The benchmark's bulk section runs a real bulk job in a child process while it times the
table, and leaves the agent as it found it (the timings are for `make bench`)."""

from __future__ import annotations

import pytest
from django.db import connection

from bench import bulk
from bench.context import BenchContext
from contacts.models import AuditEvent, Contact, ContactTag, Tag
from tests.factories import ContactFactory, TagFactory
from transfers.models import BulkJob
from workspaces.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the benchmark measures PostgreSQL")
def test_the_bulk_section_tags_every_contact_and_cleans_up(agent, admin_user):
    ContactFactory.create_batch(5, agent=agent)
    kept = TagFactory(agent=agent, name="vip")
    Contact.objects.filter(agent=agent).first().tags.add(kept)
    ctx = BenchContext(
        agent=agent,
        user=admin_user,
        api_key=api_key_create(agent=agent, name="bench").raw,
        contacts=5,
    )
    lines: list[str] = []
    rows = bulk.run(ctx, repeat=2, log=lines.append)
    assert [row.work for row in rows] == [
        "bulk tag of 5 matching contacts (background job)",
        "table: default page while the bulk job runs",
    ]
    assert rows[0].ok is True
    assert "5 tagged" in rows[0].measured
    assert rows[1].measured.startswith("p50 ")
    assert any("'status': 'completed'" in line for line in lines)
    # The agent is as it was: no bench tag, links, audit entries or jobs.
    assert list(Tag.objects.filter(agent=agent).values_list("name", flat=True)) == ["vip"]
    assert ContactTag.objects.count() == 1
    assert not AuditEvent.objects.filter(agent=agent).exists()
    assert not BulkJob.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the benchmark measures PostgreSQL")
def test_in_a_larger_agent_the_bulk_section_tags_the_newest_million(agent, admin_user, monkeypatch):
    """Beyond MAX_CONTACTS (a million; 3 here) the job takes the newest MAX_CONTACTS contacts
    through a `created_after` view, as the bulk bar would queue it."""
    from datetime import timedelta

    from django.utils import timezone

    monkeypatch.setattr(bulk, "MAX_CONTACTS", 3)
    start = timezone.now() - timedelta(days=10)
    contacts = [
        ContactFactory(agent=agent, created_at=start + timedelta(days=day)) for day in range(5)
    ]
    ctx = BenchContext(
        agent=agent,
        user=admin_user,
        api_key=api_key_create(agent=agent, name="bench").raw,
        contacts=5,
    )
    query, count, live = bulk.selection(ctx)
    assert query.startswith("created_after=")
    assert count == 3
    assert live == 5
    tagged: list[set] = []
    real_forget = bulk._forget

    def forget_after_looking(ctx):
        tagged.append(
            set(ContactTag.objects.filter(tag__name=bulk.TAG).values_list("contact_id", flat=True))
        )
        real_forget(ctx)

    monkeypatch.setattr(bulk, "_forget", forget_after_looking)
    lines: list[str] = []
    rows = bulk.run(ctx, repeat=2, log=lines.append)
    assert rows[0].work == ("bulk tag of 3 matching contacts (the newest of 5; background job)")
    assert rows[0].ok is True
    assert "3 tagged" in rows[0].measured
    # Before the job nothing was tagged; after it, exactly the three newest contacts.
    assert tagged == [set(), {c.pk for c in contacts[2:]}]
    assert not ContactTag.objects.exists()
    assert not BulkJob.objects.exists()
