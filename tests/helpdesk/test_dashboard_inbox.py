"""The inbox: per agent, filtered, searched, newest activity first, paged, flat in queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts.models import Identity
from contacts.services import contact_erase
from core.actors import Actor
from helpdesk.models import Conversation, Message
from tests.factories import ContactFactory, ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def _url(agent) -> str:
    return f"/a/{agent.public_id}/inbox/"


def _conversation(agent, contact, *, minutes_ago: int, status: str = "open", text: str = "Hi"):
    at = timezone.now() - timedelta(minutes=minutes_ago)
    conversation = ConversationFactory(
        agent=agent, contact=contact, status=status, subject=text, last_message_at=at
    )
    MessageFactory(conversation=conversation, body=text, created_at=at)
    return conversation


def _rows(response) -> list[str]:
    """The conversation ids of the page's rows, in order."""
    content = response.content.decode()
    marker = 'href="/a/'
    ids = []
    for chunk in content.split('<tr class="inbox-row">')[1:]:
        start = chunk.index(marker)
        ids.append(chunk[start:].split("/inbox/")[1].split("/")[0])
    return ids


def test_it_needs_a_signed_in_member(agent, other_agent, staff_client):
    anonymous = Client().get(_url(agent))
    foreign = staff_client.get(_url(other_agent))

    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/")
    assert foreign.status_code == 404


def test_it_lists_the_agents_conversations_newest_activity_first(agent, other_agent, staff_client):
    ada = ContactFactory(agent=agent, name="Ada Lovelace", email="ada@example.com")
    grace = ContactFactory(
        agent=agent, name="", email="grace@example.com", identity=Identity.SELF_REPORTED
    )
    older = _conversation(agent, ada, minutes_ago=30, text="Old question")
    newer = _conversation(agent, grace, minutes_ago=1, text="New question")
    MessageFactory(conversation=newer, role="staff", body="We are on it", created_at=timezone.now())
    _conversation(
        other_agent, ContactFactory(agent=other_agent, name="Globex Person"), minutes_ago=0
    )

    response = staff_client.get(_url(agent))

    assert response.status_code == 200
    assert _rows(response) == [str(newer.pk), str(older.pk)]
    content = response.content.decode()
    assert "Ada Lovelace" in content
    assert "grace@example.com" in content  # no name: the email stands in
    assert "Self-reported" in content
    assert "Team: We are on it" in content
    assert "Globex Person" not in content


def test_it_filters_by_status_and_searches_by_contact(agent, staff_client):
    ada = ContactFactory(agent=agent, name="Ada Lovelace", email="ada@example.com")
    bob = ContactFactory(agent=agent, name="Bob Stone", email="bob@stone.test")
    ada_open = _conversation(agent, ada, minutes_ago=5)
    ada_escalated = _conversation(agent, ada, minutes_ago=4, status="escalated")
    bob_closed = _conversation(agent, bob, minutes_ago=3, status="closed")

    escalated = staff_client.get(_url(agent), {"status": "escalated"})
    closed = staff_client.get(_url(agent), {"status": "closed"})
    by_name = staff_client.get(_url(agent), {"q": "lovelace"})
    by_email = staff_client.get(_url(agent), {"q": "STONE.TEST", "status": "all"})
    active_only = staff_client.get(_url(agent), {"q": "STONE.TEST"})
    both = staff_client.get(_url(agent), {"q": "ada", "status": "open"})
    nothing = staff_client.get(_url(agent), {"q": "nobody"})
    unknown_status = staff_client.get(_url(agent), {"status": "bogus"})

    assert _rows(escalated) == [str(ada_escalated.pk)]
    assert _rows(closed) == [str(bob_closed.pk)]
    assert _rows(by_name) == [str(ada_escalated.pk), str(ada_open.pk)]
    assert _rows(by_email) == [str(bob_closed.pk)]
    assert _rows(active_only) == []  # searches stay within the tab: closed is not in it
    assert _rows(both) == [str(ada_open.pk)]
    assert _rows(nothing) == []
    assert "No conversation matches “nobody”" in nothing.content.decode()
    assert _rows(unknown_status) == [str(ada_escalated.pk), str(ada_open.pk)]


def test_the_default_view_is_what_needs_attention(agent, staff_client):
    ada = ContactFactory(agent=agent, name="Ada Lovelace")
    open_one = _conversation(agent, ada, minutes_ago=5)
    escalated = _conversation(agent, ada, minutes_ago=4, status="escalated")
    _conversation(agent, ada, minutes_ago=3, status="closed")
    everything = _conversation(agent, ada, minutes_ago=2, status="closed")

    page = staff_client.get(_url(agent))
    assert _rows(page) == [str(escalated.pk), str(open_one.pk)]
    assert 'aria-current="page">Needs attention</a>' in page.content.decode()
    assert _rows(staff_client.get(_url(agent), {"status": "all"}))[0] == str(everything.pk)
    nothing_open = staff_client.get(_url(agent), {"status": "active", "q": ""})
    assert len(_rows(nothing_open)) == 2


def test_search_as_you_type_returns_the_list_fragment(agent, staff_client):
    ada = ContactFactory(agent=agent, name="Ada Lovelace")
    _conversation(agent, ada, minutes_ago=1)

    response = staff_client.get(
        _url(agent), {"q": "ada"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="inbox-list"
    )

    content = response.content.decode()
    assert content.lstrip().startswith('<div id="inbox-list">')
    assert "<html" not in content
    assert "Ada Lovelace" in content
    assert "HX-Request" in response["Vary"]


def test_pages_follow_each_other_without_gaps_or_repeats(agent, staff_client):
    contact = ContactFactory(agent=agent)
    now = timezone.now()
    # 120 conversations, many sharing the same activity time, to exercise the id tie-break.
    Conversation.objects.bulk_create(
        [
            Conversation(
                agent=agent, contact=contact, last_message_at=now - timedelta(minutes=i // 7)
            )
            for i in range(120)
        ]
    )
    expected = [
        str(pk)
        for pk in Conversation.objects.filter(agent=agent)
        .order_by("-last_message_at", "id")
        .values_list("pk", flat=True)
    ]

    seen, cursor, pages = [], None, []
    while True:
        response = staff_client.get(_url(agent), {"cursor": cursor} if cursor else {})
        page = _rows(response)
        pages.append(page)
        seen += page
        next_cursor = response.context["page"].next_cursor
        if not next_cursor:
            break
        cursor = next_cursor
    assert [len(p) for p in pages] == [50, 50, 20]
    assert seen == expected

    back = staff_client.get(_url(agent), {"cursor": response.context["page"].previous_cursor})
    assert _rows(back) == pages[1]


def test_a_broken_cursor_shows_the_first_page_with_a_notice(agent, staff_client):
    conversation = _conversation(agent, ContactFactory(agent=agent), minutes_ago=1)

    response = staff_client.get(_url(agent), {"cursor": "garbage!"})

    assert response.status_code == 200
    assert _rows(response) == [str(conversation.pk)]
    assert "The page link is not valid" in response.content.decode()


def test_an_erased_contact_shows_as_erased_contact(agent, staff_client, admin_user):
    contact = ContactFactory(agent=agent, name="Zora Nightingale", email="zora@example.org")
    conversation = _conversation(
        agent, contact, minutes_ago=1, text="I am Zora Nightingale, zora@example.org"
    )

    contact_erase(contact=contact, actor=Actor.staff(admin_user, is_admin=True))
    response = staff_client.get(_url(agent))

    content = response.content.decode()
    assert _rows(response) == [str(conversation.pk)]
    assert "erased contact" in content
    assert "Zora" not in content
    assert "Nightingale" not in content
    assert "zora@example.org" not in content


def test_names_are_escaped(agent, staff_client):
    contact = ContactFactory(agent=agent, name="<script>alert(1)</script>")
    _conversation(agent, contact, minutes_ago=1, text="<img src=x onerror=alert(2)>")

    content = staff_client.get(_url(agent)).content.decode()

    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "<img src=x" not in content


def _count_queries(client: Client, url: str, params: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(queries)


def test_the_query_count_stays_flat_as_conversations_grow(agent, staff_client):
    def add(n: int) -> None:
        for i in range(n):
            contact = ContactFactory(agent=agent)
            conversation = _conversation(agent, contact, minutes_ago=i)
            MessageFactory.create_batch(3, conversation=conversation, role=Message.Role.BOT)

    add(3)
    few = _count_queries(staff_client, _url(agent))
    few_searched = _count_queries(staff_client, _url(agent), {"q": "person", "status": "open"})
    add(60)
    many = _count_queries(staff_client, _url(agent))
    many_searched = _count_queries(staff_client, _url(agent), {"q": "person", "status": "open"})

    # session, user, agent access (agent, membership), navigation, the page of conversations,
    # the agent's tags for the tag picker; a search on SQLite also asks the search index
    # how many contacts match (contacts.search_index.fts_narrows).
    assert few == many == 7
    assert few_searched == many_searched == 7 + (connection.vendor == "sqlite")


def test_search_leaves_soft_deleted_contacts_out_but_the_list_keeps_them(agent, staff_client):
    gone = ContactFactory(agent=agent, name="Deleted Dora", deleted_at=timezone.now())
    conversation = _conversation(agent, gone, minutes_ago=1)

    listed = staff_client.get(_url(agent))
    searched = staff_client.get(_url(agent), {"q": "dora"})

    assert _rows(listed) == [str(conversation.pk)]
    assert _rows(searched) == []
