"""The contacts table sorts by conversation count: most conversations first by default,
keyset paged like every other column."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from contacts.models import Contact
from tests.factories import ContactFactory
from tests.helpers import HX, list_url, table_names

pytestmark = pytest.mark.django_db


def _link(response, rel: str) -> str | None:
    found = re.search(rf'rel="{rel}" href="([^"]+)"', response.content.decode())
    return unescape(found.group(1)) if found else None


def _conversations_header(response) -> tuple[str, str]:
    """(the ordering its link sorts by, its aria-sort) of the Conversations header."""
    html = response.content.decode()
    head = html[html.index("<thead>") : html.index("</thead>")]
    (cell,) = [c for c in re.findall(r"<th[^>]*>.*?</th>", head, re.S) if "Conversations" in c]
    href = unescape(re.search(r'href="([^"]+)"', cell).group(1))
    aria = re.search(r'aria-sort="([^"]+)"', cell)
    return parse_qs(urlsplit(href).query)["ordering"][0], aria.group(1) if aria else ""


def _contacts_with_counts(agent, n: int = 60) -> None:
    # Few distinct counts, so most rows tie and only the id keeps the order stable.
    for i in range(n):
        ContactFactory(agent=agent, name=f"P{i:02d}", conversation_count=(i * 7) % 5)


def _expected(agent, *, descending: bool) -> list[str]:
    rows = Contact.objects.filter(agent=agent).values_list("conversation_count", "id", "name")
    ordered = sorted(rows, key=lambda r: (r[0], r[1]), reverse=descending)
    return [name for _, _, name in ordered]


def test_the_conversations_header_sorts_most_conversations_first(staff_client, agent):
    ContactFactory(agent=agent, name="Quiet", conversation_count=0)
    ContactFactory(agent=agent, name="Chatty", conversation_count=12)
    ContactFactory(agent=agent, name="Some", conversation_count=3)
    url = list_url(agent)

    unsorted = staff_client.get(url, {"cols": "conversations"})
    assert _conversations_header(unsorted) == ("-conversation_count", "")

    descending = staff_client.get(url, {"cols": "conversations", "ordering": "-conversation_count"})
    assert table_names(descending) == ["Chatty", "Some", "Quiet"]
    assert _conversations_header(descending) == ("conversation_count", "descending")
    assert 'class="form-errors"' not in descending.content.decode()

    ascending = staff_client.get(url, {"cols": "conversations", "ordering": "conversation_count"})
    assert table_names(ascending) == ["Quiet", "Some", "Chatty"]
    assert _conversations_header(ascending) == ("-conversation_count", "ascending")
    assert '<td class="num">12</td>' in ascending.content.decode()


@pytest.mark.parametrize("ordering", ["-conversation_count", "conversation_count"])
def test_pages_sorted_by_conversations_never_skip_or_repeat(staff_client, agent, ordering):
    _contacts_with_counts(agent)
    expected = _expected(agent, descending=ordering.startswith("-"))
    url = list_url(agent) + f"?ordering={ordering}&per_page=25&cols=conversations"

    pages, response = [], staff_client.get(url)
    while True:
        pages.append(table_names(response))
        next_url = _link(response, "next")
        if not next_url:
            break
        response = staff_client.get(next_url, **HX)  # the htmx fragment pages the same way
    assert [len(p) for p in pages] == [25, 25, 10]
    assert [name for page in pages for name in page] == expected
    assert "51–60 of 60 contacts · last page" in response.content.decode()

    back = []
    while prev_url := _link(response, "prev"):
        response = staff_client.get(prev_url)
        back.insert(0, table_names(response))
    assert back == pages[:-1]
    assert "1–25 of 60 contacts" in response.content.decode()
