"""The table's filter builder with contact fields, ranges and relative dates, and the
"match all / any" switch above the conditions."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import ContactFactory, TagFactory
from tests.helpers import HX, list_url, table_names

pytestmark = pytest.mark.django_db


def _chips(response) -> list[str]:
    html = response.content.decode()
    return [unescape(c).strip() for c in re.findall(r'class="chip chip-filter">([^<]*)<', html)]


def _match_choice(response) -> str | None:
    html = response.content.decode()
    found = re.search(r'<select id="filter-match".*?<option value="(\w+)"[^>]*selected', html, re.S)
    return found.group(1) if found else None


def test_the_builder_lists_contact_fields_and_attributes(staff_client, agent, schema):
    html = staff_client.get(list_url(agent)).content.decode()
    fields = re.search(r'<select name="fkey".*?</select>', html, re.S).group(0)
    assert '<optgroup label="Contact">' in fields
    assert '<option value="email" data-type="text"' in fields
    assert '<option value="last_seen_at" data-type="seen"' in fields
    assert '<option value="tag" data-type="tag"' in fields
    assert '<option value="attr.plan" data-type="select"' in fields
    operators = re.search(r'<select name="fop".*?</select>', html, re.S).group(0)
    assert re.search(r'value="within" data-types="date datetime moment seen"', operators)
    assert re.search(r'value="not_contains" data-types="text url select"', operators)
    assert re.search(r'value="between" data-types="number count"', operators)


@pytest.mark.parametrize(
    ("params", "location", "chip"),
    [
        (
            {"fkey": "email", "fop": "contains", "fvalue": "acme.com"},
            "email__contains=acme.com",
            "Email contains acme.com",
        ),
        (
            {"fkey": "attr.mrr", "fop": "between", "fvalue": "10", "fvalue2": "20"},
            "attr.mrr__between=10%2C20",
            "MRR between 10 and 20",
        ),
        (
            {"fkey": "last_seen_at", "fop": "within", "fvalue": "30"},
            "last_seen_at__within=30",
            "Last seen in the last 30 days",
        ),
        (
            {"fkey": "created_at", "fop": "older", "fvalue": "1"},
            "created_at__older=1",
            "Created more than 1 day ago",
        ),
        (
            {"fkey": "company", "fop": "not_contains", "fvalue": "Globex"},
            "company__not_contains=Globex",
            "Company does not contain Globex",
        ),
        ({"fkey": "tag", "fop": "empty"}, "tag__exists=false", "No tags"),
        ({"fkey": "plan", "fop": "eq", "fvalue": "Pro"}, "attr.plan=Pro", "Plan is Pro"),
    ],
)
def test_a_condition_from_the_builder_becomes_a_parameter_and_a_chip(
    staff_client, agent, schema, params, location, chip
):
    url = list_url(agent)
    response = staff_client.get(url, params)
    assert response.status_code == 302
    assert response.url == f"{url}?{location}"
    assert _chips(staff_client.get(response.url)) == [chip]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"fkey": "attr.mrr", "fop": "between", "fvalue": "10"},
            "Give both ends of the range for MRR.",
        ),
        (
            {
                "fkey": "created_at",
                "fop": "between",
                "fvalue": "2024-03-01",
                "fvalue2": "2024-01-01",
            },
            "The first value must not be after the second.",
        ),
        ({"fkey": "last_seen_at", "fop": "within", "fvalue": "0"}, "Give a number of days from 1"),
        (
            {"fkey": "conversation_count", "fop": "gt", "fvalue": "many"},
            "Conversations must be a whole",
        ),
        ({"fkey": "created_at", "fop": "exists"}, "“has any value” does not apply to Created"),
        ({"fkey": "phone", "fop": "eq", "fvalue": "12"}, "not a valid phone number"),
        ({"fkey": "attr.ghost", "fop": "eq", "fvalue": "1"}, "Choose an attribute to filter by."),
    ],
)
def test_a_condition_that_cannot_apply_is_refused_where_it_was_written(
    staff_client, agent, schema, params, message
):
    ContactFactory(agent=agent, name="Still Listed")
    response = staff_client.get(list_url(agent), params, **HX)
    assert response.status_code == 422
    html = unescape(response.content.decode())
    error = re.search(r'id="builder-error">([^<]*)<', html).group(1)
    assert message in error
    assert table_names(response) == ["Still Listed"]
    assert _chips(response) == []


def test_presence_has_no_value_to_give_and_exists_reads_as_words(staff_client, agent, schema):
    response = staff_client.get(list_url(agent), {"fkey": "created_at", "fop": "exists"}, **HX)
    # "has any value" is offered only where a contact can lack the value.
    assert response.status_code == 422


def test_match_any_appears_with_two_conditions_and_ors_them(staff_client, agent, schema):
    ContactFactory(agent=agent, name="Pro", attributes={"plan": "Pro"})
    ContactFactory(agent=agent, name="Busy", conversation_count=4)
    ContactFactory(agent=agent, name="Quiet")
    url = list_url(agent)
    one = staff_client.get(url, {"attr.plan": "Pro"})
    assert _match_choice(one) is None  # one condition: nothing to combine
    both = {"attr.plan": "Pro", "conversation_count__gte": "1", "ordering": "name"}
    page = staff_client.get(url, both)
    assert _match_choice(page) == "all"
    assert table_names(page) == []
    page = staff_client.get(url, {**both, "match": "any"})
    assert _match_choice(page) == "any"
    assert table_names(page) == ["Busy", "Pro"]
    html = page.content.decode()
    assert 'class="active-filters match-any"' in html
    # The switch carries the rest of the state and is a real form.
    form = re.search(r'<form class="match-form".*?</form>', html, re.S).group(0)
    assert 'name="attr.plan" value="Pro"' in form
    assert 'name="conversation_count__gte" value="1"' in form
    assert 'name="match" value=' not in form
    assert _chips(page) == ["Plan is Pro", "Conversations ≥ 1"]


def test_the_other_filters_stay_outside_the_any_group(staff_client, agent, schema):
    vip = TagFactory(agent=agent, name="vip")
    ContactFactory(agent=agent, name="Vip Pro", attributes={"plan": "Pro"}).tags.add(vip)
    ContactFactory(agent=agent, name="Pro", attributes={"plan": "Pro"})
    ContactFactory(agent=agent, name="Busy", conversation_count=3)
    page = staff_client.get(
        list_url(agent),
        {"tag": "vip", "attr.plan": "Pro", "conversation_count__gte": "1", "match": "any"},
    )
    assert table_names(page) == ["Vip Pro"]
    html = page.content.decode()
    # The tag chip comes before the switch, the conditions after it.
    assert html.index("Tag: vip") < html.index('id="filter-match"') < html.index("Plan is Pro")


def test_a_bad_condition_in_the_address_is_named_and_left_out(staff_client, agent, schema):
    ContactFactory(agent=agent, name="Ada", email="ada@acme.com")
    ContactFactory(agent=agent, name="Bob", email="bob@globex.com")
    page = staff_client.get(
        list_url(agent),
        {"email__contains": "acme", "created_at__gt": "someday", "ordering": "name"},
    )
    assert page.status_code == 200
    html = unescape(page.content.decode())
    assert "<strong>created_at__gt</strong>: 'someday' is not a date" in html
    assert table_names(page) == ["Ada"]


def test_conditions_keep_the_table_to_a_flat_number_of_queries(staff_client, agent, schema):
    vip = TagFactory(agent=agent, name="vip")
    now = timezone.now()
    params = {
        "match": "any",
        "tag__eq": "vip",
        "tag__ne": "churn",
        "last_seen_at__within": "30",
        "email__contains": "example",
        "attr.mrr__between": "1,500",
        "cols": "email,tags,attr.mrr",
    }
    for i in range(3):
        ContactFactory(agent=agent, last_seen_at=now, attributes={"mrr": i}).tags.add(vip)
    url = list_url(agent)
    staff_client.get(url, params)
    with CaptureQueriesContext(connection) as few:
        assert len(table_names(staff_client.get(url, params))) == 3
    for i in range(40):
        ContactFactory(agent=agent, last_seen_at=now - timedelta(days=i)).tags.add(vip)
    with CaptureQueriesContext(connection) as many:
        assert len(table_names(staff_client.get(url, params))) == 43
    assert len(many.captured_queries) == len(few.captured_queries)
