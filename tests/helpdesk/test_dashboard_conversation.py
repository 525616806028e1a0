"""The conversation page: transcript, contact sidebar, staff replies and status changes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from contacts.models import Identity
from contacts.services import contact_erase
from core.actors import Actor
from helpdesk.models import Message
from tests.factories import (
    AttributeFactory,
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    StripeAccountFactory,
    TagFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _url(agent, conversation, suffix: str = "") -> str:
    return f"/a/{agent.public_id}/inbox/{conversation.pk}/{suffix}"


@pytest.fixture
def rich_contact(agent, verified_contact):
    AttributeFactory(agent=agent, key="plan", label="Plan", type="select", options=["free", "pro"])
    AttributeFactory(agent=agent, key="vip", label="VIP", type="boolean")
    AttributeFactory(agent=agent, key="renewal", label="Renews at", type="datetime")
    AttributeFactory(agent=agent, key="api_hint", label="API hint", secure=True)
    AttributeFactory(agent=agent, key="old_score", label="Old score", archived=True)
    verified_contact.attributes = {
        "plan": "pro",
        "vip": True,
        "renewal": "2026-03-01T09:30:00Z",
        "api_hint": "…9f",
        "old_score": 77,
    }
    verified_contact.save()
    verified_contact.contact_tags.create(tag=TagFactory(agent=agent, name="Enterprise"))
    StripeAccountFactory(
        contact=verified_contact, label="Billing", stripe_id="cus_ADA1", stripe_email="bill@ae.test"
    )
    return verified_contact


def test_the_page_shows_the_transcript_and_the_right_contact(agent, staff_client, rich_contact):
    conversation = ConversationFactory(agent=agent, contact=rich_contact, subject="Invoice")
    MessageFactory(conversation=conversation, role="visitor", body="My invoice\nis wrong")
    MessageFactory(conversation=conversation, role="bot", body="Let me check.")
    other = ConversationFactory(agent=agent, contact=rich_contact, subject="Earlier chat")
    ConversationFactory(agent=agent, contact=ContactFactory(agent=agent), subject="Not theirs")
    rich_contact.conversation_count = 2
    rich_contact.save()

    response = staff_client.get(_url(agent, conversation))

    assert response.status_code == 200
    content = response.content.decode()
    assert "My invoice\nis wrong" in content
    assert "Support (bot)" in content
    assert 'id="identity-badge">Verified' in content
    for text in (
        "Ada Lovelace",
        "ada@example.com",
        "+1 415-555-0100",  # formatted as everywhere else
        "user-42",
        "Analytical Engines",
    ):
        assert text in content
    sidebar = response.context["sidebar"]
    assert [(a.label, a.value, a.secure) for a in sidebar.attributes] == [
        ("Plan", "pro", False),
        ("VIP", "Yes", False),
        ("Renews at", "2026-03-01 09:30:00 UTC", False),
        ("API hint", "…9f", True),
    ]
    assert "Old score" not in content  # archived attributes stay hidden
    assert "Enterprise" in content
    assert "cus_ADA1" in content
    assert "bill@ae.test" in content
    assert [c.pk for c in sidebar.other_conversations] == [other.pk]
    assert "Earlier chat" in content
    assert "Not theirs" not in content


@pytest.mark.parametrize(
    ("identity", "note"),
    [
        (Identity.SELF_REPORTED, "Self-reported: the visitor typed these details"),
        (Identity.ANONYMOUS, "Anonymous visitor: they have not told us who they are."),
    ],
)
def test_unverified_contacts_are_clearly_marked(agent, staff_client, identity, note):
    contact = ContactFactory(agent=agent, name="Typed Name", identity=identity)
    conversation = ConversationFactory(agent=agent, contact=contact)

    content = staff_client.get(_url(agent, conversation)).content.decode()

    assert note in content
    assert f'id="identity-badge">{contact.get_identity_display()}<' in content
    assert 'id="identity-badge">Verified<' not in content


def test_the_sidebar_links_to_the_contact_page(agent, staff_client, verified_contact):
    conversation = ConversationFactory(agent=agent, contact=verified_contact)
    contact_url = f"/a/{agent.public_id}/contacts/{verified_contact.pk}/"

    page = staff_client.get(_url(agent, conversation)).content.decode()

    assert f'<a href="{contact_url}">Open contact page →</a>' in page


def test_another_workspaces_conversation_is_404(agent, other_agent, staff_client):
    foreign = ConversationFactory(agent=other_agent, contact=ContactFactory(agent=other_agent))
    MessageFactory(conversation=foreign, body="secret")

    under_my_agent = staff_client.get(_url(agent, foreign))
    under_theirs = staff_client.get(_url(other_agent, foreign))

    assert under_my_agent.status_code == 404
    assert under_theirs.status_code == 404
    assert b"secret" not in under_my_agent.content


def test_an_erased_conversation_shows_erased_contact_and_no_pii(agent, staff_client, admin_user):
    contact = ContactFactory(agent=agent, name="Odile Brandt", email="odile@brandt.test")
    conversation = ConversationFactory(agent=agent, contact=contact, subject="Odile's refund")
    MessageFactory(conversation=conversation, body="Odile Brandt here, odile@brandt.test")

    contact_erase(contact=contact, actor=Actor.staff(admin_user, is_admin=True))
    content = staff_client.get(_url(agent, conversation)).content.decode()

    assert "erased contact" in content
    for pii in ("Odile", "Brandt", "odile@brandt.test"):
        assert pii not in content


def test_the_transcript_polls_as_a_fragment(agent, staff_client, verified_contact):
    conversation = ConversationFactory(agent=agent, contact=verified_contact)
    MessageFactory(conversation=conversation, body="new message")

    response = staff_client.get(
        _url(agent, conversation), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="transcript"
    )

    content = response.content.decode()
    assert content.lstrip().startswith('<div id="transcript"')
    assert "new message" in content
    assert "contact-sidebar" not in content


def test_long_transcripts_page_back(agent, staff_client, verified_contact):
    conversation = ConversationFactory(agent=agent, contact=verified_contact)
    Message.objects.bulk_create(
        [Message(conversation=conversation, role="visitor", body=f"m{i}") for i in range(205)]
    )

    latest = staff_client.get(_url(agent, conversation))
    transcript = latest.context["transcript"]
    earlier = staff_client.get(_url(agent, conversation), {"before": transcript.earlier_before})

    bodies = [m.body for m in transcript.messages]
    assert (len(bodies), bodies[0], bodies[-1]) == (200, "m5", "m204")
    assert [m.body for m in earlier.context["transcript"].messages] == [f"m{i}" for i in range(5)]
    assert earlier.context["transcript"].earlier_before is None


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_the_query_count_stays_flat_as_messages_and_conversations_grow(
    agent, staff_client, staff_user, rich_contact
):
    conversation = ConversationFactory(agent=agent, contact=rich_contact)
    MessageFactory(conversation=conversation, role="staff", author=staff_user, body="hi")
    ConversationFactory(agent=agent, contact=rich_contact)
    few = _queries(staff_client, _url(agent, conversation))

    author = UserFactory()
    for i in range(40):
        MessageFactory(
            conversation=conversation,
            role=("visitor", "bot", "staff")[i % 3],
            author=author if i % 3 == 2 else None,
            body=f"message {i}",
        )
        ConversationFactory(agent=agent, contact=rich_contact)
        AttributeFactory(agent=agent, key=f"extra_{i}")
        rich_contact.attributes[f"extra_{i}"] = f"value {i}"
        rich_contact.contact_tags.create(tag=TagFactory(agent=agent))
        StripeAccountFactory(contact=rich_contact)
    rich_contact.save()
    many = _queries(staff_client, _url(agent, conversation))

    # session, user, agent access (2), navigation, conversation + contact, messages + authors,
    # attribute definitions, tags, Stripe accounts, other conversations.
    assert few == many == 11


# --- Replies -------------------------------------------------------------------------------


def test_staff_replies_and_is_sent_back_to_the_page(
    agent, staff_client, staff_user, verified_contact
):
    conversation = ConversationFactory(agent=agent, contact=verified_contact)
    before = conversation.last_message_at

    response = staff_client.post(_url(agent, conversation, "reply/"), {"body": "  On it!  "})

    assert response.status_code == 302
    assert response["Location"] == _url(agent, conversation)
    message = conversation.messages.get()
    assert (message.role, message.body, message.author) == ("staff", "On it!", staff_user)
    conversation.refresh_from_db()
    assert conversation.last_message_at >= before
    page = staff_client.get(response["Location"]).content.decode()
    assert "On it!" in page
    assert "Reply sent." in page


def test_admins_reply_too_and_htmx_gets_the_fragment(agent, admin_client, verified_contact):
    conversation = ConversationFactory(agent=agent, contact=verified_contact)

    response = admin_client.post(
        _url(agent, conversation, "reply/"), {"body": "Hello from admin"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    content = response.content.decode()
    assert content.lstrip().startswith('<section id="conversation-main"')
    assert "Hello from admin" in content
    assert conversation.messages.get().role == "staff"


def test_an_empty_reply_is_an_inline_error_and_writes_nothing(
    agent, staff_client, verified_contact
):
    conversation = ConversationFactory(agent=agent, contact=verified_contact)

    plain = staff_client.post(_url(agent, conversation, "reply/"), {"body": "   "})
    htmx = staff_client.post(
        _url(agent, conversation, "reply/"), {"body": ""}, HTTP_HX_REQUEST="true"
    )

    assert plain.status_code == 400
    assert "The message is empty." in plain.content.decode()
    assert htmx.status_code == 200  # htmx swaps only 2xx answers; the error is in the fragment
    assert "The message is empty." in htmx.content.decode()
    assert not Message.objects.exists()


@pytest.mark.parametrize("suffix", ["reply/", "status/"])
def test_writes_refuse_get_strangers_and_other_workspaces(
    agent, other_agent, staff_client, suffix, verified_contact
):
    mine = ConversationFactory(agent=agent, contact=verified_contact)
    foreign = ConversationFactory(agent=other_agent)
    data = {"body": "x", "status": "closed"}

    wrong_method = staff_client.get(_url(agent, mine, suffix))
    anonymous = Client().post(_url(agent, mine, suffix), data)
    outsider = Client()
    outsider.force_login(UserFactory(username="outsider@nowhere.test"))
    stranger = outsider.post(_url(agent, mine, suffix), data)
    cross = staff_client.post(_url(agent, foreign, suffix), data)
    cross_agent = staff_client.post(_url(other_agent, foreign, suffix), data)

    assert wrong_method.status_code == 405
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/")
    assert stranger.status_code == 404
    assert cross.status_code == 404
    assert cross_agent.status_code == 404
    assert not Message.objects.exists()
    for conversation in (mine, foreign):
        conversation.refresh_from_db()
        assert conversation.status == "open"


@pytest.mark.parametrize("suffix", ["reply/", "status/"])
def test_writes_need_the_csrf_token(agent, staff_user, suffix, verified_contact):
    conversation = ConversationFactory(agent=agent, contact=verified_contact)
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)

    response = client.post(_url(agent, conversation, suffix), {"body": "x", "status": "closed"})

    assert response.status_code == 403
    assert not Message.objects.exists()
    conversation.refresh_from_db()
    assert conversation.status == "open"


# --- Status --------------------------------------------------------------------------------


def test_staff_escalate_close_and_reopen(agent, staff_client, verified_contact):
    conversation = ConversationFactory(agent=agent, contact=verified_contact)
    url = _url(agent, conversation, "status/")

    escalated = staff_client.post(url, {"status": "escalated"})
    conversation.refresh_from_db()
    assert escalated.status_code == 302
    assert conversation.status == "escalated"

    closed = staff_client.post(url, {"status": "closed"}, HTTP_HX_REQUEST="true")
    conversation.refresh_from_db()
    assert conversation.status == "closed"
    assert 'id="conversation-status">Closed<' in closed.content.decode()
    assert ">Reopen<" in closed.content.decode()

    staff_client.post(url, {"status": "open"})
    conversation.refresh_from_db()
    assert conversation.status == "open"


def test_an_unknown_status_is_refused(agent, staff_client, verified_contact):
    conversation = ConversationFactory(agent=agent, contact=verified_contact)
    updated = conversation.updated_at

    response = staff_client.post(_url(agent, conversation, "status/"), {"status": "snoozed"})

    assert response.status_code == 400
    assert "&#x27;snoozed&#x27; is not one of open, escalated, closed." in response.content.decode()
    conversation.refresh_from_db()
    assert (conversation.status, conversation.updated_at) == ("open", updated)


def test_the_inbox_appears_in_the_navigation(agent, staff_client):
    response = staff_client.get(f"/a/{agent.public_id}/inbox/")

    assert f'href="/a/{agent.public_id}/inbox/" aria-current="page">Inbox<' in (
        response.content.decode()
    )


def test_a_soft_deleted_contact_is_shown_as_deleted(agent, staff_client, verified_contact):
    verified_contact.deleted_at = verified_contact.created_at
    verified_contact.save()
    conversation = ConversationFactory(agent=agent, contact=verified_contact)

    content = staff_client.get(_url(agent, conversation)).content.decode()

    assert "Ada Lovelace" in content
    assert '<span class="badge badge-deleted">Deleted</span>' in content


def test_a_staff_reply_to_a_closed_conversation_reopens_it(agent, staff_client, verified_contact):
    conversation = ConversationFactory(agent=agent, contact=verified_contact, status="closed")
    response = staff_client.post(_url(agent, conversation, "reply/"), {"body": "One more thing"})
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.status == "open"
    assert conversation.messages.get().body == "One more thing"
    page = staff_client.get(response["Location"]).content.decode()
    assert 'id="conversation-status">Open<' in page


def test_the_sidebar_formats_the_phone_as_the_table_does(agent, staff_client, verified_contact):
    verified_contact.phone = "+12125550199"
    verified_contact.save()
    conversation = ConversationFactory(agent=agent, contact=verified_contact)
    page = staff_client.get(_url(agent, conversation)).content.decode()
    assert "<dt>Phone</dt><dd>+1 212-555-0199</dd>" in page
    assert "+12125550199" not in page
