from __future__ import annotations

import json
import time
import uuid
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from django.test import Client
from django.urls import reverse

from contacts.models import Contact, Identity
from helpdesk.models import Conversation
from identity.models import VisitorSession
from identity.verification import user_hash_for
from tests.factories import ConversationFactory
from workspaces.models import Agent
from workspaces.selectors import identity_secret_current


def secret_of(agent: Agent) -> str:
    return identity_secret_current(agent=agent).secret


def make_jwt(
    agent: Agent | None = None,
    *,
    secret: str | None = None,
    algorithm: str = "HS256",
    exp_in: int | None = 300,
    **claims: Any,
) -> str:
    """A token as a customer's server would sign it (exp_in=None leaves out `exp`)."""
    payload = dict(claims)
    if exp_in is not None:
        payload.setdefault("exp", int(time.time()) + exp_in)
    key = secret if secret is not None else secret_of(agent)
    return jwt.encode(payload, key, algorithm=algorithm)


def user_hash(agent: Agent, user_id: str) -> str:
    return user_hash_for(secret=secret_of(agent), user_id=str(user_id))


def new_visitor() -> str:
    return str(uuid.uuid4())


class Widget:
    """The widget's side of the HTTP contract, as a browser would speak it."""

    def __init__(self, agent: Agent, client: Client | None = None) -> None:
        self.agent = agent
        self.client = client or Client()
        self.url = reverse("identity:identify", kwargs={"agent_public_id": agent.public_id})
        self.visitor_id = new_visitor()
        self.session_token = ""

    def identify(self, body: dict | None = None, *, keep_token: bool = True, **headers):
        payload = {"visitor_id": self.visitor_id, **(body or {})}
        if keep_token and self.session_token:
            headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {self.session_token}")
        response = self.client.post(
            self.url, json.dumps(payload), content_type="application/json", **headers
        )
        if response.status_code == 200:
            self.session_token = response.json()["session_token"]
        return response

    def jwt(self, **claims):
        return self.identify({"token": make_jwt(self.agent, **claims)})


def start_conversation(widget) -> Conversation:
    """What the help desk's widget endpoint does: an anonymous contact for a session without
    one, and a conversation attached to the session and its contact."""
    if not widget.session_token:
        widget.identify({})
    session = VisitorSession.objects.get(agent=widget.agent, visitor_id=widget.visitor_id)
    if session.contact is None:
        session.contact = Contact.objects.create(agent=widget.agent, identity=Identity.ANONYMOUS)
        session.created_contact = True
        session.save()
    conversation = ConversationFactory(
        agent=widget.agent, contact=session.contact, visitor_session=session
    )
    Contact.objects.filter(pk=session.contact_id).update(
        conversation_count=Conversation.objects.filter(contact=session.contact).count()
    )
    return conversation


@pytest.fixture
def widget(agent) -> Widget:
    return Widget(agent)


@pytest.fixture
def widget_factory(agent):
    return lambda: Widget(agent)


@pytest.fixture
def clock_moves(monkeypatch):
    """`clock_moves(delta)`: from then on, the clock that decides whether an identity
    secret is still in its grace period reads `delta` later than the real one."""
    from django.utils import timezone as real_timezone

    from workspaces import agent_cache

    def move(delta):
        monkeypatch.setattr(
            agent_cache, "timezone", SimpleNamespace(now=lambda: real_timezone.now() + delta)
        )

    return move
