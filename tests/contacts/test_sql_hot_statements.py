"""The statements written by hand for identify's hot path, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from contacts import services
from contacts.models import Contact, Identity
from contacts.selectors import self_reported_twin_ids
from contacts.services import writes
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
