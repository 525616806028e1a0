from __future__ import annotations

import pytest
from django.test import Client

from contacts.models import Identity
from identity.models import VisitorSession
from identity.sessions import session_token_issue
from tests.factories import ContactFactory
from workspaces.services import api_key_create


@pytest.fixture
def verified_contact(agent):
    return ContactFactory(
        agent=agent,
        name="Ada Lovelace",
        email="ada@example.com",
        phone="+14155550100",
        external_id="user-42",
        company="Analytical Engines",
    )


@pytest.fixture
def self_reported_contact(agent):
    return ContactFactory(
        agent=agent,
        name="Sam Typed",
        email="sam.typed@example.com",
        identity=Identity.SELF_REPORTED,
        identity_source="widget",
    )


@pytest.fixture
def visitor_token(agent):
    """`visitor_token(contact=None)`: a widget session token (with a contact or without).

    A session holding a verified contact is one that signed in itself (the trust rule)."""
    counter = {"n": 0}

    def make(contact=None, *, for_agent=None) -> str:
        counter["n"] += 1
        target = for_agent or agent
        session = VisitorSession.objects.create(
            agent=target,
            visitor_id=f"visitor-{counter['n']}",
            contact=contact,
            signed=contact is not None and contact.identity == Identity.VERIFIED,
        )
        return session_token_issue(session=session, agent=target)

    return make


@pytest.fixture
def widget_client() -> Client:
    return Client()


@pytest.fixture
def api_key(agent):
    return api_key_create(agent=agent, name="bot")


@pytest.fixture
def api_client(api_key) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_key.raw}")
