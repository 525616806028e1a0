"""The help-center hop: GET …/identity-token, then identify with `identity_token`."""

from __future__ import annotations

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from contacts.models import Contact
from helpdesk.models import Conversation
from identity.models import HandoffTokenUse, VisitorSession
from identity.verification import HANDOFF_SALT
from tests.identity.conftest import Widget, start_conversation

pytestmark = pytest.mark.django_db


def _token_url(agent) -> str:
    return reverse("identity:identity_token", kwargs={"agent_public_id": agent.public_id})


def _get_token(agent, session_token: str):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {session_token}"} if session_token else {}
    return Client().get(_token_url(agent), **headers)


def test_a_verified_visitor_carries_its_identity_to_the_help_center(agent):
    shop = Widget(agent)
    shop.jwt(user_id="u-1", contact_attributes={"name": "Ada"})
    verified = Contact.objects.get(agent=agent)
    response = _get_token(agent, shop.session_token)
    assert response.status_code == 200
    body = response.json()
    assert body["param"] == "rapport_identity"
    assert body["expires_in"] == 120
    assert response["Access-Control-Allow-Origin"] == "*"

    help_center = Widget(agent)  # another site: another browser storage, another visitor id
    chat = start_conversation(help_center)
    restored = help_center.identify({"identity_token": body["token"]})
    assert restored.status_code == 200
    assert restored.json()["contact"] == {
        "id": str(verified.pk),
        "name": "Ada",
        "identity": "verified",
    }
    session = VisitorSession.objects.get(visitor_id=help_center.visitor_id)
    assert session.contact_id == verified.pk
    # What the visitor did anonymously on the help center joins the verified contact.
    assert Conversation.objects.get(pk=chat.pk).contact_id == verified.pk
    assert Contact.objects.filter(agent=agent).count() == 1


def test_a_hand_off_token_works_once(agent):
    shop = Widget(agent)
    shop.jwt(user_id="u-1")
    token = _get_token(agent, shop.session_token).json()["token"]
    assert Widget(agent).identify({"identity_token": token}).status_code == 200
    replay = Widget(agent)
    response = replay.identify({"identity_token": token})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "identity_token_used"
    assert not VisitorSession.objects.filter(visitor_id=replay.visitor_id).exists()


def test_used_token_records_are_pruned_once_they_expire(agent):
    HandoffTokenUse.objects.create(agent=agent, jti="old", expires_at=timezone.now())
    shop = Widget(agent)
    shop.jwt(user_id="u-1")
    token = _get_token(agent, shop.session_token).json()["token"]
    Widget(agent).identify({"identity_token": token})
    assert not HandoffTokenUse.objects.filter(jti="old").exists()


def test_an_expired_hand_off_token_is_refused(agent, settings):
    shop = Widget(agent)
    shop.jwt(user_id="u-1")
    token = _get_token(agent, shop.session_token).json()["token"]
    settings.IDENTITY_HANDOFF_MAX_AGE_SECONDS = -1
    response = Widget(agent).identify({"identity_token": token})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "identity_token_expired"


def test_a_forged_or_foreign_hand_off_token_is_refused(agent, other_agent):
    shop = Widget(agent)
    shop.jwt(user_id="u-1")
    contact = Contact.objects.get(agent=agent)
    forged = signing.dumps({"a": agent.public_id, "c": str(contact.pk), "j": "x"}, salt="other")
    foreign = signing.dumps(
        {"a": other_agent.public_id, "c": str(contact.pk), "j": "y"}, salt=HANDOFF_SALT
    )
    for token, code in (
        (forged, "invalid_identity_token"),
        (foreign, "invalid_identity_token"),
        ("", "invalid_identity_token"),
        ("x" * 600, "invalid_identity_token"),
    ):
        response = Widget(agent).identify({"identity_token": token})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == code


def test_the_token_of_a_contact_deleted_since_is_refused(agent):
    shop = Widget(agent)
    shop.jwt(user_id="u-1")
    token = _get_token(agent, shop.session_token).json()["token"]
    Contact.objects.filter(agent=agent).update(deleted_at=timezone.now())
    response = Widget(agent).identify({"identity_token": token})
    assert response.json()["error"]["code"] == "invalid_identity_token"


def test_only_a_verified_session_gets_a_hand_off_token(agent, other_agent):
    assert _get_token(agent, "").status_code == 401
    assert _get_token(agent, "").json()["error"]["code"] == "invalid_session"
    assert _get_token(agent, "garbage").json()["error"]["code"] == "invalid_session"
    anonymous = Widget(agent)
    anonymous.identify({})
    assert _get_token(agent, anonymous.session_token).status_code == 403
    lead = Widget(agent)
    lead.identify({"email": "lead@example.com"})
    response = _get_token(agent, lead.session_token)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_verified"
    foreign = Widget(other_agent)
    foreign.jwt(user_id="u-1")
    assert _get_token(agent, foreign.session_token).status_code == 401


def test_the_token_endpoint_answers_preflights_and_refuses_post(agent):
    preflight = Client().options(_token_url(agent), HTTP_ORIGIN="https://help.example")
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert Client().post(_token_url(agent)).status_code == 405
