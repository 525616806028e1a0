"""A returning verified user's contact is found, locked and marked seen by one statement
(`contact_upsert(seen_at=...)`). Over HTTP: only a valid signature reaches it, a refused
identify leaves it as it was, and a soft-deleted contact comes back marked seen."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from contacts.models import Contact, Identity
from identity.models import VisitorSession
from tests.factories import AttributeFactory
from tests.identity.conftest import Widget, make_jwt

pytestmark = pytest.mark.django_db

LONG_AGO = timezone.now() - timedelta(days=30)


def _verified_user(agent) -> Contact:
    first = Widget(agent)
    assert first.jwt(user_id="u-1", contact_attributes={"name": "Ada"}).status_code == 200
    Contact.objects.filter(agent=agent, external_id="u-1").update(last_seen_at=LONG_AGO)
    return Contact.objects.get(agent=agent, external_id="u-1")


def test_a_forged_token_for_a_known_user_neither_marks_them_seen_nor_reaches_them(agent):
    contact = _verified_user(agent)
    attacker = Widget(agent)
    forged = make_jwt(secret="x" * 48, user_id="u-1", contact_attributes={"name": "Mallory"})
    response = attacker.identify({"token": forged})
    assert response.status_code == 401
    contact.refresh_from_db()
    assert contact.last_seen_at == LONG_AGO
    assert contact.name == "Ada"
    assert not VisitorSession.objects.filter(
        agent=agent, visitor_id=attacker.visitor_id, contact=contact
    ).exists()


def test_a_refused_identify_leaves_the_known_user_unseen_and_unchanged(agent):
    AttributeFactory(agent=agent, key="seats", type="number")
    contact = _verified_user(agent)
    widget = Widget(agent)
    response = widget.jwt(user_id="u-1", contact_attributes={"name": "Eve", "seats": "many"})
    assert response.status_code == 400
    contact.refresh_from_db()
    assert contact.last_seen_at == LONG_AGO
    assert contact.name == "Ada"
    assert not VisitorSession.objects.filter(agent=agent, visitor_id=widget.visitor_id).exists()


def test_a_soft_deleted_user_identifying_again_is_restored_and_marked_seen(agent):
    contact = _verified_user(agent)
    Contact.objects.filter(pk=contact.pk).update(deleted_at=timezone.now())
    widget = Widget(agent)
    response = widget.jwt(user_id="u-1")
    assert response.status_code == 200
    assert response.json()["contact"]["id"] == str(contact.pk)
    contact.refresh_from_db()
    assert contact.deleted_at is None
    assert contact.identity == Identity.VERIFIED
    assert contact.last_seen_at > LONG_AGO
    session = VisitorSession.objects.get(agent=agent, visitor_id=widget.visitor_id)
    assert session.contact_id == contact.pk
    assert session.signed is True
