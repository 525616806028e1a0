""" "Merge with…" on the contact page: find the other contact with the table's search, then
the existing merge preview, under the existing merge rules."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts.models import Identity
from contacts.services import note_create
from tests.factories import ContactFactory, TagFactory
from tests.helpers import HX, agent_url, contact_url

pytestmark = pytest.mark.django_db


def _merge_with(contact) -> str:
    return contact_url("merge_with", contact)


def _names(response) -> list[str]:
    return [
        unescape(n)
        for n in re.findall(
            r'class="candidate-name" href="[^"]*">([^<]*)</a>', response.content.decode()
        )
    ]


def _preview(agent, primary, secondary) -> str:
    return f"{agent_url('contacts:merge', agent)}?primary={primary.pk}&amp;secondary={secondary.pk}"


@pytest.fixture
def people(agent, contact):
    """Ada (the contact whose page this is) and others of the same agent."""
    make = ContactFactory
    return {
        "ada2": make(agent=agent, name="Ada Byron", email="ada.byron@example.com"),
        "bob": make(agent=agent, name="Bob Ross", email="bob@paint.example", external_id="usr_bob"),
        "gone": make(agent=agent, name="Ada Gone", email="gone@x.test", deleted_at=timezone.now()),
    }


def test_the_contact_page_offers_merge_with(staff_client, contact):
    html = staff_client.get(contact_url("detail", contact)).content.decode()
    url = _merge_with(contact)
    assert (
        f'<a class="btn" id="merge-with-button" href="{url}" hx-get="{url}" '
        'hx-target="#merge-with" hx-swap="innerHTML">Merge with…</a>'
    ) in html
    assert '<div id="merge-with"></div>' in html


def test_search_finds_live_contacts_of_the_agent_other_than_this_one(
    staff_client, agent, contact, people, other_agent
):
    ContactFactory(agent=other_agent, name="Ada Elsewhere", email="ada@globex.example")
    response = staff_client.get(_merge_with(contact), {"q": "ada"})
    assert response.status_code == 200
    assert _names(response) == ["Ada Byron"]
    html = response.content.decode()
    assert "1 contact match “ada”" in html
    assert f'href="{_preview(agent, contact, people["ada2"])}"' in html
    # The whole page: a labelled search field that keeps the query, and a way back.
    assert (
        '<label for="merge-q">Search contacts by name, email, phone or external ID</label>' in html
    )
    assert 'id="merge-q" name="q" value="ada"' in html
    assert f'href="{contact_url("detail", contact)}">← Ada Lovelace</a>' in html


@pytest.mark.parametrize("q", ["usr_bob", "BOB@paint.example", "ross", "paint"])
def test_search_reads_names_emails_and_external_ids(staff_client, contact, people, q):
    assert _names(staff_client.get(_merge_with(contact), {"q": q})) == ["Bob Ross"]


def test_search_also_finds_by_tag_like_the_table(staff_client, agent, contact, people):
    people["bob"].tags.add(TagFactory(agent=agent, name="painter"))
    assert _names(staff_client.get(_merge_with(contact), {"q": "painter"})) == ["Bob Ross"]


def test_a_pasted_email_puts_its_exact_match_first(staff_client, agent, contact):
    for i in range(3):
        ContactFactory(agent=agent, name=f"Zed {i}", email=f"zed{i}.x@example.com")
    exact = ContactFactory(agent=agent, name="Zed Exact", email="zed@example.com")
    names = _names(staff_client.get(_merge_with(contact), {"q": "ZED@example.com"}))
    assert names[0] == "Zed Exact"
    assert exact.name in names


def test_contacts_with_another_external_id_are_listed_with_the_reason_and_no_merge(
    staff_client, agent, people
):
    carol = ContactFactory(
        agent=agent, name="Carol", email="carol@example.com", external_id="usr_carol"
    )
    response = staff_client.get(_merge_with(carol), {"q": "bob"})
    html = response.content.decode()
    assert _names(response) == ["Bob Ross"]
    assert (
        "Both contacts have an external id (&#x27;usr_carol&#x27; and &#x27;usr_bob&#x27;); "
        "they are different people in your system and cannot be merged."
    ) in html
    assert "Review merge" not in html


def test_a_verified_contact_leads_to_the_preview_where_the_rules_apply(
    staff_client, agent, contact, people
):
    signed = ContactFactory(
        agent=agent, name="Ada Signed", email="ada.signed@example.com",
        identity=Identity.VERIFIED, identity_source="jwt", external_id="u-1",
    )  # fmt: skip
    response = staff_client.get(_merge_with(contact), {"q": "signed"})
    assert f'href="{_preview(agent, contact, signed)}"' in response.content.decode()
    preview = staff_client.get(unescape(_preview(agent, contact, signed)))
    assert preview.status_code == 200
    text = preview.content.decode()
    assert "Merge Ada Signed into Ada Lovelace" in text
    assert "Choose another contact" in text


def test_without_a_query_it_suggests_the_possible_duplicates(staff_client, agent, contact):
    twin = ContactFactory(agent=agent, name="A. Lovelace", email="ADA@example.com")
    ContactFactory(agent=agent, name="Unrelated")
    response = staff_client.get(_merge_with(contact))
    assert _names(response) == ["A. Lovelace"]
    html = response.content.decode()
    assert "Same email or phone as Ada Lovelace:" in html
    assert f'href="{_preview(agent, contact, twin)}"' in html


def test_nothing_found_says_so(staff_client, contact, people):
    response = staff_client.get(_merge_with(contact), {"q": "<script>zzz"})
    html = response.content.decode()
    assert "No other contact matches “&lt;script&gt;zzz”." in html
    assert "<script>zzz" not in html
    assert _names(response) == []


def test_typing_refreshes_only_the_results(staff_client, contact, people):
    response = staff_client.get(
        _merge_with(contact), {"q": "ada"}, HTTP_HX_TARGET="merge-candidates", **HX
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<p class="muted merge-summary">')
    assert "<form" not in html
    assert "<html" not in html
    assert _names(response) == ["Ada Byron"]


def test_the_button_opens_the_search_inside_the_contact_page(staff_client, contact, people):
    response = staff_client.get(_merge_with(contact), HTTP_HX_TARGET="merge-with", **HX)
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="merge-search"')
    assert "<html" not in html
    assert "data-merge-close" in html
    assert "autofocus" in html
    assert response["Vary"]
    assert "HX-Request" in response["Vary"]


def test_a_deleted_contact_cannot_start_a_merge(staff_client, agent, people):
    response = staff_client.get(_merge_with(people["gone"]), {"q": "ada"})
    html = response.content.decode()
    assert "This contact is deleted; restore it before merging." in html
    assert _names(response) == []
    assert 'id="merge-q"' not in html


def test_merge_with_checks_the_workspace_and_method(client, staff_client, other_agent, contact):
    theirs = ContactFactory(agent=other_agent, name="Globex person")
    assert staff_client.get(_merge_with(theirs), {"q": "a"}).status_code == 404
    assert staff_client.post(_merge_with(contact)).status_code == 405
    anonymous = client.get(_merge_with(contact))
    assert anonymous.status_code == 302
    assert "/login/" in anonymous.url


def test_the_search_takes_the_same_queries_however_many_match(
    staff_client, agent, contact, django_assert_num_queries
):
    ContactFactory(agent=agent, name="Ada One")
    url = _merge_with(contact)
    with CaptureQueriesContext(connection) as baseline:
        staff_client.get(url, {"q": "ada"})
    for i in range(30):
        ContactFactory(agent=agent, name=f"Ada {i}", email=f"ada{i}@example.com")
    with django_assert_num_queries(len(baseline.captured_queries)):
        response = staff_client.get(url, {"q": "ada"})
    assert len(_names(response)) == 10
    assert "(the first 10; type more to narrow)" in response.content.decode()


def test_the_preview_says_the_notes_move_too(staff_client, agent, contact, staff_actor):
    other = ContactFactory(agent=agent, name="Ada Two")
    note_create(contact=other, actor=staff_actor, body="One")
    note_create(contact=other, actor=staff_actor, body="Two")
    url = f"{agent_url('contacts:merge', agent)}?primary={contact.pk}&secondary={other.pk}"
    html = staff_client.get(url).content.decode()
    assert "0 conversations, 2 notes and the history of Ada Two move over." in html
    assert f'href="{_merge_with(contact)}">Choose another contact</a>' in html
