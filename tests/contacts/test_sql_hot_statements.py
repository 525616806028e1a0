"""The statements written by hand for identify's hot path, on both databases."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts import services
from contacts import sql as contacts_sql
from contacts.models import Contact, Identity
from contacts.selectors import self_reported_twin_ids
from contacts.services import writes
from identity import services as identity_services
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def test_mark_seen_sets_first_seen_once_and_only_moves_last_seen_forward(agent):
    contact = ContactFactory(agent=agent, first_seen_at=None, last_seen_at=None)
    monday = timezone.now().replace(microsecond=0) - timedelta(days=7)
    services.contact_mark_seen(contact=contact, at=monday)
    contact.refresh_from_db()
    assert (contact.first_seen_at, contact.last_seen_at) == (monday, monday)

    later = monday + timedelta(days=2, microseconds=250)
    services.contact_mark_seen(contact=contact, at=later)
    services.contact_mark_seen(contact=contact, at=monday + timedelta(hours=1))  # arrives late
    contact.refresh_from_db()
    assert contact.first_seen_at == monday
    assert contact.last_seen_at == later


def test_mark_seen_touches_only_that_contact(agent):
    seen, other = ContactFactory(agent=agent), ContactFactory(agent=agent, last_seen_at=None)
    services.contact_mark_seen(contact=seen)
    other.refresh_from_db()
    assert other.last_seen_at is None


def test_locked_by_finds_the_agents_contact_by_external_id_or_fingerprint(agent, other_agent):
    mine = ContactFactory(agent=agent, external_id="u-1", fingerprint=None)
    ContactFactory(agent=other_agent, external_id="u-2")
    keyed = ContactFactory(agent=agent, external_id=None, fingerprint="f" * 64)
    with transaction.atomic():
        found = writes._locked_by(agent, external_id="u-1")
        assert found.pk == mine.pk
        assert found.attributes == mine.attributes
        assert found.agent is agent
        assert writes._locked_by(agent, external_id="u-2") is None
        assert writes._locked_by(agent, fingerprint="f" * 64).pk == keyed.pk


def test_twin_ids_are_live_unkeyed_self_reported_contacts_with_the_email_in_any_case(
    agent, other_agent
):
    target = ContactFactory(agent=agent, email="ada@example.com", identity=Identity.VERIFIED)
    old = ContactFactory(
        agent=agent, email="Ada@Example.com", identity=Identity.SELF_REPORTED, external_id=None
    )
    new = ContactFactory(
        agent=agent, email="ADA@example.com", identity=Identity.SELF_REPORTED, external_id=None
    )
    Contact.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1))
    # None of these may be folded in: verified, keyed, deleted, another agent, another email.
    ContactFactory(agent=agent, email="ada@example.com", identity=Identity.VERIFIED)
    ContactFactory(
        agent=agent, email="ada@example.com", identity=Identity.SELF_REPORTED, external_id="k"
    )
    ContactFactory(
        agent=agent,
        email="ada@example.com",
        identity=Identity.SELF_REPORTED,
        external_id=None,
        deleted_at=timezone.now(),
    )
    ContactFactory(
        agent=other_agent,
        email="ada@example.com",
        identity=Identity.SELF_REPORTED,
        external_id=None,
    )
    ContactFactory(
        agent=agent, email="bob@example.com", identity=Identity.SELF_REPORTED, external_id=None
    )

    ids = self_reported_twin_ids(agent=agent, email="ada@example.com", exclude=target, limit=20)
    assert ids == [old.pk, new.pk]
    assert self_reported_twin_ids(
        agent=agent, email="ADA@EXAMPLE.COM", exclude=target, limit=1
    ) == [old.pk]
    assert self_reported_twin_ids(agent=agent, email="ada@example.com", exclude=old, limit=20) == [
        new.pk
    ]
    assert self_reported_twin_ids(agent=agent, email="", exclude=target, limit=20) == []


postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the PostgreSQL planner's choice of index"
)


def _plan(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@postgres_only
def test_email_probes_stay_on_an_email_index_for_an_agent_the_statistics_do_not_know(
    agent, other_agent
):
    """A new agent on a large table: ANALYZE ran before its contacts came, so the planner
    thinks it has almost none and would rather walk its created_at index in the asked order
    than sort 0–2 rows (it read the agent's every contact, 2 ms at 2,000, on every verified
    identify). The self-reported lookups have indexes in that order."""
    Contact.objects.bulk_create(
        ContactFactory.build(agent=other_agent, email=f"p{i}@example.com", identity="verified")
        for i in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact")
    Contact.objects.bulk_create(
        ContactFactory.build(
            agent=agent,
            email=f"n{i}@example.com",
            phone=f"+1555010{i:04d}",
            identity="verified" if i % 2 else "self_reported",
        )
        for i in range(400)
    )
    twins = _plan(contacts_sql.SELF_REPORTED_TWINS, [agent.pk, "n1@example.com", uuid4(), 20])
    assert "contact_self_reported_email" in twins, twins
    for key in (("email", "n1@example.com"), ("phone", "+15550100001")):
        match = identity_services._self_reported_match(agent, key)
        assert match is None
        with CaptureQueriesContext(connection) as queries:
            identity_services._self_reported_match(agent, key)
        plan = _plan(queries.captured_queries[0]["sql"], [])
        assert f"contact_self_reported_{key[0]}" in plan, plan
