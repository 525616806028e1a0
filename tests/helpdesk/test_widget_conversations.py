"""Widget conversation endpoints: they act for the session's contact and nobody else's."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from contacts.models import AuditEvent, Contact, Identity
from helpdesk.models import Conversation, Message
from identity.models import VisitorSession
from identity.sessions import session_token_issue
from tests.factories import ContactFactory, ConversationFactory, MessageFactory
from tests.identity.conftest import Widget

pytestmark = pytest.mark.django_db


def _start(client: Client, agent, token: str | None, body: dict | str | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, str) else json.dumps(body or {})
    return client.post(
        f"/widget/v1/{agent.public_id}/conversations",
        data=data,
        content_type="application/json",
        **headers,
    )


def _messages_url(agent, conversation_id) -> str:
    return f"/widget/v1/{agent.public_id}/conversations/{conversation_id}/messages"


def _post_message(client: Client, agent, conversation_id, token: str, body):
    return client.post(
        _messages_url(agent, conversation_id),
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_a_conversation_attaches_to_the_sessions_contact(
    agent, verified_contact, visitor_token, widget_client
):
    token = visitor_token(verified_contact)

    response = _start(widget_client, agent, token, {"message": "  My invoice is wrong  "})

    assert response.status_code == 201
    payload = response.json()
    assert set(payload) == {"conversation"}
    assert payload["conversation"]["status"] == "open"
    conversation = Conversation.objects.get(pk=payload["conversation"]["id"])
    assert conversation.agent == agent
    assert conversation.contact == verified_contact
    assert conversation.subject == "My invoice is wrong"
    assert list(conversation.messages.values_list("role", "body")) == [
        ("visitor", "My invoice is wrong")
    ]
    verified_contact.refresh_from_db()
    assert verified_contact.conversation_count == 1
    assert verified_contact.last_seen_at is not None
    assert verified_contact.last_seen_at >= conversation.created_at
    assert verified_contact.identity == Identity.VERIFIED
    assert response["Access-Control-Allow-Origin"] == "*"


def test_a_session_without_a_contact_gets_one_anonymous_contact(agent, visitor_token):
    token = visitor_token(None)
    client = Client()

    first = _start(client, agent, token)
    second = _start(client, agent, token, {"message": "Hello?"})

    assert first.status_code == second.status_code == 201
    session = VisitorSession.objects.get(agent=agent)
    contact = session.contact
    assert contact is not None
    assert session.created_contact is True
    assert contact.identity == Identity.ANONYMOUS
    assert (contact.name, contact.email, contact.phone) == ("", "", "")
    assert Contact.objects.filter(agent=agent).count() == 1
    assert set(Conversation.objects.values_list("contact_id", flat=True)) == {contact.pk}
    contact.refresh_from_db()
    assert contact.conversation_count == 2
    assert contact.first_seen_at is not None
    created = AuditEvent.objects.get(contact_id=contact.pk)
    assert (created.action, created.channel) == ("created", "widget")


def test_a_conversation_without_a_message_has_no_messages(agent, verified_contact, visitor_token):
    response = _start(Client(), agent, visitor_token(verified_contact), {"message": "   "})

    assert response.status_code == 201
    conversation = Conversation.objects.get()
    assert conversation.messages.count() == 0
    assert conversation.subject == ""


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Send the session token from identify as Authorization: Bearer <session_token>."),
        ("Bearer forged", "The session token is not valid."),
        (
            "Token abc",
            "Send the session token from identify as Authorization: Bearer <session_token>.",
        ),
    ],
)
def test_starting_without_a_valid_session_is_refused(agent, authorization, message):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = Client().post(
        f"/widget/v1/{agent.public_id}/conversations",
        data="{}",
        content_type="application/json",
        **extra,
    )

    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "invalid_session", "message": message, "fields": {}}
    }
    assert response["Access-Control-Allow-Origin"] == "*"
    assert not Conversation.objects.exists()
    assert not Contact.objects.exists()


def test_a_token_of_another_agent_is_refused(agent, other_agent, visitor_token):
    token = visitor_token(None, for_agent=other_agent)

    response = _start(Client(), agent, token)

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The session token belongs to another agent."
    assert not Conversation.objects.exists()


def test_an_unknown_agent_is_404(agent, visitor_token):
    response = Client().post(
        "/widget/v1/ag_doesnotexist/conversations",
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {visitor_token(None)}",
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_bad_bodies_are_clear_errors_and_write_nothing(agent, verified_contact, visitor_token):
    token = visitor_token(verified_contact)

    not_json = _start(Client(), agent, token, "{nope")
    not_text = _start(Client(), agent, token, {"message": 42})
    too_long = _start(Client(), agent, token, {"message": "x" * 10_001})

    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == "invalid_json"
    assert not_text.status_code == 400
    assert not_text.json()["error"]["fields"] == {"message": ["The message must be a string."]}
    assert too_long.status_code == 400
    assert "the limit is 10000" in too_long.json()["error"]["fields"]["message"][0]
    assert not Conversation.objects.exists()
    verified_contact.refresh_from_db()
    assert verified_contact.conversation_count == 0


def test_wrong_methods_and_preflight(agent, visitor_token):
    url = f"/widget/v1/{agent.public_id}/conversations"

    get = Client().get(url, HTTP_AUTHORIZATION=f"Bearer {visitor_token(None)}")
    preflight = Client().options(url)
    put = Client().put(
        _messages_url(agent, "00000000-0000-0000-0000-000000000000"),
        HTTP_AUTHORIZATION=f"Bearer {visitor_token(None)}",
    )

    assert put.status_code == 405
    assert put["Allow"] == "GET, POST, OPTIONS"
    assert get.status_code == 405
    assert get.json()["error"]["code"] == "method_not_allowed"
    assert preflight.status_code == 204
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]
    assert not Conversation.objects.exists()


def test_the_visitor_reads_and_writes_messages_of_their_conversation(
    agent, verified_contact, visitor_token
):
    token = visitor_token(verified_contact)
    client = Client()
    conversation_id = _start(client, agent, token, {"message": "Hi"}).json()["conversation"]["id"]
    conversation = Conversation.objects.get(pk=conversation_id)
    MessageFactory(conversation=conversation, role="bot", body="Hello Ada, how can I help?")

    posted = _post_message(client, agent, conversation_id, token, {"body": "Refund please"})
    listed = client.get(_messages_url(agent, conversation_id), HTTP_AUTHORIZATION=f"Bearer {token}")

    assert posted.status_code == 201
    message = posted.json()["message"]
    assert set(message) == {"id", "role", "body", "created_at"}
    assert (message["role"], message["body"]) == ("visitor", "Refund please")
    assert listed.status_code == 200
    assert [(m["role"], m["body"]) for m in listed.json()["messages"]] == [
        ("visitor", "Hi"),
        ("bot", "Hello Ada, how can I help?"),
        ("visitor", "Refund please"),
    ]
    first_id = listed.json()["messages"][0]["id"]
    after = client.get(
        _messages_url(agent, conversation_id),
        {"after": first_id},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert [m["body"] for m in after.json()["messages"]] == [
        "Hello Ada, how can I help?",
        "Refund please",
    ]
    conversation.refresh_from_db()
    assert conversation.last_message_at >= conversation.created_at


def test_a_visitor_message_reopens_a_closed_conversation(agent, verified_contact, visitor_token):
    token = visitor_token(verified_contact)
    conversation = ConversationFactory(agent=agent, contact=verified_contact, status="closed")

    response = _post_message(Client(), agent, conversation.pk, token, {"body": "One more thing"})

    assert response.status_code == 201
    conversation.refresh_from_db()
    assert conversation.status == "open"


def test_a_session_cannot_touch_another_contacts_conversation(
    agent, verified_contact, visitor_token
):
    someone_else = ContactFactory(agent=agent, name="Mallory")
    theirs = ConversationFactory(agent=agent, contact=someone_else)
    MessageFactory(conversation=theirs, body="my secret order number 12345")
    token = visitor_token(verified_contact)
    client = Client()

    read = client.get(_messages_url(agent, theirs.pk), HTTP_AUTHORIZATION=f"Bearer {token}")
    write = _post_message(client, agent, theirs.pk, token, {"body": "I am Mallory now"})
    anonymous_read = client.get(
        _messages_url(agent, theirs.pk), HTTP_AUTHORIZATION=f"Bearer {visitor_token(None)}"
    )

    for response in (read, write, anonymous_read):
        assert response.status_code == 404
        assert response.json() == {
            "error": {"code": "not_found", "message": "No such conversation.", "fields": {}}
        }
        assert b"12345" not in response.content
    assert theirs.messages.count() == 1


def test_another_agents_conversation_is_404(agent, other_agent, visitor_token):
    foreign_contact = ContactFactory(agent=other_agent)
    foreign = ConversationFactory(agent=other_agent, contact=foreign_contact)
    session = VisitorSession.objects.create(
        agent=other_agent, visitor_id="v-foreign", contact=foreign_contact
    )
    foreign_token = session_token_issue(session=session, agent=other_agent)

    # The other agent's own token, presented at this agent's endpoint: refused.
    wrong_agent = Client().get(
        _messages_url(agent, foreign.pk), HTTP_AUTHORIZATION=f"Bearer {foreign_token}"
    )
    # This agent's token, asking for the other agent's conversation: not found.
    not_found = Client().get(
        _messages_url(agent, foreign.pk), HTTP_AUTHORIZATION=f"Bearer {visitor_token(None)}"
    )

    assert wrong_agent.status_code == 401
    assert not_found.status_code == 404


def test_malformed_ids_and_after_values_are_clear_errors(agent, verified_contact, visitor_token):
    token = visitor_token(verified_contact)
    conversation = ConversationFactory(agent=agent, contact=verified_contact)
    client = Client()

    malformed = client.get(_messages_url(agent, "not-a-uuid"), HTTP_AUTHORIZATION=f"Bearer {token}")
    bad_after = client.get(
        _messages_url(agent, conversation.pk),
        {"after": "abc"},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert malformed.status_code == 404
    assert malformed.json()["error"]["code"] == "not_found"
    assert bad_after.status_code == 400
    assert bad_after.json()["error"]["fields"] == {
        "after": ["Give the id of the last message you have, a whole number."]
    }


@pytest.mark.parametrize(
    ("body", "field_error"),
    [
        ({}, "Write the message in the body field."),
        ({"body": "   "}, "The message is empty."),
        ({"body": ["list"]}, "The message must be a string."),
        ({"body": "a\x00b"}, "The message may not contain NUL characters."),
    ],
)
def test_bad_messages_are_refused_and_change_nothing(
    agent, verified_contact, visitor_token, body, field_error
):
    token = visitor_token(verified_contact)
    conversation = ConversationFactory(agent=agent, contact=verified_contact, status="closed")
    before = conversation.last_message_at

    response = _post_message(Client(), agent, conversation.pk, token, body)

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"body": [field_error]}
    conversation.refresh_from_db()
    assert conversation.messages.count() == 0
    assert conversation.last_message_at == before
    assert conversation.status == "closed"


def test_after_signing_in_the_session_keeps_its_conversations(agent):
    """Identify folds an anonymous visitor into the verified contact: the conversations move
    with it and the session that signed in still reaches them."""
    widget = Widget(agent)
    widget.identify({})
    client = Client()
    token = widget.session_token
    conversation_id = _start(client, agent, token, {"message": "Hi"}).json()["conversation"]["id"]
    anonymous = Conversation.objects.get(pk=conversation_id).contact
    verified = ContactFactory(agent=agent, name="Grace Hopper", external_id="u-7")

    assert widget.jwt(user_id="u-7").status_code == 200

    conversation = Conversation.objects.get(pk=conversation_id)
    assert conversation.contact == verified
    verified.refresh_from_db()
    assert verified.conversation_count == 1
    assert not Contact.objects.filter(pk=anonymous.pk).exists()
    response = _post_message(client, agent, conversation_id, widget.session_token, {"body": "Me"})
    assert response.status_code == 201
    assert Message.objects.filter(conversation=conversation).count() == 2


def test_a_merge_alone_lets_an_unsigned_session_go(agent, visitor_token):
    """A merge by anyone else moves the conversations into the verified contact, but the
    session that never signed in no longer reaches them (the trust rule)."""
    from contacts.services import contact_merge
    from core.actors import Actor

    token = visitor_token(None)
    client = Client()
    conversation_id = _start(client, agent, token, {"message": "Hi"}).json()["conversation"]["id"]
    anonymous = Conversation.objects.get(pk=conversation_id).contact
    verified = ContactFactory(agent=agent, name="Grace Hopper", external_id="u-7")

    contact_merge(primary=verified, secondary=anonymous, actor=Actor.jwt())

    assert Conversation.objects.get(pk=conversation_id).contact == verified
    response = _post_message(client, agent, conversation_id, token, {"body": "Still me?"})
    assert response.status_code == 404
