from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts.models import Identity
from tests.factories import AttributeFactory, ContactFactory, TagFactory
from tests.helpers import CONTACT_FIELDS, error

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/"


@pytest.fixture
def schema(agent):
    AttributeFactory(agent=agent, key="mrr", type="number")
    AttributeFactory(agent=agent, key="signup", type="date")
    AttributeFactory(agent=agent, key="plan", type="select", options=["Free", "Pro"])
    AttributeFactory(agent=agent, key="city", type="text")


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [c["name"] for c in response.json()["results"]]


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_the_list_answers_pages_of_contacts_in_spec_shape(api, agent):
    for n in range(3):
        ContactFactory(agent=agent, name=f"P{n}")
    body = api.get(URL).json()
    assert set(body) == {"results", "next", "previous"}
    assert [c["name"] for c in body["results"]] == ["P2", "P1", "P0"]  # newest first
    assert all(set(c) == CONTACT_FIELDS for c in body["results"])
    assert body["next"] is None
    assert body["previous"] is None


def test_cursor_pages_visit_every_contact_once_while_contacts_are_added(api, agent):
    now = timezone.now()
    existing = {
        str(ContactFactory(agent=agent, created_at=now - timedelta(minutes=n)).pk)
        for n in range(23)
    }
    seen: list[str] = []
    url = f"{URL}?page_size=5"
    pages = 0
    while url:
        body = api.get(url).json()
        seen += [c["id"] for c in body["results"]]
        # Someone adds contacts between page fetches; they are newer, so before the cursor.
        ContactFactory(agent=agent)
        url = _path(body["next"]) if body["next"] else None
        pages += 1
    assert pages == 5
    assert len(seen) == len(set(seen))
    assert set(seen) == existing


@pytest.mark.parametrize("ordering", ["name", "-name", "email", "attr.mrr", "-attr.mrr"])
def test_cursor_pages_walk_forward_and_back_in_any_ordering(api, agent, schema, ordering):
    for n in range(11):
        ContactFactory(agent=agent, name=f"N{n % 4}", attributes={"mrr": n % 3} if n % 2 else {})
    first = api.get(f"{URL}?page_size=4&ordering={ordering}").json()
    second = api.get(_path(first["next"])).json()
    third = api.get(_path(second["next"])).json()
    assert third["next"] is None
    everything = [c["id"] for page in (first, second, third) for c in page["results"]]
    assert len(everything) == len(set(everything)) == 11
    back = api.get(_path(third["previous"])).json()
    assert [c["id"] for c in back["results"]] == [c["id"] for c in second["results"]]
    assert parse_qs(urlsplit(first["next"]).query)["ordering"] == [ordering]


def test_page_size_defaults_to_50_and_is_bounded(api, agent):
    ContactFactory.create_batch(51, agent=agent)
    assert len(api.get(URL).json()["results"]) == 50
    assert len(api.get(f"{URL}?page_size=500").json()["results"]) == 51
    for bad in ("0", "501", "ten", "-1", "1.5"):
        response = api.get(f"{URL}?page_size={bad}")
        assert response.status_code == 400
        assert error(response)["fields"] == {"page_size": ["Use a whole number from 1 to 500."]}


def test_search_tags_and_identity(api, agent):
    ada = ContactFactory(agent=agent, name="Ada Lovelace", identity=Identity.VERIFIED)
    ContactFactory(agent=agent, name="Bob", identity=Identity.SELF_REPORTED)
    cy = ContactFactory(agent=agent, name="Cy", identity=Identity.ANONYMOUS)
    vip, beta = TagFactory(agent=agent, name="vip"), TagFactory(agent=agent, name="beta")
    ada.tags.add(vip, beta)
    cy.tags.add(vip)
    assert names(api.get(f"{URL}?q=love")) == ["Ada Lovelace"]
    assert names(api.get(f"{URL}?tag=VIP&tag=beta")) == ["Ada Lovelace"]
    assert names(api.get(f"{URL}?tag=vip&ordering=name")) == ["Ada Lovelace", "Cy"]
    assert names(api.get(f"{URL}?identity=anonymous&identity=self_reported&ordering=name")) == [
        "Bob",
        "Cy",
    ]


def test_date_ranges(api, agent):
    now = timezone.now()
    ContactFactory(agent=agent, name="Old", created_at=now - timedelta(days=400))
    ContactFactory(agent=agent, name="Seen", last_seen_at=now - timedelta(hours=1))
    cut = (now - timedelta(days=30)).date().isoformat()
    assert names(api.get(f"{URL}?created_before={cut}")) == ["Old"]
    assert names(api.get(f"{URL}?created_after={cut}")) == ["Seen"]
    assert names(api.get(f"{URL}?last_seen_after={cut}")) == ["Seen"]
    assert names(api.get(f"{URL}?updated_before={cut}")) == []


def test_attribute_filters_compare_by_type(api, agent, schema):
    ContactFactory(agent=agent, name="Nine", attributes={"mrr": 9, "signup": "2023-12-31"})
    ContactFactory(agent=agent, name="Ten", attributes={"mrr": 10, "plan": "Pro"})
    ContactFactory(agent=agent, name="Hundred", attributes={"mrr": 100, "city": "Paris"})
    ContactFactory(agent=agent, name="Blank", attributes={})
    # As numbers 9 < 10 < 100 (as text "9" would sort above "100").
    assert names(api.get(f"{URL}?attr.mrr__gt=9&ordering=attr.mrr")) == ["Ten", "Hundred"]
    assert names(api.get(f"{URL}?attr.mrr__lte=10&ordering=attr.mrr")) == ["Nine", "Ten"]
    assert names(api.get(f"{URL}?attr.mrr=100")) == ["Hundred"]
    assert names(api.get(f"{URL}?attr.signup__lt=2024-01-01")) == ["Nine"]
    assert names(api.get(f"{URL}?attr.plan=pro")) == ["Ten"]
    assert names(api.get(f"{URL}?attr.city__contains=AR")) == ["Hundred"]
    assert names(api.get(f"{URL}?ordering=-attr.mrr")) == ["Hundred", "Ten", "Nine", "Blank"]


def test_not_equal_and_presence_filters(api, agent, schema):
    ContactFactory(agent=agent, name="Pro", attributes={"plan": "Pro", "mrr": 0})
    ContactFactory(agent=agent, name="Free", attributes={"plan": "Free"})
    ContactFactory(agent=agent, name="None", attributes={})
    ordered = "&ordering=name"
    # "Is not Pro" keeps contacts without a plan: they are not on Pro either.
    assert names(api.get(f"{URL}?attr.plan__ne=pro{ordered}")) == ["Free", "None"]
    assert names(api.get(f"{URL}?attr.plan__exists=true{ordered}")) == ["Free", "Pro"]
    assert names(api.get(f"{URL}?attr.plan__exists=false{ordered}")) == ["None"]
    # A stored zero is a value.
    assert names(api.get(f"{URL}?attr.mrr__exists=true{ordered}")) == ["Pro"]
    assert names(api.get(f"{URL}?attr.mrr__ne=0{ordered}")) == ["Free", "None"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("attr.mrr__gt=lots", "attr.mrr__gt"),
        ("attr.nope=1", "attr.nope"),
        ("attr.city__gt=a", "attr.city__gt"),
        ("attr.beta__gt=true", "attr.beta__gt"),
        ("attr.signup__ne=2024-01-01", "attr.signup__ne"),
        ("attr.plan__exists=perhaps", "attr.plan__exists"),
        ("attr.mrr__contains=1", "attr.mrr__contains"),
        ("attr.plan__ne=Gold", "attr.plan__ne"),
        ("identity=vip", "identity"),
        ("created_after=2024-13-45", "created_after"),
        ("created_before=9999-12-31", None),
        ("updated_after=0001-01-01T00:00:00%2B05:00", "updated_after"),
        ("ordering=shoe_size", "ordering"),
        ("deleted=maybe", "deleted"),
        ("cursor=garbage", "cursor"),
        ("q=a%00b", "q"),
        ("tag=%00", "tag"),
        ("seen=", "seen"),
        ("identity=", "identity"),
        ("match=", "match"),
        ("match=some", "match"),
        ("deleted=", "deleted"),
        ("page_size=", "page_size"),
        ("include_archived_attributes=", "include_archived_attributes"),
        ("q=&tag=&ordering=&cursor=&created_after=", None),
    ],
)
def test_bad_parameters_answer_400_naming_them(api, agent, schema, query, field):
    response = api.get(f"{URL}?{query}")
    if field is None:  # valid after all
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert field in error(response)["fields"]


def test_a_cursor_of_another_ordering_is_refused(api, agent):
    ContactFactory.create_batch(3, agent=agent)
    nxt = api.get(f"{URL}?page_size=1&ordering=name").json()["next"]
    cursor = parse_qs(urlsplit(nxt).query)["cursor"][0]
    response = api.get(f"{URL}?ordering=email&cursor={cursor}")
    assert response.status_code == 400
    assert "another ordering" in error(response)["fields"]["cursor"][0]


@pytest.mark.parametrize(
    ("ordering", "value"),
    [
        ("name", {"x": 1}),
        ("name", 5),
        ("name", "a\x00b"),
        ("attr.mrr", "ten"),
        ("attr.mrr", 10**400),
        ("attr.mrr", float("nan")),
        ("-created_at", "yesterday"),
        ("-created_at", "2024-01-01T00:00:00"),
        ("-created_at", 3),
    ],
)
def test_forged_cursors_are_refused_before_they_reach_sql(api, agent, schema, ordering, value):
    ContactFactory(agent=agent, attributes={"mrr": 1})
    for pk in ("01890a5d-ac96-774b-bcce-b302099a8057", "not-an-id"):
        payload = json.dumps({"o": ordering, "v": value, "i": pk, "d": "next"}).encode()
        cursor = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        response = api.get(f"{URL}?ordering={ordering}&cursor={cursor}")
        if connection.vendor == "postgresql" and ordering.startswith("attr."):
            # jsonb compares values of any type; only unstorable ones are refused.
            assert response.status_code in (200, 400)
        else:
            assert response.status_code == 400, (value, pk)
        if response.status_code == 400:
            assert "cursor" in error(response)["fields"]


def test_the_list_runs_a_fixed_number_of_queries(api, agent, key):
    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(f"{URL}?page_size=100").status_code == 200
        return len(ctx.captured_queries)

    count()  # the first call records the key's last use (once a minute)
    tag = TagFactory(agent=agent)
    for _ in range(3):
        ContactFactory(agent=agent).tags.add(tag)
    few = count()
    for _ in range(30):
        ContactFactory(agent=agent).tags.add(tag)
    assert count() == few
    # key lookup, the key's rate counter, attribute schema, the page, its tags, its Stripe
    # accounts
    assert few == 6
