"""Conversation API for the bot: context, render, messages, status; scoped to the key's agent."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from contacts.models import Identity
from helpdesk.models import Conversation, Message
from tests.factories import (
    AttributeFactory,
    ContactFactory,
    ConversationFactory,
    StripeAccountFactory,
    TagFactory,
)

pytestmark = pytest.mark.django_db


def _post(client: Client, url: str, body) -> object:
    return client.post(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def attributes(agent):
    AttributeFactory(agent=agent, key="plan", type="select", options=["free", "pro"])
    AttributeFactory(agent=agent, key="api_token_hint", secure=True)
    AttributeFactory(agent=agent, key="old_score", type="number", archived=True)


def test_context_of_a_verified_contact_has_its_fields_and_live_attributes(
    agent, api_client, verified_contact, attributes
):
    verified_contact.attributes = {"plan": "pro", "api_token_hint": "…9f", "old_score": 7}
    verified_contact.save()
    verified_contact.contact_tags.create(tag=TagFactory(agent=agent, name="VIP"))
    StripeAccountFactory(contact=verified_contact, stripe_id="cus_ADA", label="Main")
    conversation = ConversationFactory(agent=agent, contact=verified_contact, status="escalated")

    response = api_client.get(f"/api/v1/conversations/{conversation.pk}/context")

    assert response.status_code == 200
    body = response.json()
    assert body["conversation"] == {"id": str(conversation.pk), "status": "escalated"}
    assert body["verified"] is True
    contact = body["contact"]
    assert contact["id"] == str(verified_contact.pk)
    assert (contact["name"], contact["email"], contact["phone"], contact["external_id"]) == (
        "Ada Lovelace",
        "ada@example.com",
        "+14155550100",
        "user-42",
    )
    assert contact["identity"] == "verified"
    assert contact["attributes"] == {"plan": "pro", "api_token_hint": "…9f"}
    assert contact["tags"] == ["VIP"]
    assert contact["stripe_accounts"] == [
        {"label": "Main", "stripe_id": "cus_ADA", "stripe_email": ""}
    ]


@pytest.mark.parametrize("identity", [Identity.SELF_REPORTED, Identity.ANONYMOUS])
def test_context_of_an_unverified_contact_reveals_nothing(agent, api_client, identity):
    contact = ContactFactory(
        agent=agent,
        name="Claimed Name",
        email="claimed@example.com",
        phone="+14155550199",
        identity=identity,
        attributes={"plan": "pro"},
    )
    conversation = ConversationFactory(agent=agent, contact=contact)

    response = api_client.get(f"/api/v1/conversations/{conversation.pk}/context")

    assert response.status_code == 200
    assert response.json() == {
        "conversation": {"id": str(conversation.pk), "status": "open"},
        "verified": False,
        "contact": None,
        "session_context": None,
    }
    for secret in (str(contact.pk), "Claimed", "claimed@example.com", "4155550199", "pro"):
        assert secret.encode() not in response.content


def test_context_without_a_contact_or_with_a_deleted_one_is_anonymous(
    agent, api_client, verified_contact
):
    no_contact = ConversationFactory(agent=agent)
    verified_contact.deleted_at = timezone.now()
    verified_contact.save()
    deleted = ConversationFactory(agent=agent, contact=verified_contact)

    for conversation in (no_contact, deleted):
        body = api_client.get(f"/api/v1/conversations/{conversation.pk}/context").json()
        assert body["verified"] is False
        assert body["contact"] is None


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "context", None),
        ("post", "render", {"template": "{{contact.email}}"}),
        ("post", "messages", {"body": "Hi"}),
        ("post", "status", {"status": "closed"}),
    ],
)
def test_another_agents_conversation_is_404_in_the_error_shape(
    other_agent, api_client, method, suffix, body
):
    foreign_contact = ContactFactory(agent=other_agent, email="foreign@example.com")
    foreign = ConversationFactory(agent=other_agent, contact=foreign_contact)
    url = f"/api/v1/conversations/{foreign.pk}/{suffix}"

    response = api_client.get(url) if method == "get" else _post(api_client, url, body)
    malformed = api_client.get("/api/v1/conversations/not-a-uuid/context")

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "No such conversation.", "fields": {}}
    }
    assert b"foreign@example.com" not in response.content
    assert malformed.status_code == 404
    assert malformed.json()["error"]["code"] == "not_found"
    foreign.refresh_from_db()
    assert foreign.status == "open"
    assert foreign.messages.count() == 0


def test_every_endpoint_needs_a_key_and_the_right_method(agent, api_client):
    conversation = ConversationFactory(agent=agent)
    base = f"/api/v1/conversations/{conversation.pk}"

    no_key = Client().get(f"{base}/context")
    wrong_method = api_client.post(f"{base}/context")
    get_render = api_client.get(f"{base}/render")
    get_messages = api_client.get(f"{base}/messages")
    get_status = api_client.get(f"{base}/status")

    assert no_key.status_code == 401
    assert no_key.json()["error"]["code"] == "unauthorized"
    for response in (wrong_method, get_render, get_messages, get_status):
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"


def test_render_fills_the_template_for_a_verified_contact(
    agent, api_client, verified_contact, attributes
):
    verified_contact.attributes = {"plan": "pro"}
    verified_contact.save()
    conversation = ConversationFactory(agent=agent, contact=verified_contact)

    response = _post(
        api_client,
        f"/api/v1/conversations/{conversation.pk}/render",
        {"template": "{{contact.email}} {{contact.attr.plan}} {{contact.attr.old_score}}?"},
    )

    assert response.status_code == 200
    assert response.json() == {
        "rendered": "ada@example.com pro ?",
        "verified": True,
        "unknown_keys": ["contact.attr.old_score"],
        "missing_keys": [],
    }


def test_render_for_an_unverified_contact_fills_nothing(agent, api_client, self_reported_contact):
    conversation = ConversationFactory(agent=agent, contact=self_reported_contact)

    response = _post(
        api_client,
        f"/api/v1/conversations/{conversation.pk}/render",
        {"template": "Orders of {{contact.email}} ({{contact.name}})", "escape": "url"},
    )

    assert response.status_code == 200
    body = response.json()
    assert body["rendered"] == "Orders of  ()"
    assert body["verified"] is False
    assert body["missing_keys"] == ["contact.email", "contact.name"]
    assert b"sam.typed" not in response.content


def test_render_escapes_values_on_request(agent, api_client, verified_contact):
    verified_contact.email = "ada+billing@example.com"
    verified_contact.save()
    conversation = ConversationFactory(agent=agent, contact=verified_contact)

    response = _post(
        api_client,
        f"/api/v1/conversations/{conversation.pk}/render",
        {"template": "/orders?email={{contact.email}}", "escape": "url"},
    )

    assert response.json()["rendered"] == "/orders?email=ada%2Bbilling%40example.com"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "template"),
        ({"template": 5, "escape": "sql"}, "escape"),
        ({"template": "x" * 20_001}, "template"),
        ({"template": None}, "template"),
    ],
)
def test_render_refuses_bad_input_with_field_errors(agent, api_client, body, field):
    conversation = ConversationFactory(agent=agent)

    response = _post(api_client, f"/api/v1/conversations/{conversation.pk}/render", body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["fields"]


def test_the_bot_posts_a_reply(agent, api_client, verified_contact):
    seen = verified_contact.last_seen_at
    conversation = ConversationFactory(agent=agent, contact=verified_contact)
    before = conversation.last_message_at

    response = _post(
        api_client,
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"body": "Your plan renews on 31 January."},
    )

    assert response.status_code == 201
    body = response.json()
    message = Message.objects.get(pk=body["id"])
    assert (message.role, message.body, message.author) == (
        "bot",
        "Your plan renews on 31 January.",
        None,
    )
    assert body["role"] == "bot"
    assert body["created_at"]
    conversation.refresh_from_db()
    assert conversation.last_message_at >= before
    verified_contact.refresh_from_db()
    assert verified_contact.last_seen_at == seen  # the bot talking is not the visitor seen


@pytest.mark.parametrize("body", [{}, {"body": ""}, {"body": "   "}, {"body": "x" * 10_001}])
def test_bad_bot_messages_write_nothing(agent, api_client, body):
    conversation = ConversationFactory(agent=agent)

    response = _post(api_client, f"/api/v1/conversations/{conversation.pk}/messages", body)

    assert response.status_code == 400
    assert "body" in response.json()["error"]["fields"]
    assert not Message.objects.exists()


def test_the_bot_escalates_and_bad_statuses_are_refused(agent, api_client):
    conversation = ConversationFactory(agent=agent)
    url = f"/api/v1/conversations/{conversation.pk}/status"

    escalated = _post(api_client, url, {"status": "escalated"})
    bad = _post(api_client, url, {"status": "snoozed"})

    assert escalated.status_code == 200
    assert escalated.json() == {"id": str(conversation.pk), "status": "escalated"}
    assert bad.status_code == 400
    assert bad.json()["error"]["fields"] == {"status": ['"snoozed" is not a valid choice.']}
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ESCALATED


def test_the_schema_describes_the_conversation_endpoints(db):
    schema = Client().get("/api/v1/schema/?format=json").json()
    render = schema["paths"]["/api/v1/conversations/{conversation_id}/render"]["post"]
    context = schema["paths"]["/api/v1/conversations/{conversation_id}/context"]["get"]

    assert render["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TemplateRenderRequest"
    }
    assert {"200", "400", "401", "404"} <= set(render["responses"])
    assert context["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ConversationContext"
    }
    contact = schema["components"]["schemas"]["ConversationContext"]["properties"]["contact"]
    assert contact.get("nullable") is True or "oneOf" in contact or "allOf" in contact
    assert "/api/v1/conversations/{conversation_id}/messages" in schema["paths"]
