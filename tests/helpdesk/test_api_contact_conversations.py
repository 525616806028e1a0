"""A contact's conversations through the API: most recent first, cursor pages."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from tests.factories import ContactFactory, ConversationFactory
from tests.helpers import error

pytestmark = pytest.mark.django_db


def test_a_contacts_conversations_most_recent_first_with_pages(api, agent):
    contact = ContactFactory(agent=agent)
    ConversationFactory(agent=agent, contact=ContactFactory(agent=agent))  # someone else's
    now = timezone.now()
    made = [
        ConversationFactory(
            agent=agent,
            contact=contact,
            subject=f"S{n}",
            last_message_at=now - timedelta(hours=n % 3),
        )
        for n in range(5)
    ]
    url = f"/api/v1/contacts/{contact.pk}/conversations/?page_size=2"
    seen = []
    while url:
        response = api.get(url)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"results", "next"}
        seen += body["results"]
        url = (
            (urlsplit(body["next"]).path + "?" + urlsplit(body["next"]).query)
            if body["next"]
            else None
        )
    assert sorted(c["id"] for c in seen) == sorted(str(c.pk) for c in made)
    assert set(seen[0]) == {
        "id",
        "status",
        "subject",
        "created_at",
        "updated_at",
        "last_message_at",
    }
    times = [c["last_message_at"] for c in seen]
    assert times == sorted(times, reverse=True)
    bad = api.get(f"/api/v1/contacts/{contact.pk}/conversations/?cursor=zzz")
    assert bad.status_code == 400
    assert "cursor" in error(bad)["fields"]


def _pages(api, url: str) -> list[list[dict]]:
    pages = []
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append(body["results"])
        url = (
            (urlsplit(body["next"]).path + "?" + urlsplit(body["next"]).query)
            if body["next"]
            else None
        )
    return pages


def _made(agent, contact, n: int) -> list:
    """`n` conversations, three sharing each activity time (the id breaks ties)."""
    now = timezone.now()
    return [
        ConversationFactory(
            agent=agent,
            contact=contact,
            subject=f"S{i}",
            last_message_at=now - timedelta(hours=i // 3),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("ordering", "reverse"),
    [(None, True), ("-last_message_at", True), ("last_message_at", False)],
)
def test_a_contacts_conversations_in_either_order_with_pages(api, agent, ordering, reverse):
    contact = ContactFactory(agent=agent)
    made = _made(agent, contact, 7)
    expected = [
        str(c.pk) for c in sorted(made, key=lambda c: (c.last_message_at, c.pk), reverse=reverse)
    ]
    url = f"/api/v1/contacts/{contact.pk}/conversations/?page_size=3"
    if ordering:
        url += f"&ordering={ordering}"

    pages = _pages(api, url)

    assert [len(p) for p in pages] == [3, 3, 1]
    assert [c["id"] for p in pages for c in p] == expected


def test_the_next_url_keeps_the_ordering(api, agent):
    contact = ContactFactory(agent=agent)
    _made(agent, contact, 3)

    body = api.get(
        f"/api/v1/contacts/{contact.pk}/conversations/?page_size=1&ordering=last_message_at"
    ).json()

    assert "ordering=last_message_at" in body["next"]


def test_a_bad_ordering_is_a_400(api, agent):
    contact = ContactFactory(agent=agent)

    for value in ("subject", "created_at", "--last_message_at", " last_message_at", ""):
        response = api.get(f"/api/v1/contacts/{contact.pk}/conversations/?ordering={value}")
        if value == "":  # empty means the default
            assert response.status_code == 200
            continue
        assert response.status_code == 400, value
        assert "ordering" in error(response)["fields"]


def test_a_cursor_only_continues_its_own_ordering(api, agent):
    contact = ContactFactory(agent=agent)
    _made(agent, contact, 4)
    base = f"/api/v1/contacts/{contact.pk}/conversations/?page_size=1"
    newest_next = api.get(base).json()["next"]
    cursor = newest_next.split("cursor=")[1]

    mixed = api.get(f"{base}&ordering=last_message_at&cursor={cursor}")

    assert mixed.status_code == 400
    assert "another ordering" in error(mixed)["fields"]["cursor"][0]


def test_cursors_from_before_orderings_still_continue_newest_first(api, agent):
    from core.keyset import encode_cursor

    contact = ContactFactory(agent=agent)
    made = _made(agent, contact, 4)
    newest = sorted(made, key=lambda c: (c.last_message_at, c.pk), reverse=True)
    old_style = encode_cursor({"t": newest[0].last_message_at, "i": newest[0].pk})
    back = encode_cursor(
        {"t": newest[1].last_message_at, "i": newest[1].pk, "o": "-last_message_at", "d": "prev"}
    )

    response = api.get(f"/api/v1/contacts/{contact.pk}/conversations/?cursor={old_style}")
    backwards = api.get(f"/api/v1/contacts/{contact.pk}/conversations/?cursor={back}")

    assert [c["id"] for c in response.json()["results"]] == [str(c.pk) for c in newest[1:]]
    assert backwards.status_code == 400  # the dashboard's way back is not an API cursor


def test_the_schema_documents_the_ordering(db):
    from django.test import Client

    schema = Client().get("/api/v1/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/contacts/{contact_id}/conversations/"]["get"]
    (ordering,) = [p for p in operation["parameters"] if p["name"] == "ordering"]

    # Empty is the default, as the endpoint answers it (schemathesis holds it to this).
    assert ordering["schema"]["enum"] == ["-last_message_at", "last_message_at", ""]
    assert ordering["schema"]["default"] == "-last_message_at"
    assert "oldest" in ordering["description"]
