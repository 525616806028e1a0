"""A signed-token identify's `user_metadata` is session context for the bot: kept on the
visitor session, read by GET /api/v1/conversations/{id}/context marked unverified, never
written to the contact."""

from __future__ import annotations

import pytest
from django.test import Client

from attributes.models import AttributeDefinition
from contacts.models import Contact
from contacts.selectors import contact_export_data
from identity.models import VisitorSession
from identity.payload import MAX_SESSION_CONTEXT_BYTES
from tests.identity.conftest import Widget, make_jwt, start_conversation, user_hash

pytestmark = pytest.mark.django_db

CART = {"page": "/checkout", "cart": {"items": 3, "total": 129.5}, "coupons": ["WINTER"]}


def _context(api, conversation) -> dict:
    response = api.get(f"/api/v1/conversations/{conversation.pk}/context")
    assert response.status_code == 200
    return response.json()


def _session(widget) -> VisitorSession:
    return VisitorSession.objects.get(agent=widget.agent, visitor_id=widget.visitor_id)


def test_the_bot_sees_the_user_metadata_of_the_session_as_unverified_data(api, agent, widget):
    response = widget.identify(
        {"token": widget_token(widget, user_id="u-1", name="Ada"), "user_metadata": CART}
    )
    assert response.json()["session_context"] == CART  # the browser gets it back, as before
    conversation = start_conversation(widget)

    body = _context(api, conversation)

    assert body["verified"] is True
    assert body["contact"]["external_id"] == "u-1"
    context = body["session_context"]
    assert context["data"] == CART
    assert context["verified"] is False
    assert context["source"] == "user_metadata"
    assert context["updated_at"]
    # Never the contact's: no attribute, no field, no new attribute definition.
    contact = Contact.objects.get(agent=agent, external_id="u-1")
    assert contact.attributes == {}
    assert not AttributeDefinition.objects.filter(agent=agent).exists()
    assert "session_context" not in body["contact"]


def test_each_signed_identify_replaces_it_and_one_without_metadata_clears_it(api, widget):
    token = widget_token(widget, user_id="u-1")
    widget.identify({"token": token, "user_metadata": {"page": "/pricing"}})
    conversation = start_conversation(widget)
    widget.identify({"token": token, "user_metadata": {"page": "/checkout"}})
    assert _context(api, conversation)["session_context"]["data"] == {"page": "/checkout"}

    widget.identify({"token": token})
    assert _context(api, conversation)["session_context"] is None
    assert _session(widget).context is None


def test_it_stays_through_unsigned_calls_of_the_same_signed_in_browser(api, widget):
    widget.identify({"token": widget_token(widget, user_id="u-1"), "user_metadata": CART})
    conversation = start_conversation(widget)
    widget.identify({})  # a page load: the session token proves the browser
    widget.identify({"email": "ada@example.com"})  # unsigned data never changes it
    assert _context(api, conversation)["session_context"]["data"] == CART


def test_a_visitor_id_without_its_session_token_loses_it_with_the_contact(api, agent, widget):
    widget.identify({"token": widget_token(widget, user_id="u-1"), "user_metadata": CART})
    conversation = start_conversation(widget)
    stranger = Widget(agent)
    stranger.visitor_id = widget.visitor_id  # knows the visitor id, not the session token
    stranger.identify({})
    assert _session(widget).context is None
    assert _context(api, conversation)["session_context"] is None


def test_signing_in_as_someone_else_does_not_show_their_context_in_this_conversation(api, widget):
    widget.identify({"token": widget_token(widget, user_id="u-1"), "user_metadata": CART})
    conversation = start_conversation(widget)
    widget.identify(
        {"token": widget_token(widget, user_id="u-2"), "user_metadata": {"page": "/u2"}}
    )
    body = _context(api, conversation)
    assert body["contact"]["external_id"] == "u-1"
    assert body["session_context"] is None


def test_hmac_user_metadata_is_contact_data_not_session_context(api, agent, widget):
    widget.identify(
        {
            "user_id": "u-1",
            "user_hash": user_hash(agent, "u-1"),
            "user_metadata": {"name": "Ada", "plan": "pro"},
        }
    )
    conversation = start_conversation(widget)
    body = _context(api, conversation)
    assert body["contact"]["name"] == "Ada"
    assert body["contact"]["attributes"] == {"plan": "pro"}
    assert body["session_context"] is None


def test_an_oversized_context_is_not_kept_and_says_why(api, widget):
    big = {"notes": "x" * MAX_SESSION_CONTEXT_BYTES}
    response = widget.identify({"token": widget_token(widget, user_id="u-1"), "user_metadata": big})
    assert response.status_code == 200
    body = response.json()
    assert body["contact"]["identity"] == "verified"
    [entry] = [e for e in body["ignored_keys"] if e["key"] == "user_metadata"]
    assert entry["code"] == "too_large"
    assert "16 KB" in entry["reason"]
    assert _context(api, start_conversation(widget))["session_context"] is None


def test_another_agents_key_does_not_read_it(other_api, widget):
    widget.identify({"token": widget_token(widget, user_id="u-1"), "user_metadata": CART})
    conversation = start_conversation(widget)
    response = other_api.get(f"/api/v1/conversations/{conversation.pk}/context")
    assert response.status_code == 404
    assert "checkout" not in response.content.decode()


def test_the_persons_data_download_includes_it(agent, widget):
    widget.identify({"token": widget_token(widget, user_id="u-1"), "user_metadata": CART})
    contact = Contact.objects.get(agent=agent, external_id="u-1")
    export = contact_export_data(contact=contact)
    [session] = export["visitor_sessions"]
    assert session["session_context"] == CART


def test_the_schema_documents_it_as_unverified(db):
    schema = Client().get("/api/v1/schema/?format=json").json()
    props = schema["components"]["schemas"]["ConversationContext"]["properties"]
    assert "session_context" in props
    context = schema["components"]["schemas"]["SessionContext"]["properties"]
    assert set(context) == {"data", "verified", "source", "updated_at"}


def widget_token(widget, **claims) -> str:
    return make_jwt(widget.agent, **claims)
