"""Demo data follows the trust rule: the bot only knows who it talks to, and so only uses a
name or a plan, when the visitor is verified."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from contacts.models import Identity
from demo.data import FIRST_NAMES
from helpdesk.models import Message
from workspaces.models import Agent

pytestmark = pytest.mark.django_db

ANY_FIRST_NAME = re.compile(r"\b(" + "|".join(map(re.escape, FIRST_NAMES)) + r")\b")


def _demo_messages(contacts: int, role: str) -> list[Message]:
    """Seed a demo agent of `contacts` and return its messages written by `role`."""
    call_command(
        "seed_demo",
        workspace="Demo",
        agent="Support",
        contacts=contacts,
        seed=7,
        stdout=io.StringIO(),
    )
    agent = Agent.objects.get(name="Support")
    return list(
        Message.objects.filter(conversation__agent=agent, role=role).select_related(
            "conversation__contact"
        )
    )


def test_the_demo_bot_personalizes_only_for_verified_visitors():
    bot_messages = _demo_messages(60, Message.Role.BOT)
    unverified = [m for m in bot_messages if m.conversation.contact.identity != Identity.VERIFIED]
    verified = [m for m in bot_messages if m.conversation.contact.identity == Identity.VERIFIED]
    assert unverified, "the seed gives no conversation of an unverified contact to check"
    for message in unverified:
        contact = message.conversation.contact
        # An anonymous contact has no name stored, yet the generator picked one for it.
        assert not ANY_FIRST_NAME.search(message.body), (contact.identity, message.body)
        assert "plan" not in message.body.lower(), (contact.identity, message.body)
    # Not vacuous: to verified visitors the bot does use their name.
    assert any(
        re.search(rf"\b{re.escape(m.conversation.contact.name.split()[0])}\b", m.body)
        for m in verified
    )


def test_demo_staff_greet_by_name_only_contacts_that_have_one():
    staff_messages = _demo_messages(2000, Message.Role.STAFF)
    unnamed = [m for m in staff_messages if not m.conversation.contact.name]
    named = [m for m in staff_messages if m.conversation.contact.name]
    assert unnamed, "the seed gives no staff reply to a contact without a name"
    for message in unnamed:
        assert not ANY_FIRST_NAME.search(message.body), message.body
    # Not vacuous: contacts with a stored name are greeted by it.
    assert any(
        re.search(rf"\b{re.escape(m.conversation.contact.name.split()[0])}\b", m.body)
        for m in named
    )
