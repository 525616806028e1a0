from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import signing
from django.utils import timezone

from contacts.models import Identity
from identity.models import VisitorSession
from identity.sessions import (
    SESSION_SALT,
    InvalidSessionToken,
    session_token_issue,
    session_token_verify,
    visitor_session_attach,
    visitor_session_get_or_create,
)
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def test_a_session_token_round_trips_for_its_agent_only(agent, other_agent):
    session = visitor_session_get_or_create(agent=agent, visitor_id="v-1")
    assert visitor_session_get_or_create(agent=agent, visitor_id="v-1") == session
    token = session_token_issue(session=session, agent=agent)
    assert session_token_verify(token=token, agent=agent) == session
    with pytest.raises(InvalidSessionToken, match="another agent"):
        session_token_verify(token=token, agent=other_agent)


def test_forged_expired_and_empty_tokens_are_refused(agent, settings):
    session = visitor_session_get_or_create(agent=agent, visitor_id="v-1")
    token = session_token_issue(session=session, agent=agent)
    with pytest.raises(InvalidSessionToken, match="not valid"):
        session_token_verify(token=token[:-2] + "xx", agent=agent)
    forged = signing.dumps({"a": agent.public_id, "s": str(session.pk)}, salt="other")
    with pytest.raises(InvalidSessionToken):
        session_token_verify(token=forged, agent=agent)
    with pytest.raises(InvalidSessionToken):
        session_token_verify(token="", agent=agent)
    settings.WIDGET_SESSION_MAX_AGE_SECONDS = -1
    with pytest.raises(InvalidSessionToken, match="expired"):
        session_token_verify(
            token=signing.dumps({"a": agent.public_id, "s": str(session.pk)}, salt=SESSION_SALT),
            agent=agent,
        )


def test_a_returning_visitor_keeps_its_session_and_contact_and_is_marked_seen(agent):
    contact = ContactFactory(agent=agent, identity=Identity.SELF_REPORTED)
    session = visitor_session_get_or_create(agent=agent, visitor_id="  v-1  ")
    assert session.visitor_id == "v-1"
    assert session.contact_id is None
    assert not session.created_contact
    visitor_session_attach(session=session, contact=contact, own=True)
    long_ago = timezone.now() - timedelta(days=3)
    VisitorSession.objects.filter(pk=session.pk).update(last_seen_at=long_ago)

    again = visitor_session_get_or_create(agent=agent, visitor_id="v-1")
    assert again.pk == session.pk
    assert again.contact_id == contact.pk
    assert again.created_contact is True
    assert again.created_at == session.created_at
    assert again.last_seen_at > long_ago + timedelta(days=2)
    assert VisitorSession.objects.get(pk=session.pk).last_seen_at == again.last_seen_at
    assert VisitorSession.objects.filter(agent=agent).count() == 1


def test_the_same_visitor_id_under_another_agent_is_another_session(agent, other_agent):
    mine = visitor_session_get_or_create(agent=agent, visitor_id="v-1")
    theirs = visitor_session_get_or_create(agent=other_agent, visitor_id="v-1")
    assert mine.pk != theirs.pk
    assert theirs.agent_id == other_agent.pk
    with pytest.raises(ValueError, match="visitor_id"):
        visitor_session_get_or_create(agent=agent, visitor_id="   ")


def test_attaching_the_contact_a_session_already_has_writes_nothing(
    agent, django_assert_num_queries
):
    contact = ContactFactory(agent=agent)
    session = visitor_session_get_or_create(agent=agent, visitor_id="v-1")
    with django_assert_num_queries(1):
        visitor_session_attach(session=session, contact=contact, own=False, signed=True)
    with django_assert_num_queries(0):
        visitor_session_attach(session=session, contact=contact, own=False, signed=True)
    with django_assert_num_queries(1):
        visitor_session_attach(session=session, contact=contact, own=True, signed=True)
    assert VisitorSession.objects.get(pk=session.pk).created_contact is True


def test_only_a_signed_session_may_be_attached_to_a_verified_contact(agent):
    contact = ContactFactory(agent=agent, identity=Identity.VERIFIED)
    session = visitor_session_get_or_create(agent=agent, visitor_id="v-1")
    with pytest.raises(ValueError, match="signed"):
        visitor_session_attach(session=session, contact=contact, own=False)
    assert VisitorSession.objects.get(pk=session.pk).contact_id is None


def test_a_session_token_never_reaches_a_verified_contact_the_session_did_not_sign_for(agent):
    contact = ContactFactory(agent=agent, identity=Identity.VERIFIED)
    session = VisitorSession.objects.create(agent=agent, visitor_id="v-1", contact=contact)
    token = session_token_issue(session=session, agent=agent)
    assert session_token_verify(token=token, agent=agent).contact is None
    assert VisitorSession.objects.get(pk=session.pk).contact_id is None


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="commit durability is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_identify_relaxes_its_commit_and_the_hand_off_keeps_it_durable(agent):
    """Identify's session upsert also sets synchronous_commit off for its own transaction
    (re-sent on every page load, nothing is lost that the next call does not redo); the
    hand-off, whose token must stay used after a crash, commits durably."""
    from django.db import connection, transaction

    def durability() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    with transaction.atomic():
        visitor_session_get_or_create(agent=agent, visitor_id="v-1", relaxed_commit=True)
        assert durability() == "off"
    assert durability() == "on"  # SET LOCAL: the next transaction is durable again
    with transaction.atomic():
        visitor_session_get_or_create(agent=agent, visitor_id="v-1")
        assert durability() == "on"
