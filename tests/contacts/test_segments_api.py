"""Segments through the REST API: the shared ones listed, and a segment's contacts with
the list's filters, ordering and cursor pages."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from attributes.models import AttributeDefinition
from attributes.selectors import attribute_definition_map
from contacts.models import Segment
from contacts.services.segments import segment_create
from tests.factories import AttributeFactory, ContactFactory, TagFactory
from tests.helpers import error

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/"
SEGMENTS = "/api/v1/segments/"


def _segment(agent, user, name, query, *, shared=True, defs=None):
    return segment_create(
        agent=agent, user=user, name=name, shared=shared, query=query, definitions=defs or {}
    )


def _names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [c["name"] for c in response.json()["results"]]


@pytest.fixture
def people(agent):
    vip = TagFactory(agent=agent, name="vip")
    AttributeFactory(agent=agent, key="plan", type="select", options=["Free", "Pro"])
    for name, count, plan, tagged in (
        ("Ada", 3, "Pro", True),
        ("Bob", 0, "Free", True),
        ("Cy", 5, "Free", False),
        ("Dee", 0, "Pro", False),
        ("Eve", 1, "", True),
    ):
        contact = ContactFactory(
            agent=agent,
            name=name,
            conversation_count=count,
            attributes={"plan": plan} if plan else {},
        )
        if tagged:
            contact.tags.add(vip)


def test_the_list_holds_the_shared_segments_of_the_keys_agent(
    api, agent, other_agent, staff_user, admin_user
):
    team = _segment(agent, staff_user, "VIPs", "tag=vip&ordering=name")
    _segment(agent, admin_user, "active", "conversation_count__gte=1")
    _segment(agent, staff_user, "Private", "q=x", shared=False)
    Segment.objects.create(agent=other_agent, name="Theirs", shared=True, query="q=y")
    body = api.get(SEGMENTS).json()
    assert [s["name"] for s in body["results"]] == ["active", "VIPs"]
    item = body["results"][1]
    assert set(item) == {"id", "name", "query", "created_at", "updated_at"}
    assert item["id"] == team.pk
    assert item["query"] == "tag=vip&ordering=name"
    assert item["created_at"].endswith("Z")


def test_counts_come_when_asked(api, agent, staff_user, people):
    defs = attribute_definition_map(agent=agent)
    _segment(agent, staff_user, "VIPs", "tag=vip")
    _segment(
        agent,
        staff_user,
        "Busy Pro",
        "match=any&conversation_count__gte=4&attr.plan=pro",
        defs=defs,
    )
    with CaptureQueriesContext(connection) as plain:
        assert api.get(SEGMENTS).status_code == 200
    body = api.get(SEGMENTS, {"include_counts": "true"}).json()
    counts = {s["name"]: (s["contact_count"], s["contact_count_exact"]) for s in body["results"]}
    assert counts == {"VIPs": (3, True), "Busy Pro": (3, True)}
    assert len(plain.captured_queries) <= 4
    response = api.get(SEGMENTS, {"include_counts": "perhaps"})
    assert response.status_code == 400
    assert list(error(response)["fields"]) == ["include_counts"]


def test_a_segments_contacts_in_its_order_narrowed_by_the_request(api, agent, staff_user, people):
    segment = _segment(agent, staff_user, "VIPs", "tag=vip&ordering=-conversation_count")
    assert _names(api.get(URL, {"segment": segment.pk})) == ["Ada", "Eve", "Bob"]
    # The request's filters apply too, and its ordering replaces the segment's.
    assert _names(api.get(URL, {"segment": segment.pk, "attr.plan": "free"})) == ["Bob"]
    assert _names(api.get(URL, {"segment": segment.pk, "ordering": "name"})) == [
        "Ada",
        "Bob",
        "Eve",
    ]


def test_each_set_of_conditions_keeps_its_own_match(api, agent, staff_user, people):
    segment = _segment(
        agent,
        staff_user,
        "Busy or Pro",
        "match=any&conversation_count__gte=3&attr.plan=pro",
        defs=attribute_definition_map(agent=agent),
    )
    assert sorted(_names(api.get(URL, {"segment": segment.pk}))) == ["Ada", "Cy", "Dee"]
    narrowed = {"segment": segment.pk, "match": "any", "tag__eq": "vip", "name": "cy"}
    assert sorted(_names(api.get(URL, narrowed))) == ["Ada", "Cy"]


def test_cursor_pages_walk_a_segment_once(api, agent, staff_user, people):
    segment = _segment(agent, staff_user, "Everyone by name", "ordering=name")
    seen, url = [], f"{URL}?segment={segment.pk}&page_size=2"
    while url:
        body = api.get(url).json()
        seen += [c["name"] for c in body["results"]]
        if body["next"]:
            assert parse_qs(urlsplit(body["next"]).query)["segment"] == [str(segment.pk)]
            parts = urlsplit(body["next"])
            url = f"{parts.path}?{parts.query}"
        else:
            url = None
    assert seen == ["Ada", "Bob", "Cy", "Dee", "Eve"]


def test_private_and_foreign_segments_are_not_found(api, agent, other_agent, staff_user, people):
    private = _segment(agent, staff_user, "Mine", "tag=vip", shared=False)
    foreign = Segment.objects.create(agent=other_agent, name="Theirs", shared=True, query="")
    for segment in (private, foreign):
        response = api.get(URL, {"segment": segment.pk})
        assert response.status_code == 404
        body = error(response)
        assert body["code"] == "not_found"
        assert f"No shared segment with id {segment.pk}" in body["message"]
    assert api.get(URL, {"segment": 10**15}).status_code == 404


@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5", "", "99999999999999999999"])
def test_a_segment_parameter_that_is_no_id_answers_400(api, agent, value):
    response = api.get(URL, {"segment": value})
    assert response.status_code == 400
    assert list(error(response)["fields"]) == ["segment"]


def test_a_segment_that_no_longer_applies_answers_400(api, agent, staff_user, people):
    segment = _segment(
        agent, staff_user, "Pro", "attr.plan=pro", defs=attribute_definition_map(agent=agent)
    )
    AttributeDefinition.objects.filter(agent=agent, key="plan").delete()
    response = api.get(URL, {"segment": segment.pk})
    assert response.status_code == 400
    message = error(response)["fields"]["segment"][0]
    assert message == (
        "The segment “Pro” no longer applies: attr.plan: No attribute with key 'plan'."
    )


def test_a_bad_request_parameter_beside_a_segment_is_named(api, agent, staff_user, people):
    segment = _segment(agent, staff_user, "VIPs", "tag=vip")
    response = api.get(URL, {"segment": segment.pk, "created_at__gt": "later"})
    assert response.status_code == 400
    assert list(error(response)["fields"]) == ["created_at__gt"]


def test_the_schema_documents_segments(api):
    schema = api.get("/api/v1/schema/?format=json").json()
    listing = schema["paths"]["/api/v1/segments/"]["get"]
    assert listing["operationId"] == "segments_list"
    assert {p["name"] for p in listing["parameters"]} == {"include_counts"}
    contacts = schema["paths"]["/api/v1/contacts/"]["get"]
    segment = next(p for p in contacts["parameters"] if p["name"] == "segment")
    assert segment["schema"] == {"type": "integer", "minimum": 1}
    assert "404" in contacts["responses"]
    # The export lists by the same filters but not by segment.
    export = schema["paths"]["/api/v1/contacts/export/"]["get"]
    assert "segment" not in {p["name"] for p in export["parameters"]}
    assert "match" in {p["name"] for p in export["parameters"]}


def test_listing_a_segment_costs_one_query_more(api, agent, key, staff_user, people):
    segment = _segment(agent, staff_user, "VIP by name", "tag=vip&ordering=name")

    def count(params) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(URL, params).status_code == 200
        return len(ctx.captured_queries)

    count({})  # records the key's use
    same = {"tag": "vip", "ordering": "name"}
    assert count({"segment": segment.pk}) == count(same) + 1
