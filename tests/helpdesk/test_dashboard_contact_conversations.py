"""A contact's conversation history: the contact page's panel and its own URL, newest or
oldest first, keyset pages both ways, the whole count in the heading, workspace checked."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from contacts.models import Contact
from helpdesk import selectors
from helpdesk.models import Conversation
from tests.factories import ContactFactory, ConversationFactory
from tests.helpers import HX, contact_url

pytestmark = pytest.mark.django_db


def _history_url(contact, agent=None) -> str:
    agent = agent or contact.agent
    return reverse(
        "helpdesk:contact_conversations",
        kwargs={"agent_public_id": agent.public_id, "contact_id": contact.pk},
    )


def _subjects(response) -> list[str]:
    panel = response.content.decode().split('id="contact-conversations"')[1]
    return [
        unescape(s)
        for s in re.findall(r'<li>\s*<a href="/a/[^"]+/inbox/[^"]+/">([^<]*)</a>', panel)
    ]


def _link(response, rel: str) -> str | None:
    found = re.search(rf'rel="{rel}" href="([^"]+)"', response.content.decode())
    return unescape(found[1]) if found else None


def _history(contact, n: int, *, ties: int = 1) -> list[str]:
    """`n` conversations, `ties` sharing each activity time; subjects newest first."""
    now = timezone.now()
    Conversation.objects.bulk_create(
        [
            Conversation(
                agent=contact.agent,
                contact=contact,
                subject=f"Question {i:02d}",
                last_message_at=now - timedelta(hours=n - i // ties),
            )
            for i in range(n)
        ]
    )
    Contact.objects.filter(pk=contact.pk).update(conversation_count=n)
    return list(
        Conversation.objects.filter(contact=contact)
        .order_by("-last_message_at", "-id")
        .values_list("subject", flat=True)
    )


def _walk(client: Client, url: str, rel: str = "next") -> list[list[str]]:
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        pages.append(_subjects(response))
        url = _link(response, rel)
    return pages


def test_the_contact_page_shows_the_newest_page_and_the_whole_count(staff_client, contact):
    newest_first = _history(contact, 23)
    ConversationFactory(agent=contact.agent, contact=ContactFactory(agent=contact.agent))

    response = staff_client.get(contact_url("detail", contact))

    html = response.content.decode()
    assert _subjects(response) == newest_first[:20]
    # The heading counts the contact's conversations, not the rows on the page.
    assert re.search(r"<h2>Conversations <span[^>]*>23</span></h2>", html)
    older = _link(response, "next")
    assert older.startswith(_history_url(contact) + "?cursor=")
    assert f'hx-get="{older.replace("&", "&amp;")}"' in html
    assert 'rel="prev"' not in html
    assert 'aria-current="true">Newest first</a>' in html


def test_the_history_pages_newest_first_without_gaps_or_repeats(staff_client, contact):
    newest_first = _history(contact, 47, ties=4)  # ties on the time: the id decides

    pages = _walk(staff_client, _history_url(contact))

    assert [len(p) for p in pages] == [20, 20, 7]
    assert [s for page in pages for s in page] == newest_first
    # And back again from the last page.
    last = staff_client.get(_history_url(contact))
    for _ in range(2):
        last = staff_client.get(_link(last, "next"))
    assert _walk(staff_client, _link(last, "prev"), "prev") == [pages[1], pages[0]]


def test_the_history_pages_oldest_first(staff_client, contact):
    oldest_first = list(reversed(_history(contact, 45, ties=3)))

    first = staff_client.get(_history_url(contact), {"ordering": "last_message_at"})
    pages = _walk(staff_client, _history_url(contact) + "?ordering=last_message_at")

    assert _subjects(first) == oldest_first[:20]
    assert [s for page in pages for s in page] == oldest_first
    html = first.content.decode()
    assert 'aria-current="true">Oldest first</a>' in html
    assert "Newer →" in html
    second = staff_client.get(_link(first, "next"))
    assert "ordering=last_message_at" in _link(first, "next")
    assert _subjects(staff_client.get(_link(second, "prev"))) == oldest_first[:20]
    assert "← Older" in second.content.decode()


def test_htmx_gets_the_panel_alone_and_only_its_own_page_moves_the_address(staff_client, contact):
    _history(contact, 3)
    headers = {**HX, "HTTP_HX_TARGET": "contact-conversations"}

    from_contact_page = staff_client.get(
        _history_url(contact),
        {"ordering": "last_message_at"},
        HTTP_HX_CURRENT_URL="http://testserver" + contact_url("detail", contact),
        **headers,
    )
    on_its_own_page = staff_client.get(
        _history_url(contact),
        HTTP_HX_CURRENT_URL="http://testserver" + _history_url(contact),
        **headers,
    )

    html = from_contact_page.content.decode()
    assert html.lstrip().startswith('<section id="contact-conversations"')
    assert "<html" not in html
    assert _subjects(from_contact_page) == ["Question 00", "Question 01", "Question 02"]
    assert "hx-push-url" not in html
    assert 'hx-push-url="true"' in on_its_own_page.content.decode()
    assert "HX-Request" in from_contact_page["Vary"]


def test_without_javascript_the_history_is_a_page_of_its_own(staff_client, contact):
    _history(contact, 2)

    response = staff_client.get(_history_url(contact))

    html = response.content.decode()
    assert "<html" in html
    assert f'<a href="{contact_url("detail", contact)}">← {contact.display_name}</a>' in html
    assert _subjects(response) == ["Question 01", "Question 00"]


def test_another_workspaces_contact_is_not_found(staff_client, agent, other_agent):
    foreign = ContactFactory(agent=other_agent)
    ConversationFactory(agent=other_agent, contact=foreign, subject="Globex secret")

    through_own_agent = staff_client.get(_history_url(foreign, agent))
    through_their_agent = staff_client.get(_history_url(foreign))

    assert through_own_agent.status_code == 404
    assert through_their_agent.status_code == 404
    assert "Globex secret" not in through_own_agent.content.decode()


def test_it_needs_a_signed_in_member_and_only_reads(contact, staff_client):
    anonymous = Client().get(_history_url(contact))

    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/")
    assert staff_client.post(_history_url(contact)).status_code == 405


def test_a_bad_cursor_shows_the_first_page_with_a_notice(staff_client, contact):
    newest_first = _history(contact, 25)
    newest_cursor = _link(staff_client.get(_history_url(contact)), "next").split("cursor=")[1]

    garbage = staff_client.get(_history_url(contact), {"cursor": "garbage!"})
    other_order = staff_client.get(
        _history_url(contact), {"cursor": newest_cursor, "ordering": "last_message_at"}
    )
    bogus_order = staff_client.get(_history_url(contact), {"ordering": "subject"})

    assert garbage.status_code == other_order.status_code == 200
    assert _subjects(garbage) == newest_first[:20]
    assert "The page link is not valid; showing the first page." in garbage.content.decode()
    assert _subjects(other_order) == list(reversed(newest_first))[:20]
    assert "The page link is not valid" in other_order.content.decode()
    assert _subjects(bogus_order) == newest_first[:20]  # an unknown order: the default


def test_subjects_are_escaped(staff_client, contact):
    ConversationFactory(agent=contact.agent, contact=contact, subject="<script>alert(1)</script>")

    html = staff_client.get(_history_url(contact)).content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_no_conversations_yet(staff_client, contact):
    html = staff_client.get(contact_url("detail", contact)).content.decode()

    assert "No conversations yet." in html
    assert "Oldest first" not in html


def test_the_query_count_is_pinned_and_flat_as_the_history_grows(
    staff_client, contact, django_assert_num_queries
):
    _history(contact, 3)
    url = _history_url(contact)
    # session, user, agent access (agent, membership), navigation, the contact, the page.
    with django_assert_num_queries(7):
        staff_client.get(url)
    more = ContactFactory(agent=contact.agent)
    _history(more, 60)
    with django_assert_num_queries(7):
        staff_client.get(_history_url(more))
    cursor_page = _link(staff_client.get(_history_url(more)), "next")
    with django_assert_num_queries(7):
        staff_client.get(cursor_page)
    with django_assert_num_queries(7):
        staff_client.get(cursor_page, HTTP_HX_TARGET="contact-conversations", **HX)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans")
def test_history_pages_read_the_contact_activity_index_both_ways(contact):
    _history(contact, 9, ties=3)
    with connection.cursor() as c:
        c.execute("SET LOCAL enable_seqscan = off")
        c.execute("SET LOCAL enable_sort = off")
    with CaptureQueriesContext(connection) as ran:
        for ordering in selectors.CONTACT_CONVERSATION_ORDERINGS:
            page = selectors.contact_conversation_history(
                contact=contact, ordering=ordering, size=2
            )
            page = selectors.contact_conversation_history(
                contact=contact, ordering=ordering, cursor=page.next_cursor, size=2
            )
            selectors.contact_conversation_history(
                contact=contact, ordering=ordering, cursor=page.previous_cursor, size=2
            )
    assert len(ran.captured_queries) == 6
    for query in ran.captured_queries:
        with connection.cursor() as c:
            c.execute(f"EXPLAIN {query['sql']}")
            plan = "\n".join(row[0] for row in c.fetchall())
        assert "conv_contact_activity_id" in plan, plan
        assert "Sort" not in plan.replace("Sort Key", ""), plan
