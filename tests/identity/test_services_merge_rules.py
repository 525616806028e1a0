"""What happens to a visitor's earlier contacts when it identifies (SPEC 6, matching)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contacts.models import AuditEvent, Contact, Identity
from helpdesk.models import Conversation
from identity.models import VisitorSession
from tests.factories import ContactFactory
from tests.identity.conftest import start_conversation, user_hash

pytestmark = pytest.mark.django_db


def test_an_identify_with_only_a_visitor_id_creates_no_contact(widget, agent):
    response = widget.identify({})
    assert response.status_code == 200
    body = response.json()
    assert body["contact"] is None
    assert body["ignored_keys"] == []
    assert body["session_token"]
    assert not Contact.objects.filter(agent=agent).exists()
    assert VisitorSession.objects.get(agent=agent).visitor_id == widget.visitor_id


def test_the_anonymous_contact_of_the_session_merges_into_the_verified_one(widget, agent):
    conversation = start_conversation(widget)
    anonymous = conversation.contact
    widget.identify({}).json()  # a returning anonymous visitor still sees its contact
    body = widget.jwt(user_id="u-1", contact_attributes={"name": "Ada"}).json()
    verified = Contact.objects.get(agent=agent)
    assert body["contact"]["id"] == str(verified.pk)
    assert not Contact.objects.filter(pk=anonymous.pk).exists()
    conversation.refresh_from_db()
    assert conversation.contact_id == verified.pk
    assert verified.conversation_count == 1
    merge = AuditEvent.objects.get(contact_id=verified.pk, action="merged")
    assert merge.channel == "jwt"
    assert merge.changes["conversations_moved"] == [None, 1]


def test_the_sessions_own_self_reported_contact_merges_and_fills_blanks(widget, agent):
    widget.identify({"email": "ada@home.example", "phone": "+14155550123", "name": "Ada L"})
    start_conversation(widget)
    self_reported = Contact.objects.get(agent=agent)
    response = widget.identify(
        {
            "user_id": "u-1",
            "user_hash": user_hash(agent, "u-1"),
            "user_metadata": {"name": "Ada Lovelace", "email": "ada@work.example"},
        }
    )
    assert response.status_code == 200
    verified = Contact.objects.get(agent=agent)
    assert not Contact.objects.filter(pk=self_reported.pk).exists()
    assert (verified.name, verified.email, verified.phone) == (
        "Ada Lovelace",
        "ada@work.example",
        "+14155550123",
    )
    assert verified.identity == "verified"
    assert Conversation.objects.get().contact_id == verified.pk


def test_a_self_reported_contact_with_the_same_email_is_merged_too(widget_factory, agent):
    earlier = widget_factory()
    earlier.identify({"email": "ADA@example.com", "name": "Ada?"})
    conversation = start_conversation(earlier)
    lead = conversation.contact
    widget = widget_factory()
    widget.jwt(user_id="u-1", contact_attributes={"email": "ada@example.com"})
    verified = Contact.objects.get(agent=agent, external_id="u-1")
    assert not Contact.objects.filter(pk=lead.pk).exists()
    conversation.refresh_from_db()
    assert conversation.contact_id == verified.pk
    assert verified.name == "Ada?"  # the lead filled a blank
    # Never its visitor sessions: the lead's browser did not sign in, so it goes back to
    # being anonymous instead of following its data into the verified contact (SPEC 6).
    assert VisitorSession.objects.get(visitor_id=earlier.visitor_id).contact_id is None
    assert earlier.identify({}).json()["contact"] is None


def test_same_email_contacts_that_are_verified_or_keyed_are_never_merged(widget, agent):
    other_customer = ContactFactory(
        agent=agent, external_id="u-2", email="shared@example.com", identity=Identity.VERIFIED
    )
    keyed_lead = ContactFactory(
        agent=agent,
        external_id="crm-9",
        email="shared@example.com",
        identity=Identity.SELF_REPORTED,
    )
    widget.jwt(user_id="u-1", contact_attributes={"email": "shared@example.com"})
    assert Contact.objects.filter(pk__in=[other_customer.pk, keyed_lead.pk]).count() == 2
    assert Contact.objects.filter(agent=agent).count() == 3


def test_a_contact_the_session_only_attached_to_keeps_its_data_but_the_visitors_chat_moves(
    widget_factory, agent
):
    owner = widget_factory()
    owner.identify({"email": "sam@example.com", "name": "Sam"})
    owners_chat = start_conversation(owner)
    visitor = widget_factory()
    visitor.identify({"email": "sam@example.com"})
    visitors_chat = start_conversation(visitor)
    sam = owners_chat.contact
    assert visitors_chat.contact_id == sam.pk

    visitor.jwt(user_id="u-1", contact_attributes={"email": "kim@example.com", "name": "Kim"})
    kim = Contact.objects.get(agent=agent, external_id="u-1")
    sam.refresh_from_db()
    assert (sam.name, sam.email, sam.identity) == ("Sam", "sam@example.com", "self_reported")
    owners_chat.refresh_from_db()
    visitors_chat.refresh_from_db()
    assert owners_chat.contact_id == sam.pk
    assert visitors_chat.contact_id == kim.pk
    assert (sam.conversation_count, Contact.objects.get(pk=kim.pk).conversation_count) == (1, 1)
    moved = AuditEvent.objects.get(contact_id=kim.pk, changes__has_key="conversations_moved")
    assert moved.channel == "jwt"


def test_a_different_verified_user_on_the_same_browser_is_not_merged(widget, agent):
    widget.jwt(user_id="alice", contact_attributes={"name": "Alice"})
    alices_chat = start_conversation(widget)
    body = widget.jwt(user_id="bob", contact_attributes={"name": "Bob"}).json()
    alice = Contact.objects.get(agent=agent, external_id="alice")
    bob = Contact.objects.get(agent=agent, external_id="bob")
    assert body["contact"]["id"] == str(bob.pk)
    alices_chat.refresh_from_db()
    assert alices_chat.contact_id == alice.pk
    assert VisitorSession.objects.get(agent=agent).contact_id == bob.pk


def test_a_self_reported_visitors_anonymous_contact_is_promoted_in_place(widget, agent):
    conversation = start_conversation(widget)
    widget.identify({"email": "sam@example.com", "name": "Sam"})
    contact = Contact.objects.get(agent=agent)
    assert contact.pk == conversation.contact_id
    assert (contact.identity, contact.name) == ("self_reported", "Sam")


def test_a_visitors_own_contact_follows_it_to_an_existing_self_reported_contact(
    widget_factory, agent
):
    widget_factory().identify({"email": "sam@example.com", "name": "Sam"})
    sam = Contact.objects.get(agent=agent)
    visitor = widget_factory()
    chat = start_conversation(visitor)
    visitor.identify({"email": "sam@example.com"})
    chat.refresh_from_db()
    assert chat.contact_id == sam.pk
    assert Contact.objects.filter(agent=agent).count() == 1


def test_every_identify_marks_the_contact_seen(widget, agent):
    widget.jwt(user_id="u-1")
    contact = Contact.objects.get(agent=agent)
    first_seen = contact.first_seen_at
    assert first_seen is not None
    long_ago = first_seen - timedelta(days=30)
    Contact.objects.filter(pk=contact.pk).update(last_seen_at=long_ago)
    VisitorSession.objects.filter(agent=agent).update(last_seen_at=long_ago)
    widget.identify({})
    contact.refresh_from_db()
    assert contact.first_seen_at == first_seen  # set once
    assert contact.last_seen_at > long_ago + timedelta(days=29)
    assert VisitorSession.objects.get(agent=agent).last_seen_at > long_ago + timedelta(days=29)
