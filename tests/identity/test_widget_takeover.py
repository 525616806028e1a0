"""The trust rule of SPEC 6 over HTTP: a visitor session reaches a verified contact only by
presenting a valid signature itself. An attacker who types a verified person's email into
the widget must never end up holding that person's identity, whatever merges follow."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from contacts.models import Contact, Identity
from contacts.services import contact_merge, contact_update
from core.actors import Actor, Channel
from helpdesk.models import Conversation
from identity.models import VisitorSession
from tests.identity.conftest import Widget, user_hash

pytestmark = pytest.mark.django_db

VICTIM_EMAIL = "victim@example.com"


def _sign_in(widget: Widget, how: str):
    if how == "jwt":
        return widget.jwt(
            user_id="victim-1",
            contact_attributes={"name": "Vera Victim", "email": VICTIM_EMAIL},
        )
    return widget.identify(
        {
            "user_id": "victim-1",
            "user_hash": user_hash(widget.agent, "victim-1"),
            "user_metadata": {"name": "Vera Victim", "email": VICTIM_EMAIL},
        }
    )


def _widget_call(widget: Widget, method: str, path: str, body: dict | None = None):
    url = f"/widget/v1/{widget.agent.public_id}/{path}"
    headers = {"HTTP_AUTHORIZATION": f"Bearer {widget.session_token}"}
    if method == "GET":
        return widget.client.get(url, **headers)
    return widget.client.post(
        url, json.dumps(body or {}), content_type="application/json", **headers
    )


def _api_context(agent, conversation_id: str) -> dict:
    from workspaces.services import api_key_create

    key = api_key_create(agent=agent, name="bot").raw
    response = Client().get(
        f"/api/v1/conversations/{conversation_id}/context",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize("how", ["jwt", "hmac"])
def test_a_self_reported_twin_never_takes_over_a_verified_identity(agent, how):
    victim, attacker = Widget(agent), Widget(agent)
    # 1. The victim signs in on the customer's site.
    assert _sign_in(victim, how).status_code == 200
    verified = Contact.objects.get(agent=agent, external_id="victim-1")
    victim_chat = _widget_call(victim, "POST", "conversations", {"message": "my invoice"})
    assert victim_chat.status_code == 201
    victim_chat_id = victim_chat.json()["conversation"]["id"]

    # 2. The attacker, in another browser, types the victim's email into the chat.
    typed = attacker.identify({"email": VICTIM_EMAIL, "name": "Mallory"})
    assert typed.status_code == 200
    assert typed.json()["contact"]["identity"] == "self_reported"
    assert _widget_call(attacker, "POST", "conversations", {"message": "hi"}).status_code == 201

    # 3. The victim loads another page: the same-email twin is merged into the verified
    #    contact (its data and conversations: the spec's merge rule).
    assert _sign_in(victim, how).status_code == 200
    assert Contact.objects.filter(agent=agent, email=VICTIM_EMAIL).count() == 1
    assert Conversation.objects.filter(contact=verified).count() == 2
    attacker_session = VisitorSession.objects.get(agent=agent, visitor_id=attacker.visitor_id)
    assert attacker_session.contact_id is None  # detached, back to anonymous
    victim_session = VisitorSession.objects.get(agent=agent, visitor_id=victim.visitor_id)
    assert (victim_session.contact_id, victim_session.signed) == (verified.pk, True)

    # 4. Nothing the attacker's session token can do reaches the victim.
    again = attacker.identify({})
    assert again.status_code == 200
    assert again.json()["contact"] is None
    handoff = _widget_call(attacker, "GET", "identity-token")
    assert handoff.status_code == 403
    assert handoff.json()["error"]["code"] == "not_verified"
    read = _widget_call(attacker, "GET", f"conversations/{victim_chat_id}/messages")
    assert read.status_code == 404
    assert "my invoice" not in read.content.decode()
    started = _widget_call(attacker, "POST", "conversations", {"message": "who am I?"})
    assert started.status_code == 201
    new_chat = Conversation.objects.get(pk=started.json()["conversation"]["id"])
    assert new_chat.contact_id != verified.pk
    assert new_chat.contact.identity == Identity.ANONYMOUS
    context = _api_context(agent, str(new_chat.pk))
    assert context["verified"] is False
    assert VICTIM_EMAIL not in json.dumps(context)

    # The victim keeps everything.
    own = _widget_call(victim, "GET", f"conversations/{victim_chat_id}/messages")
    assert own.status_code == 200
    assert _widget_call(victim, "GET", "identity-token").status_code == 200


def test_the_attack_fails_even_when_the_attacker_identified_before_the_victim(agent):
    attacker, victim = Widget(agent), Widget(agent)
    attacker.identify({"email": VICTIM_EMAIL})
    _sign_in(victim, "jwt")
    verified = Contact.objects.get(agent=agent)
    assert verified.identity == Identity.VERIFIED
    assert attacker.identify({}).json()["contact"] is None
    assert _widget_call(attacker, "GET", "identity-token").status_code == 403


@pytest.mark.parametrize("who", ["staff", "api"])
def test_a_dashboard_or_api_merge_never_hands_a_session_a_verified_contact(agent, admin_user, who):
    actor = (
        Actor.staff(admin_user, is_admin=True)
        if who == "staff"
        else Actor(channel=Channel.API, label="API key test")
    )
    victim, attacker = Widget(agent), Widget(agent)
    _sign_in(victim, "jwt")
    verified = Contact.objects.get(agent=agent, external_id="victim-1")
    attacker.identify({"email": "other@example.com"})
    typed = Contact.objects.get(agent=agent, email="other@example.com")
    # Whichever way round staff merge them, the attacker's session is let go.
    contact_merge(primary=typed, secondary=verified, actor=actor)
    survivor = Contact.objects.get(agent=agent)
    assert survivor.identity == Identity.VERIFIED
    assert VisitorSession.objects.get(visitor_id=attacker.visitor_id).contact_id is None
    assert VisitorSession.objects.get(visitor_id=victim.visitor_id).contact_id == survivor.pk
    assert attacker.identify({}).json()["contact"] is None
    assert _widget_call(victim, "GET", "identity-token").status_code == 200


def test_a_contact_made_verified_by_an_import_or_edit_does_not_carry_its_sessions(
    agent, admin_user
):
    attacker = Widget(agent)
    attacker.identify({"email": "someone@example.com", "name": "Someone"})
    contact = Contact.objects.get(agent=agent)
    contact_update(
        contact=contact,
        actor=Actor.importer("import test"),
        data={"name": "Someone Real"},
        identity=Identity.VERIFIED,
    )
    assert Contact.objects.get(pk=contact.pk).identity == Identity.VERIFIED
    assert attacker.identify({}).json()["contact"] is None
    assert _widget_call(attacker, "GET", "identity-token").status_code == 403
    started = _widget_call(attacker, "POST", "conversations", {"message": "hello"})
    assert Conversation.objects.get(pk=started.json()["conversation"]["id"]).contact_id != (
        contact.pk
    )
