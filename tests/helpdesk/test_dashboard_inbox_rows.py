"""What an inbox row leads with: the subject, else the first message, else that there is
no message yet."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.utils import timezone

from tests.factories import ContactFactory, ConversationFactory, MessageFactory
from tests.helpers import agent_url

pytestmark = pytest.mark.django_db


def _row(html: str, contact_name: str) -> dict[str, list[str]]:
    """The row of `contact_name`'s conversation: its main text and the line under it."""
    for chunk in html.split('<tr class="inbox-row">')[1:]:
        chunk = chunk.split("</tr>")[0]
        if f">{contact_name}</a>" in chunk:
            preview = chunk[chunk.index('class="inbox-preview"') :]
            return {
                "main": [
                    unescape(t) for t in re.findall(r'class="inbox-subject[^"]*">([^<]*)<', preview)
                ],
                "sub": [unescape(t) for t in re.findall(r'class="cell-sub">([^<]*)<', preview)],
            }
    raise AssertionError(f"no inbox row for {contact_name}")


def test_a_row_without_a_subject_leads_with_its_first_message(staff_client, agent):
    now = timezone.now()
    untitled = ConversationFactory(
        agent=agent, contact=ContactFactory(agent=agent, name="Una Titled"), subject=""
    )
    MessageFactory(conversation=untitled, body="Hello there", created_at=now)
    titled = ConversationFactory(
        agent=agent,
        contact=ContactFactory(agent=agent, name="Tia Titled"),
        subject="Where is my order",
    )
    MessageFactory(conversation=titled, body="Where is my order", created_at=now - timedelta(1))
    MessageFactory(conversation=titled, role="staff", body="It ships tomorrow", created_at=now)

    response = staff_client.get(agent_url("helpdesk:inbox", agent))
    html = response.content.decode()

    assert response.status_code == 200
    assert "(no message yet)" not in html
    assert _row(html, "Una Titled") == {"main": ["Hello there"], "sub": []}
    # With a subject, the subject leads and the latest message follows.
    assert _row(html, "Tia Titled") == {
        "main": ["Where is my order"],
        "sub": ["Team: It ships tomorrow"],
    }


def test_a_conversation_without_messages_says_there_is_none_yet(staff_client, agent):
    ConversationFactory(
        agent=agent, contact=ContactFactory(agent=agent, name="Silent Sam"), subject=""
    )

    html = staff_client.get(agent_url("helpdesk:inbox", agent)).content.decode()

    assert _row(html, "Silent Sam") == {"main": ["No message yet"], "sub": []}
    assert "(no message yet)" not in html
