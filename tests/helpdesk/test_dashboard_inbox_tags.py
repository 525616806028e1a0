"""The inbox narrowed by the contact's tags: any of the chosen tags, in the URL, combined with
status and search, kept across pages, other workspaces' tags ignored, flat in queries."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.utils import timezone

from helpdesk.models import Conversation
from tests.factories import ContactFactory, ConversationFactory, MessageFactory, TagFactory
from tests.helpers import HX

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
    return [
        chunk.split("/inbox/")[1].split("/")[0]
        for chunk in content.split('<tr class="inbox-row">')[1:]
    ]


def _tagged(agent, name: str, *tags):
    contact = ContactFactory(agent=agent, name=name)
    for tag in tags:
        contact.contact_tags.create(tag=tag)
    return contact


@pytest.fixture
def people(agent):
    """Ada (vip, trial), Bob (trial), Cy (no tag), each with conversations of several ages."""
    vip = TagFactory(agent=agent, name="VIP")
    trial = TagFactory(agent=agent, name="Trial")
    ada = _tagged(agent, "Ada Lovelace", vip, trial)
    bob = _tagged(agent, "Bob Stone", trial)
    cy = _tagged(agent, "Cy Untagged")
    return {
        "ada_open": _conversation(agent, ada, minutes_ago=1),
        "bob_open": _conversation(agent, bob, minutes_ago=2),
        "cy_open": _conversation(agent, cy, minutes_ago=3),
        "ada_closed": _conversation(agent, ada, minutes_ago=4, status="closed"),
        "bob_escalated": _conversation(agent, bob, minutes_ago=5, status="escalated"),
        "no_contact": _conversation(agent, None, minutes_ago=6),
    }


def _ids(people, *names) -> list[str]:
    return [str(people[name].pk) for name in names]


def test_one_tag_lists_the_conversations_of_contacts_carrying_it(agent, staff_client, people):
    response = staff_client.get(_url(agent), {"tag": "VIP", "status": "all"})
    any_case = staff_client.get(_url(agent), {"tag": "vip", "status": "all"})

    assert response.status_code == 200
    assert _rows(response) == _ids(people, "ada_open", "ada_closed")
    assert _rows(any_case) == _ids(people, "ada_open", "ada_closed")
    content = response.content.decode()
    assert "Contacts tagged “VIP” (any of them)" in content
    assert "Cy Untagged" not in content


def test_two_tags_match_contacts_with_any_of_them_and_list_each_conversation_once(
    agent, staff_client, people
):
    response = staff_client.get(_url(agent), {"tag": ["VIP", "Trial"], "status": "all"})

    # Ada carries both tags: her conversations appear once each, not once per tag.
    assert _rows(response) == _ids(people, "ada_open", "bob_open", "ada_closed", "bob_escalated")
    assert "Contacts tagged “VIP” or “Trial” (any of them)" in response.content.decode()


def test_tags_combine_with_the_status_tabs(agent, staff_client, people):
    default = staff_client.get(_url(agent), {"tag": "Trial"})  # needs attention
    closed = staff_client.get(_url(agent), {"tag": ["VIP", "Trial"], "status": "closed"})
    escalated = staff_client.get(_url(agent), {"tag": "VIP", "status": "escalated"})

    assert _rows(default) == _ids(people, "ada_open", "bob_open", "bob_escalated")
    assert _rows(closed) == _ids(people, "ada_closed")
    assert _rows(escalated) == []
    assert "No conversation here with a contact tagged “VIP”." in escalated.content.decode()
    # The tabs keep the tags: switching status stays within them.
    tabs = re.findall(r'<nav id="inbox-tabs".*?</nav>', default.content.decode(), re.S)[0]
    assert unescape(tabs).count("tag=Trial") == 5


def test_tags_combine_with_search(agent, staff_client, people):
    response = staff_client.get(_url(agent), {"tag": "Trial", "q": "stone", "status": "all"})
    no_match = staff_client.get(_url(agent), {"tag": "VIP", "q": "stone", "status": "all"})

    assert _rows(response) == _ids(people, "bob_open", "bob_escalated")
    assert _rows(no_match) == []


def test_paging_keeps_the_tags(agent, staff_client):
    vip = TagFactory(agent=agent, name="VIP")
    tagged = _tagged(agent, "Tagged Tess", vip)
    other = _tagged(agent, "Plain Pat")
    now = timezone.now()
    # 60 tagged conversations, many sharing a time (the id tie-break), between 60 others.
    Conversation.objects.bulk_create(
        [
            Conversation(
                agent=agent,
                contact=tagged if i % 2 else other,
                last_message_at=now - timedelta(minutes=i // 6),
            )
            for i in range(120)
        ]
    )
    expected = [
        str(pk)
        for pk in Conversation.objects.filter(contact=tagged)
        .order_by("-last_message_at", "id")
        .values_list("pk", flat=True)
    ]

    first = staff_client.get(_url(agent), {"tag": "vip"})
    next_link = unescape(re.search(r'rel="next" href="([^"]+)"', first.content.decode())[1])
    second = staff_client.get(_url(agent) + next_link)
    back_link = unescape(re.search(r'rel="prev" href="([^"]+)"', second.content.decode())[1])
    back = staff_client.get(_url(agent) + back_link)

    # The links carry the tag under its own spelling, and the cursor.
    assert "tag=VIP" in next_link
    assert "cursor=" in next_link
    assert "tag=VIP" in back_link
    assert len(_rows(first)) == 50
    assert _rows(first) + _rows(second) == expected
    assert 'rel="next"' not in second.content.decode()
    assert _rows(back) == _rows(first)


def test_another_workspaces_tag_is_ignored_with_a_notice(agent, other_agent, staff_client, people):
    secret = TagFactory(agent=other_agent, name="Secret-Globex")
    outsider = _tagged(other_agent, "Globex Person", secret)
    _conversation(other_agent, outsider, minutes_ago=0)

    by_name = staff_client.get(_url(agent), {"tag": "Secret-Globex", "status": "all"})
    by_id = staff_client.get(_url(agent), {"tag": str(secret.pk), "status": "all"})
    mixed = staff_client.get(_url(agent), {"tag": ["Secret-Globex", "VIP"], "status": "all"})

    everything = _ids(
        people, "ada_open", "bob_open", "cy_open", "ada_closed", "bob_escalated", "no_contact"
    )
    assert by_name.status_code == by_id.status_code == mixed.status_code == 200
    assert _rows(by_name) == everything
    assert _rows(by_id) == everything
    assert _rows(mixed) == _ids(people, "ada_open", "ada_closed")
    assert "No tag named “Secret-Globex” here; showing every tag." in by_name.content.decode()
    assert "the list is narrowed by the other tags" in mixed.content.decode()
    for response in (by_name, mixed):
        assert "Globex Person" not in response.content.decode()
    # The picker offers this agent's tags only, and links drop the unknown name.
    picker = re.findall(r'name="tag" value="([^"]*)"', by_name.content.decode())
    assert picker == ["Trial", "VIP"]
    assert (
        "Secret"
        not in re.findall(r'<nav id="inbox-tabs".*?</nav>', mixed.content.decode(), re.S)[0]
    )


def test_unknown_tag_names_are_escaped_and_do_not_break_the_page(agent, staff_client, people):
    response = staff_client.get(
        _url(agent), {"tag": ["<script>alert(1)</script>", "x" * 5000, "nul\x00byte", " "]}
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "x" * 65 not in content  # a long name is cut in the notice
    assert len(_rows(response)) == 5  # needs attention, unfiltered


def test_a_nul_in_the_search_is_not_an_error(agent, staff_client, people):
    response = staff_client.get(_url(agent), {"q": "sto\x00ne", "tag": "Trial", "status": "all"})

    assert response.status_code == 200
    assert _rows(response) == _ids(people, "bob_open", "bob_escalated")


def test_the_picker_offers_the_agents_tags_with_labels_and_says_any(agent, staff_client, people):
    content = staff_client.get(_url(agent), {"tag": "trial"}).content.decode()

    assert '<legend class="label">Contact has any of these tags</legend>' in content
    assert re.search(
        r'<label class="field-inline"><input type="checkbox" name="tag" value="Trial" checked> '
        r"Trial</label>",
        content,
    )
    assert re.search(
        r'<label class="field-inline"><input type="checkbox" name="tag" value="VIP"> VIP</label>',
        content,
    )
    assert 'id="inbox-tag-count"> (1)<span class="sr-only"> chosen</span>' in content


def test_no_picker_for_an_agent_without_tags(agent, staff_client):
    _conversation(agent, ContactFactory(agent=agent), minutes_ago=1)

    content = staff_client.get(_url(agent)).content.decode()

    assert 'name="tag"' not in content
    assert "Contact has any of these tags" not in content


def test_the_htmx_answer_is_the_list_with_the_tabs_and_tag_count_that_follow_it(
    agent, staff_client, people
):
    response = staff_client.get(
        _url(agent), {"tag": ["VIP", "Trial"], "status": "open"}, HTTP_HX_TARGET="inbox-list", **HX
    )

    content = response.content.decode()
    assert content.lstrip().startswith('<div id="inbox-list">')
    assert "<html" not in content
    assert _rows(response) == _ids(people, "ada_open", "bob_open")
    assert (
        '<nav id="inbox-tabs" class="tabs" aria-label="Conversation status" hx-swap-oob="true">'
        in content
    )
    assert "tag=VIP&amp;tag=Trial" in content
    assert '<span id="inbox-tag-count" hx-swap-oob="true"> (2)' in content
    # The picker itself is not sent again (what is ticked in the page stays).
    assert 'type="checkbox"' not in content


def test_the_query_count_is_pinned_with_tags_and_flat_as_conversations_grow(
    agent, staff_client, django_assert_num_queries
):
    vip = TagFactory(agent=agent, name="VIP")
    TagFactory(agent=agent, name="Trial")

    def add(n: int) -> None:
        for i in range(n):
            contact = _tagged(agent, f"Person {i}", vip, TagFactory(agent=agent))
            _conversation(agent, contact, minutes_ago=i)

    params = {"tag": ["VIP", "Trial"], "q": "person", "status": "open"}
    add(2)
    # session, user, agent access (agent, membership), navigation, the tags named, the page
    # of conversations, the agent's tags for the picker; on SQLite the search index is asked
    # how many contacts match (contacts.search_index.fts_narrows).
    probe = int(connection.vendor == "sqlite")
    with django_assert_num_queries(8 + probe):
        page = staff_client.get(_url(agent), params)
    # The fragment leaves the picker out.
    with django_assert_num_queries(7 + probe):
        staff_client.get(_url(agent), params, HTTP_HX_TARGET="inbox-list", **HX)
    add(40)
    with django_assert_num_queries(8 + probe):
        more = staff_client.get(_url(agent), params)
    with django_assert_num_queries(7 + probe):
        staff_client.get(_url(agent), params, HTTP_HX_TARGET="inbox-list", **HX)

    assert len(_rows(page)) == 2
    assert len(_rows(more)) == 42
