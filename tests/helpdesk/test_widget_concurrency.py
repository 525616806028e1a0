"""Widget calls racing for the same visitor: one anonymous contact, every conversation counted."""

from __future__ import annotations

import pytest
from django.db import connection

from contacts.models import Contact
from helpdesk import services
from helpdesk.models import Conversation, Message
from identity.models import VisitorSession
from tests.helpers import race

pytestmark = [
    pytest.mark.usefixtures("no_widget_rate_limit"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="threads race on PostgreSQL"),
]


def test_racing_conversation_starts_share_one_anonymous_contact(agent):
    session = VisitorSession.objects.create(agent=agent, visitor_id="racer")

    race(
        lambda i: services.widget_conversation_start(
            agent=agent,
            session=VisitorSession.objects.get(pk=session.pk),
            message=f"hello {i}",
        )
    )

    contact = Contact.objects.get(agent=agent)
    assert Conversation.objects.filter(contact=contact).count() == 8
    assert contact.conversation_count == 8
    session.refresh_from_db()
    assert session.contact == contact


def test_racing_messages_all_land_and_activity_ends_at_the_last(agent):
    contact = Contact.objects.create(agent=agent, name="Racer")
    conversation = Conversation.objects.create(agent=agent, contact=contact)

    race(
        lambda i: services.message_post(
            conversation=Conversation.objects.get(pk=conversation.pk), role="visitor", body=f"m{i}"
        )
    )

    conversation.refresh_from_db()
    latest = Message.objects.filter(conversation=conversation).order_by("-created_at").first()
    assert Message.objects.filter(conversation=conversation).count() == 8
    assert conversation.last_message_at == latest.created_at
    # Written under the conversation's lock: id order is time order.
    rows = list(Message.objects.filter(conversation=conversation).values_list("id", "created_at"))
    assert sorted(rows) == sorted(rows, key=lambda r: (r[1], r[0]))
