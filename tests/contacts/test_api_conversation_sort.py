"""GET /api/v1/contacts/?ordering=conversation_count (or -conversation_count): cursor pages
by how many conversations each contact had."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from contacts.models import Contact
from tests.factories import ContactFactory
from tests.helpers import error

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/"


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _ids(body) -> list[str]:
    return [c["id"] for c in body["results"]]


@pytest.mark.parametrize("ordering", ["conversation_count", "-conversation_count"])
def test_cursor_pages_by_conversation_count_walk_forward_and_back(api, agent, ordering):
    for i in range(23):
        ContactFactory(agent=agent, name=f"P{i:02d}", conversation_count=(i * 3) % 4)
    ContactFactory(agent=agent, conversation_count=99, deleted_at="2024-01-01T00:00:00Z")
    rows = Contact.objects.filter(agent=agent, deleted_at__isnull=True).values_list(
        "conversation_count", "id"
    )
    expected = [str(pk) for _, pk in sorted(rows, reverse=ordering.startswith("-"))]

    pages, url = [], f"{URL}?page_size=5&ordering={ordering}"
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append(body)
        url = _path(body["next"]) if body["next"] else None
    assert [len(p["results"]) for p in pages] == [5, 5, 5, 5, 3]
    assert [pk for page in pages for pk in _ids(page)] == expected
    assert parse_qs(urlsplit(pages[0]["next"]).query)["ordering"] == [ordering]

    back, body = [], pages[-1]
    while body["previous"]:
        body = api.get(_path(body["previous"])).json()
        back.insert(0, _ids(body))
    assert back == [_ids(p) for p in pages[:-1]]


def test_most_conversations_first(api, agent):
    ContactFactory(agent=agent, name="Quiet", conversation_count=0)
    ContactFactory(agent=agent, name="Chatty", conversation_count=40)
    ContactFactory(agent=agent, name="Some", conversation_count=2)
    response = api.get(f"{URL}?ordering=-conversation_count")
    assert response.status_code == 200
    assert [c["name"] for c in response.json()["results"]] == ["Chatty", "Some", "Quiet"]


@pytest.mark.parametrize("value", ["3", 3.5, True, None, 2**31, -(2**31) - 1, [3]])
def test_a_forged_conversation_count_cursor_is_refused(api, agent, value):
    ContactFactory(agent=agent, conversation_count=3)
    pk = "01890a5d-ac96-774b-bcce-b302099a8057"
    payload = json.dumps({"o": "conversation_count", "v": value, "i": pk, "d": "next"}).encode()
    cursor = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    response = api.get(f"{URL}?ordering=conversation_count&cursor={cursor}")
    assert response.status_code == 400
    assert "cursor" in error(response)["fields"]
