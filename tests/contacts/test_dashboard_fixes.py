"""What support people met in the contacts dashboard and what it does now: search that
finds what was pasted, a new contact needs something to know them by, an identity badge
that says who vouched, merges offered only when they can happen, and ascending sorts that
keep the contacts without a value at the end of every page walk."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from attributes.selectors import attribute_definition_map
from contacts.models import Contact, Identity
from contacts.query.filterset import ContactFilterSet
from contacts.query.keyset import keyset_page
from tests.factories import AttributeFactory, ContactFactory
from tests.helpers import agent_url, contact_url, error, list_url, table_names

pytestmark = pytest.mark.django_db

API = "/api/v1/contacts/"
NEEDS_SOMETHING = "Give at least a name, an email, a phone number or an external ID."


def _api_names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [c["name"] for c in response.json()["results"]]


def _next_link(response) -> str | None:
    found = re.search(r'rel="next" href="([^"]+)"', response.content.decode())
    return unescape(found.group(1)) if found else None


def _previous_link(response) -> str | None:
    found = re.search(r'rel="prev" href="([^"]+)"', response.content.decode())
    return unescape(found.group(1)) if found else None


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# --- Search ---------------------------------------------------------------------------------


@pytest.fixture
def digit_people(agent):
    """Judy, whose email has 251 in it, and people who only share digits with her email or
    with a phone number someone might type."""
    ContactFactory(agent=agent, name="Judy Allen", email="judy.allen251@stark.industries")
    ContactFactory(agent=agent, name="Phone Holder", email="ph@example.com", phone="+14155552510")
    ContactFactory(agent=agent, name="Id Holder", email="id@example.com", external_id="cust-251")
    ContactFactory(agent=agent, name="Caller", email="caller@example.com", phone="+14155550123")
    ContactFactory(agent=agent, name="New Yorker", email="ny@example.com", phone="+12125550123")


def test_a_pasted_email_with_digits_finds_only_its_owner_while_a_phone_query_matches_digits(
    staff_client, agent, digit_people
):
    url = list_url(agent)
    pasted = staff_client.get(url, {"q": "judy.allen251@stark.industries"})
    assert table_names(pasted) == ["Judy Allen"]
    # Written like a phone number, the query is still compared digit by digit.
    assert table_names(staff_client.get(url, {"q": "(415) 555"})) == ["Caller", "Phone Holder"]
    assert table_names(staff_client.get(url, {"q": "415.555"})) == ["Caller", "Phone Holder"]


def test_the_api_list_search_follows_the_same_digit_rule(api, agent, digit_people):
    assert _api_names(api.get(API, {"q": "judy.allen251@stark.industries"})) == ["Judy Allen"]
    assert _api_names(api.get(API, {"q": "(415) 555", "ordering": "name"})) == [
        "Caller",
        "Phone Holder",
    ]


def test_an_exact_email_match_leads_the_first_page_and_is_not_repeated(staff_client, agent):
    now = timezone.now()
    # The exact match is the oldest: newest first, it would be the very last row.
    ContactFactory(
        agent=agent, name="Exact Ann", email="Ann@Example.com", created_at=now - timedelta(days=9)
    )
    for n in range(30):
        ContactFactory(
            agent=agent,
            name=f"Other {n:02d}",
            email=f"jo{n:02d}ann@example.com",
            created_at=now - timedelta(minutes=n),
        )
    url = list_url(agent)
    first = staff_client.get(url, {"q": "ANN@example.com", "per_page": "25"})
    names = table_names(first)
    assert names[0] == "Exact Ann"
    assert names[1:] == [f"Other {n:02d}" for n in range(25)]
    second = staff_client.get(_next_link(first))
    assert table_names(second) == [f"Other {n:02d}" for n in range(25, 30)]
    assert _next_link(second) is None
    # Back to the start: the first page again, exact match included, and no way further back.
    back = staff_client.get(_previous_link(second))
    assert table_names(back) == names
    assert _previous_link(back) is None
    assert "1–26" in back.content.decode()


def test_an_exact_external_id_match_leads_whatever_the_order(staff_client, agent):
    ContactFactory(agent=agent, name="Zed Exact", email="zed@example.com", external_id="acct-7")
    for n in range(3):
        ContactFactory(agent=agent, name=f"Acct {n}", email=f"a{n}@x.org", external_id=f"acct-7{n}")
    response = staff_client.get(list_url(agent), {"q": "acct-7", "ordering": "name"})
    assert table_names(response) == ["Zed Exact", "Acct 0", "Acct 1", "Acct 2"]


# --- New contacts and the identity badge ---------------------------------------------------------


def test_a_blank_new_contact_form_creates_nothing_but_a_phone_alone_is_enough(staff_client, agent):
    url = agent_url("contacts:new", agent)
    blank = staff_client.post(url, {"name": "", "email": "", "phone": "", "external_id": ""})
    assert blank.status_code == 422
    assert NEEDS_SOMETHING in blank.content.decode()
    assert not Contact.objects.exists()

    phone_only = staff_client.post(url, {"phone": "(415) 555-2671"})
    contact = Contact.objects.get(agent=agent)
    assert phone_only.status_code == 302
    assert phone_only.url == contact_url("detail", contact)
    assert (contact.name, contact.email, contact.phone) == ("", "", "+14155552671")


def test_the_api_refuses_to_create_an_empty_contact(api, agent):
    response = api.post(API, {})
    assert response.status_code == 400
    assert error(response)["fields"]["name"] == [NEEDS_SOMETHING]
    assert not Contact.objects.exists()
    assert api.post(API, {"phone": "+1 415 555 2671"}).status_code == 201


def _badge(html: str) -> str:
    found = re.search(r'<span class="badge badge-\w+" title="Identity level">([^<]*)</span>', html)
    return unescape(found.group(1))


def test_the_identity_badge_says_who_vouched_for_the_contact(staff_client, agent, api):
    staff_client.post(agent_url("contacts:new", agent), {"name": "By Staff"})
    api.post(API, {"name": "By Api"})
    ContactFactory(agent=agent, name="By Import", identity_source="import")
    ContactFactory(agent=agent, name="By Jwt", identity_source="jwt")
    ContactFactory(
        agent=agent, name="Typed In", identity=Identity.SELF_REPORTED, identity_source="widget"
    )
    ContactFactory(agent=agent, name="Nobody", identity=Identity.ANONYMOUS, identity_source="")
    expected = {
        "By Staff": "Verified by staff",
        "By Api": "Verified by API",
        "By Import": "Verified by import",
        "By Jwt": "Verified",
        "Typed In": "Self-reported",
        "Nobody": "Anonymous",
    }
    assert Contact.objects.get(name="By Staff").identity_source == "staff"
    for contact in Contact.objects.filter(agent=agent):
        page = staff_client.get(contact_url("detail", contact)).content.decode()
        assert _badge(page) == expected[contact.name], contact.name

    table = staff_client.get(list_url(agent), {"cols": "identity", "ordering": "name"})
    rows = re.findall(
        r'<span class="long-name"[^>]*>([^<]*)</span></a>'
        r'.*?<span class="badge badge-\w+"[^>]*>([^<]*)</span>',
        table.content.decode(),
        re.S,
    )
    assert dict(rows) == expected


# --- Merge offers ------------------------------------------------------------------------------


def _merge_links(html: str) -> list[str]:
    return re.findall(r'href="(/a/[^"]*/contacts/merge/[^"]*)"', html)


def test_an_email_held_by_another_external_id_is_not_offered_as_a_merge(staff_client, agent):
    contact = ContactFactory(agent=agent, name="Alpha", email="alpha@example.com", external_id="a")
    other = ContactFactory(agent=agent, name="Bravo", email="bravo@example.com", external_id="b")
    response = staff_client.post(
        contact_url("edit", contact), {"name": "Alpha", "email": "bravo@example.com"}
    )
    html = response.content.decode()
    assert response.status_code == 409
    assert "cannot be merged" in html
    open_other = f'<a class="btn btn-primary" href="{contact_url("detail", other)}">Open Bravo</a>'
    assert open_other in html
    assert _merge_links(html) == []
    assert "Merge Bravo into this contact" not in html
    contact.refresh_from_db()
    assert contact.email == "alpha@example.com"


def test_an_email_held_by_a_contact_without_external_id_offers_both_merges(staff_client, agent):
    contact = ContactFactory(agent=agent, name="Alpha", email="alpha@example.com", external_id="a")
    other = ContactFactory(agent=agent, name="Bravo", email="bravo@example.com", external_id=None)
    response = staff_client.post(
        contact_url("edit", contact), {"name": "Alpha", "email": "bravo@example.com"}
    )
    html = unescape(response.content.decode())
    assert response.status_code == 409
    assert "cannot be merged" not in html
    assert "If both are the same person, merge them" in html
    links = _merge_links(html)
    assert len(links) == 2
    assert f"primary={contact.pk}&secondary={other.pk}" in links[0]
    assert f"primary={other.pk}&secondary={contact.pk}" in links[1]


def test_possible_duplicates_offer_a_merge_only_when_one_can_happen(staff_client, agent):
    contact = ContactFactory(agent=agent, name="Alpha", email="same@example.com", external_id="a")
    ContactFactory(agent=agent, name="Bravo", email="SAME@example.com", external_id="b")
    mergeable = ContactFactory(agent=agent, name="Charlie", email="same@example.com")
    html = staff_client.get(contact_url("detail", contact)).content.decode()
    section = html[html.index("Possible duplicates") :]
    items = dict(re.findall(r'<li>\s*<a href="[^"]*">([^<]*)</a>(.*?)</li>', section, re.S))
    assert "Review merge" not in items["Bravo"]
    assert "different person" in items["Bravo"]
    assert "Review merge" in items["Charlie"]
    assert f"primary={contact.pk}&amp;secondary={mergeable.pk}" in items["Charlie"]
    assert len(_merge_links(section)) == 1


def test_the_merge_page_of_an_unmergeable_pair_links_to_both_contacts(staff_client, agent):
    a = ContactFactory(agent=agent, name="Alpha", external_id="usr_1")
    b = ContactFactory(agent=agent, name="Bravo", external_id="usr_2")
    url = f"{agent_url('contacts:merge', agent)}?primary={a.pk}&secondary={b.pk}"
    html = staff_client.get(url).content.decode()
    assert "cannot be merged" in html
    assert f'<a class="btn" href="{contact_url("detail", a)}">Open Alpha</a>' in html
    assert f'<a class="btn" href="{contact_url("detail", b)}">Open Bravo</a>' in html


# --- Sorting: blanks last ----------------------------------------------------------------------


def _walk(agent, ordering: str, size: int) -> list:
    """Every contact in `ordering`, page by page with the `next` cursor; the same pages
    read back from the last one with `previous`."""
    filters = ContactFilterSet(
        {"ordering": ordering}, agent=agent, definitions=attribute_definition_map(agent=agent)
    ).validated()
    spec = filters.sort()
    pages, cursor = [], None
    for _ in range(50):
        page = keyset_page(filters.qs, spec, cursor=cursor, size=size)
        pages.append([c.pk for c in page.items])
        cursor = page.next_cursor
        if not cursor:
            break
    back, cursor = [pages[-1]], page.previous_cursor
    for _ in range(50):
        if not cursor:
            break
        page = keyset_page(filters.qs, spec, cursor=cursor, size=size)
        back.append([c.pk for c in page.items])
        cursor = page.previous_cursor
    assert back[::-1] == pages, "reading back gives other pages than reading forward"
    assert all(len(p) == size for p in pages[:-1])
    return [pk for p in pages for pk in p]


def _by_id(contacts) -> list:
    return [c.pk for c in sorted(contacts, key=lambda c: c.pk)]


def test_name_ascending_lists_named_contacts_first_and_the_unnamed_last(agent):
    unnamed = [ContactFactory(agent=agent, name="", email=f"u{n}@example.com") for n in range(5)]
    named = [ContactFactory(agent=agent, name=n) for n in ("eve", "Cy", "Ada", "Dee", "bob")]
    by_name = sorted(named, key=lambda c: c.name.lower())
    for size in (2, 3, 4):
        assert _walk(agent, "name", size) == [c.pk for c in by_name] + _by_id(unnamed)
    # Descending, the unnamed are last too.
    assert _walk(agent, "-name", 3) == [c.pk for c in reversed(by_name)] + [
        c.pk for c in sorted(unnamed, key=lambda c: c.pk, reverse=True)
    ]


def test_email_ascending_lists_contacts_without_email_last(agent):
    blank = [ContactFactory(agent=agent, name=f"No email {n}", email="") for n in range(4)]
    emails = [ContactFactory(agent=agent, email=e) for e in ("c@x.org", "A@x.org", "b@x.org")]
    by_email = sorted(emails, key=lambda c: c.email.lower())
    assert _walk(agent, "email", 2) == [c.pk for c in by_email] + _by_id(blank)


def test_last_seen_ascending_lists_never_seen_contacts_last(agent):
    now = timezone.now()
    never = [ContactFactory(agent=agent, last_seen_at=None) for _ in range(4)]
    seen = [ContactFactory(agent=agent, last_seen_at=now - timedelta(days=d)) for d in (3, 30, 1)]
    by_seen = sorted(seen, key=lambda c: c.last_seen_at)
    assert _walk(agent, "last_seen_at", 3) == [c.pk for c in by_seen] + _by_id(never)


def test_attribute_ascending_lists_contacts_without_the_attribute_last(agent):
    AttributeFactory(agent=agent, key="mrr", label="MRR", type="number")
    missing = [ContactFactory(agent=agent, attributes={}) for _ in range(4)]
    valued = [ContactFactory(agent=agent, attributes={"mrr": v}) for v in (10, -3, 0, 2.5)]
    by_value = sorted(valued, key=lambda c: c.attributes["mrr"])
    assert _walk(agent, "attr.mrr", 3) == [c.pk for c in by_value] + _by_id(missing)


def test_the_api_walks_name_ascending_with_the_unnamed_last(api, agent):
    unnamed = [ContactFactory(agent=agent, name="", email=f"u{n}@example.com") for n in range(3)]
    named = [ContactFactory(agent=agent, name=n) for n in ("Cy", "Ada", "Bo")]
    expected = [str(c.pk) for c in sorted(named, key=lambda c: c.name)] + [
        str(pk) for pk in _by_id(unnamed)
    ]
    pages, url = [], f"{API}?ordering=name&page_size=2"
    while url:
        body = api.get(url).json()
        pages.append([c["id"] for c in body["results"]])
        url = _path(body["next"]) if body["next"] else None
        assert len(pages) < 10
    assert [pk for page in pages for pk in page] == expected
    back, url = [pages[-1]], _path(body["previous"])
    while url:
        body = api.get(url).json()
        back.append([c["id"] for c in body["results"]])
        url = _path(body["previous"]) if body["previous"] else None
        assert len(back) < 10
    assert back[::-1] == pages
