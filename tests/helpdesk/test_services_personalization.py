"""render_action_template: every placeholder, unknown keys, and values that stay plain text."""

from __future__ import annotations

import pytest

from helpdesk.personalization import render_action_template
from tests.factories import AttributeFactory, ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def contact(agent):
    AttributeFactory(agent=agent, key="plan", type="select", options=["free", "pro"])
    AttributeFactory(agent=agent, key="seats", type="number")
    AttributeFactory(agent=agent, key="vip", type="boolean")
    AttributeFactory(agent=agent, key="renews_on", type="date")
    AttributeFactory(agent=agent, key="legacy_tier", archived=True)
    AttributeFactory(agent=agent, key="nickname")
    return ContactFactory(
        agent=agent,
        name="Ada Lovelace",
        email="ada@example.com",
        phone="+14155550100",
        external_id="user-42",
        attributes={
            "plan": "pro",
            "seats": 12,
            "vip": True,
            "renews_on": "2026-01-31",
            "legacy_tier": "gold",
        },
    )


def test_every_placeholder_is_filled(contact):
    template = (
        "{{contact.name}}|{{contact.email}}|{{contact.phone}}|{{contact.external_id}}|"
        "{{contact.attr.plan}}|{{contact.attr.seats}}|{{contact.attr.vip}}|"
        "{{ contact.attr.renews_on }}"
    )

    result = render_action_template(template, contact)

    assert result.text == (
        "Ada Lovelace|ada@example.com|+14155550100|user-42|pro|12|true|2026-01-31"
    )
    assert result.unknown_keys == []
    assert result.missing_keys == []


def test_unknown_keys_render_empty_and_are_reported_once(contact):
    template = (
        "a{{contact.favourite_colour}}b{{contact.attr.nope}}c{{contact.attr.legacy_tier}}"
        "d{{contact.attr.Bad-Key}}e{{contact.attr}}f{{contact.attr.nope}}"
    )

    result = render_action_template(template, contact)

    assert result.text == "abcdef"
    assert result.unknown_keys == [
        "contact.favourite_colour",
        "contact.attr.nope",
        "contact.attr.legacy_tier",  # archived attributes are not exposed
        "contact.attr.Bad-Key",
        "contact.attr",
    ]


def test_known_but_empty_values_are_reported_as_missing(contact):
    contact.phone = ""
    result = render_action_template("[{{contact.phone}}][{{contact.attr.nickname}}]", contact)

    assert result.text == "[][]"
    assert result.unknown_keys == []
    assert result.missing_keys == ["contact.phone", "contact.attr.nickname"]


def test_values_are_plain_text_never_template_syntax_or_html(contact):
    contact.name = "{{contact.email}} <script>alert(1)</script> & {{contact.attr.plan}}"
    contact.attributes["plan"] = "{{contact.phone}}"

    result = render_action_template("Hi {{contact.name}} on {{contact.attr.plan}}", contact)

    assert result.text == (
        "Hi {{contact.email}} <script>alert(1)</script> & {{contact.attr.plan}} "
        "on {{contact.phone}}"
    )
    assert "ada@example.com" not in result.text
    assert "+14155550100" not in result.text


def test_escape_modes_encode_values_and_leave_the_template_alone(contact):
    contact.name = 'Ada "A&B" <Lovelace>/x?y'
    contact.email = "ada+tag@example.com"

    url = render_action_template(
        "https://shop.test/orders?email={{contact.email}}&n={{contact.name}}", contact, escape="url"
    )
    as_json = render_action_template('{"name": "{{contact.name}}"}', contact, escape="json")
    as_html = render_action_template("<p>{{contact.name}}</p>", contact, escape="html")

    assert url.text == (
        "https://shop.test/orders?email=ada%2Btag%40example.com"
        "&n=Ada%20%22A%26B%22%20%3CLovelace%3E%2Fx%3Fy"
    )
    assert as_json.text == '{"name": "Ada \\"A&B\\" <Lovelace>/x?y"}'
    assert as_html.text == "<p>Ada &quot;A&amp;B&quot; &lt;Lovelace&gt;/x?y</p>"
    with pytest.raises(ValueError, match="escape must be one of"):
        render_action_template("x", contact, escape="sql")


def test_other_placeholders_are_left_for_whoever_fills_them(contact):
    result = render_action_template("{{order.id}} {{ input.query }} {{contact.name}}", contact)

    assert result.text == "{{order.id}} {{ input.query }} Ada Lovelace"
    assert result.unknown_keys == []


def test_without_a_contact_every_placeholder_is_empty(contact):
    definitions = {d.key: d for d in contact.agent.attribute_definitions.all()}

    result = render_action_template(
        "{{contact.email}}/{{contact.attr.plan}}/{{contact.attr.nope}}",
        None,
        definitions=definitions,
    )

    assert result.text == "//"
    assert result.missing_keys == ["contact.email", "contact.attr.plan"]
    assert result.unknown_keys == ["contact.attr.nope"]
