"""The table's attribute filter builder: conditions that fit the attribute's type, chips
that read as sentences, and a condition that cannot apply refused where it was written."""

from __future__ import annotations

import re
from html import unescape

import pytest

from tests.factories import ContactFactory
from tests.helpers import HX, list_url, table_names

pytestmark = pytest.mark.django_db


def _chips(response) -> list[str]:
    html = response.content.decode()
    return [unescape(c).strip() for c in re.findall(r'class="chip chip-filter">([^<]*)<', html)]


def _operators(response) -> dict[str, str]:
    """Builder condition → the attribute types it is offered for."""
    html = response.content.decode()
    select = re.search(r'<select name="fop".*?</select>', html, re.S).group(0)
    return dict(re.findall(r'<option value="([^"]+)" data-types="([^"]*)"', select))


def test_the_builder_offers_each_condition_for_the_types_it_fits(staff_client, agent, schema):
    offered = _operators(staff_client.get(list_url(agent)))
    assert set(offered["contains"].split()) == {"text", "url", "select"}
    assert "boolean" not in offered["gt"]
    assert "text" not in offered["gt"]
    # Contact fields have kinds of their own: tags, the conversation count.
    assert set(offered["ne"].split()) == {"text", "url", "select", "number", "tag", "count"}
    assert set(offered["exists"].split()) == set(offered["empty"].split())
    assert {"boolean", "date", "number", "text"} <= set(offered["empty"].split())
    # A select attribute's choices travel with its option, one per line, for the value list.
    html = staff_client.get(list_url(agent)).content.decode()
    assert 'data-type="select" data-options="Free&#10;Pro"' in html


@pytest.mark.parametrize(
    ("fkey", "fop", "fvalue", "message"),
    [
        ("mrr", "gte", "lots", "MRR must be a number."),
        ("plan", "eq", "Gold", "Plan must be one of: Free, Pro."),
        ("beta", "gt", "true", "“>” does not apply to Beta tester (yes / no)."),
        ("mrr", "contains", "1", "contains works on text attributes; MRR is number."),
        ("signup", "gte", "", "Give a value for Signup date."),
        ("nope", "eq", "1", "Choose an attribute to filter by."),
    ],
)
def test_a_condition_that_cannot_apply_is_refused_beside_the_builder(
    staff_client, agent, schema, fkey, fop, fvalue, message
):
    ContactFactory(agent=agent, name="Still Listed", attributes={"mrr": 5})
    url = list_url(agent)
    response = staff_client.get(url, {"tag": "", "fkey": fkey, "fop": fop, "fvalue": fvalue}, **HX)
    assert response.status_code == 422
    html = unescape(response.content.decode())
    assert f'id="builder-error">{message}<' in html
    # The table stays as it was: no chip that filters nothing, the same rows, the same URL.
    assert _chips(response) == []
    assert table_names(response) == ["Still Listed"]
    assert response["HX-Push-Url"] == url


def test_not_equal_and_presence_conditions_filter_and_read_as_sentences(
    staff_client, agent, schema
):
    ContactFactory(agent=agent, name="On Pro", attributes={"plan": "Pro", "signup": "2024-02-01"})
    ContactFactory(agent=agent, name="On Free", attributes={"plan": "Free"})
    ContactFactory(agent=agent, name="No Plan", attributes={})
    url = list_url(agent)

    not_pro = staff_client.get(url, {"fkey": "plan", "fop": "ne", "fvalue": "Pro"})
    assert not_pro.status_code == 302
    assert not_pro.url == f"{url}?attr.plan__ne=Pro"
    page = staff_client.get(f"{not_pro.url}&ordering=name")
    assert table_names(page) == ["No Plan", "On Free"]
    assert _chips(page) == ["Plan is not Pro"]

    empty = staff_client.get(url, {"fkey": "plan", "fop": "empty", "fvalue": ""})
    assert empty.url == f"{url}?attr.plan__exists=false"
    page = staff_client.get(empty.url)
    assert table_names(page) == ["No Plan"]
    assert _chips(page) == ["Plan is empty"]

    has = staff_client.get(url, {"fkey": "signup", "fop": "exists"})
    page = staff_client.get(has.url)
    assert table_names(page) == ["On Pro"]
    assert _chips(page) == ["Signup date has any value"]

    after = staff_client.get(url, {"fkey": "signup", "fop": "gt", "fvalue": "2024-01-15"})
    page = staff_client.get(after.url)
    assert table_names(page) == ["On Pro"]
    assert _chips(page) == ["Signup date after 2024-01-15"]
