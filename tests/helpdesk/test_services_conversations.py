"""Conversation and message services: activity, counts, status, and what never changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from contacts.models import AuditEvent
from contacts.services import contact_erase
from core.actors import Actor
from core.errors import ValidationFailed
from helpdesk import services
from helpdesk.models import Conversation, Message
from identity.models import VisitorSession
from tests.factories import ContactFactory, ConversationFactory

pytestmark = pytest.mark.django_db


def test_starting_a_conversation_counts_it_and_marks_the_visitor_seen(agent, verified_contact):
    conversation = services.conversation_start(
        agent=agent, contact=verified_contact, first_message="Where is my order #123?"
    )

    verified_contact.refresh_from_db()
    assert verified_contact.conversation_count == 1
    assert verified_contact.last_seen_at == conversation.created_at
    assert verified_contact.first_seen_at == conversation.created_at
    assert conversation.subject == "Where is my order #123?"
    assert conversation.last_message_at == conversation.created_at
    assert list(conversation.messages.values_list("role", "body")) == [
        ("visitor", "Where is my order #123?")
    ]
    # Activity is not a change somebody made to the contact: no audit noise.
    assert not AuditEvent.objects.filter(contact_id=verified_contact.pk).exists()


def test_a_long_first_message_makes_a_short_subject(agent, verified_contact):
    text = "word " * 100
    conversation = services.conversation_start(
        agent=agent, contact=verified_contact, first_message=text
    )

    assert len(conversation.subject) == services.SUBJECT_LENGTH
    assert conversation.subject.endswith("…")
    assert conversation.messages.get().body == text.strip()


def test_a_contact_of_another_agent_cannot_start_a_conversation_here(agent, other_agent):
    stranger = ContactFactory(agent=other_agent)

    with pytest.raises(ValueError, match="another agent"):
        services.conversation_start(agent=agent, contact=stranger)
    assert not Conversation.objects.exists()


def test_messages_move_activity_forward_and_only_visitors_are_seen(
    agent, verified_contact, staff_user
):
    past = timezone.now() - timedelta(days=3)
    conversation = ConversationFactory(
        agent=agent, contact=verified_contact, created_at=past, last_message_at=past
    )
    verified_contact.last_seen_at = past
    verified_contact.save()

    staff = services.staff_reply(conversation=conversation, user=staff_user, body=" Hello! ")
    bot = services.bot_reply(conversation=conversation, body="Anything else?")
    verified_contact.refresh_from_db()
    assert verified_contact.last_seen_at == past
    visitor = services.message_post(conversation=conversation, role="visitor", body="Yes")

    assert (staff.role, staff.body, staff.author) == ("staff", "Hello!", staff_user)
    assert (bot.role, bot.author) == ("bot", None)
    conversation.refresh_from_db()
    assert conversation.last_message_at == visitor.created_at
    verified_contact.refresh_from_db()
    assert verified_contact.last_seen_at == visitor.created_at
    assert conversation.subject == "Yes"  # the first visitor words name an empty conversation


def test_a_visitor_or_staff_reopens_a_closed_conversation_and_the_bot_does_not(
    agent, verified_contact, staff_user
):
    conversation = ConversationFactory(agent=agent, contact=verified_contact, status="closed")

    services.bot_reply(conversation=conversation, body="Bye")
    conversation.refresh_from_db()
    assert conversation.status == "closed"

    services.message_post(conversation=conversation, role="visitor", body="Wait!")
    conversation.refresh_from_db()
    assert conversation.status == "open"

    services.conversation_set_status(conversation=conversation, status="closed")
    services.staff_reply(conversation=conversation, user=staff_user, body="One more thing")
    conversation.refresh_from_db()
    assert conversation.status == "open"  # a reply starts the conversation again


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("", "The message is empty."),
        (" \n\t ", "The message is empty."),
        (None, "The message must be a string."),
        ("x" * 10_001, "The message is 10001 characters long; the limit is 10000."),
        ("nul\x00byte", "The message may not contain NUL characters."),
    ],
)
def test_bad_messages_are_refused_and_change_nothing(agent, verified_contact, body, error):
    conversation = ConversationFactory(agent=agent, contact=verified_contact, status="closed")
    before = (conversation.last_message_at, conversation.updated_at)

    with pytest.raises(ValidationFailed) as caught:
        services.message_post(conversation=conversation, role="visitor", body=body)

    assert caught.value.fields == {"body": [error]}
    conversation.refresh_from_db()
    assert (conversation.last_message_at, conversation.updated_at) == before
    assert conversation.status == "closed"
    assert not Message.objects.exists()
    verified_contact.refresh_from_db()
    assert verified_contact.last_seen_at is None


def test_status_changes_and_unknown_statuses(agent):
    conversation = ConversationFactory(agent=agent)

    services.conversation_set_status(conversation=conversation, status="escalated")
    with pytest.raises(ValidationFailed) as caught:
        services.conversation_set_status(conversation=conversation, status="snoozed")

    conversation.refresh_from_db()
    assert conversation.status == "escalated"
    assert caught.value.fields == {"status": ["'snoozed' is not one of open, escalated, closed."]}


def test_a_session_keeps_the_contact_it_already_has(agent, verified_contact):
    session = VisitorSession.objects.create(agent=agent, visitor_id="v1", contact=verified_contact)

    contact = services.visitor_session_contact(session=session)

    assert contact == verified_contact
    session.refresh_from_db()
    assert session.created_contact is False


def test_erasure_anonymizes_transcripts_and_detaches_them(agent, admin_user, staff_user):
    contact = ContactFactory(
        agent=agent, name="Zelda Quartermain", email="zelda.q@example.org", phone="+14155557777"
    )
    session = VisitorSession.objects.create(agent=agent, visitor_id="vz", contact=contact)
    conversation = services.widget_conversation_start(
        agent=agent, session=session, message="Hi, Zelda Quartermain here, zelda.q@example.org"
    )
    services.bot_reply(conversation=conversation, body="Thanks Zelda! We'll call +1 415-555-7777.")
    services.staff_reply(conversation=conversation, user=staff_user, body="Hello Quartermain")

    contact_erase(contact=contact, actor=Actor.staff(admin_user, is_admin=True))

    conversation.refresh_from_db()
    assert conversation.contact is None
    assert conversation.contact_erased is True
    bodies = " ".join(conversation.messages.values_list("body", flat=True))
    for pii in ("Zelda", "Quartermain", "zelda.q@example.org", "415-555-7777", "4155557777"):
        assert pii.lower() not in bodies.lower()
        assert pii.lower() not in conversation.subject.lower()
    assert "[erased name]" in bodies
    assert "[erased email]" in bodies
    assert "[erased phone]" in bodies
