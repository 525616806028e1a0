from __future__ import annotations

import pytest

from attributes.models import AttributeDefinition
from contacts.models import Contact
from tests.factories import AttributeFactory, ContactFactory
from tests.helpers import HX, agent_url

pytestmark = pytest.mark.django_db


def _keys(agent) -> list[str]:
    return list(
        AttributeDefinition.objects.filter(agent=agent, archived=False)
        .order_by("position", "id")
        .values_list("key", flat=True)
    )


def _url(name: str, agent, key: str | None = None) -> str:
    return agent_url(f"attributes:{name}", agent, **({"key": key} if key else {}))


def test_the_schema_page_lists_attributes_and_archived_ones_apart(admin_client, agent, schema):
    schema["city"].archived = True
    schema["city"].save()
    html = admin_client.get(_url("schema", agent)).content.decode()
    assert "Lifetime value" in html
    assert "Free, Pro" in html
    assert 'data-archived-key="city"' in html
    assert 'data-key="city"' not in html
    assert 'class="badge badge-secure"' in html


def test_creating_an_attribute(admin_client, agent):
    response = admin_client.post(
        _url("schema", agent),
        {
            "key": "plan",
            "label": "Plan",
            "type": "select",
            "options": "Free\n Pro \n\n",
            "secure": "on",
        },
    )
    assert response.status_code == 302
    definition = AttributeDefinition.objects.get(agent=agent, key="plan")
    assert (definition.type, definition.options, definition.secure) == (
        "select",
        ["Free", "Pro"],
        True,
    )
    assert "Added the attribute “Plan”." in admin_client.get(response.url).content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"key": "Bad Key", "type": "text"}, "Keys start with a lowercase letter"),
        ({"key": "plan", "type": "select", "options": ""}, "needs at least one option"),
        ({"key": "plan", "type": "select", "options": "A\na"}, "listed twice"),
        ({"key": "mrr", "type": "number", "options": "x"}, "Only select attributes have options"),
        ({"key": "plan", "type": "colour"}, "Select a valid choice"),
    ],
)
def test_bad_definitions_are_inline_errors(admin_client, agent, data, message):
    response = admin_client.post(_url("schema", agent), data)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not AttributeDefinition.objects.exists()


def test_a_duplicate_key_is_refused(admin_client, agent):
    AttributeFactory(agent=agent, key="plan")
    response = admin_client.post(_url("schema", agent), {"key": "plan", "type": "text"})
    assert response.status_code == 422
    assert "already exists" in response.content.decode()
    assert AttributeDefinition.objects.count() == 1


def test_editing_label_description_options_and_the_secure_flag(admin_client, agent, schema):
    response = admin_client.post(
        _url("edit", agent, "plan"),
        {"label": "Plan tier", "description": "Billing plan", "options": "Free\nPro\nTeam"},
    )
    assert response.status_code == 302
    plan = AttributeDefinition.objects.get(agent=agent, key="plan")
    assert (plan.label, plan.description, plan.options, plan.secure) == (
        "Plan tier",
        "Billing plan",
        ["Free", "Pro", "Team"],
        False,
    )
    form = admin_client.get(_url("edit", agent, "mrr")).content.decode()
    assert 'name="options"' not in form  # only select attributes have options


def test_an_option_in_use_cannot_be_removed(admin_client, agent, schema):
    ContactFactory(agent=agent, attributes={"plan": "Pro"})
    response = admin_client.post(_url("edit", agent, "plan"), {"label": "Plan", "options": "Free"})
    assert response.status_code == 422
    assert "in use by 1 contact" in response.content.decode()
    assert AttributeDefinition.objects.get(agent=agent, key="plan").options == ["Free", "Pro"]


def test_archive_and_restore(admin_client, agent, schema):
    response = admin_client.post(_url("archive", agent, "city"), **HX)
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="attribute-table"')
    assert 'data-archived-key="city"' in response.content.decode()
    assert AttributeDefinition.objects.get(agent=agent, key="city").archived
    assert admin_client.post(_url("restore", agent, "city")).status_code == 302
    assert not AttributeDefinition.objects.get(agent=agent, key="city").archived


def test_moving_and_reordering(admin_client, agent, schema):
    before = _keys(agent)
    admin_client.post(_url("move", agent, "mrr"), {"direction": "up"})
    assert _keys(agent)[:2] == ["mrr", "plan"]
    admin_client.post(_url("move", agent, "mrr"), {"direction": "down"})
    assert _keys(agent) == before
    response = admin_client.post(_url("reorder", agent), {"key": ["city", "website"]}, **HX)
    assert response.status_code == 200
    assert _keys(agent)[:2] == ["city", "website"]
    assert admin_client.post(_url("reorder", agent), {"key": ["nope"]}).status_code == 400
    assert (
        admin_client.post(_url("move", agent, "mrr"), {"direction": "sideways"}).status_code == 400
    )


def test_delete_confirmation_says_how_many_contacts_hold_a_value(admin_client, agent, schema):
    ContactFactory(agent=agent, attributes={"city": "Paris", "mrr": 1})
    ContactFactory(agent=agent, attributes={"city": "Oslo"})
    ContactFactory(agent=agent, attributes={"mrr": 2})
    page = admin_client.get(_url("delete", agent, "city")).content.decode()
    assert 'data-value-count="2"' in page
    assert "2 contacts" in page
    response = admin_client.post(_url("delete", agent, "city"))
    assert response.status_code == 302
    assert not AttributeDefinition.objects.filter(agent=agent, key="city").exists()
    assert sorted((c.attributes for c in Contact.objects.all()), key=str) == sorted(
        [{"mrr": 1}, {}, {"mrr": 2}], key=str
    )
    assert "its value on 2 contacts" in admin_client.get(response.url).content.decode()


ADMIN_ACTIONS = [
    ("get", "schema", None),
    ("post", "schema", None),
    ("get", "edit", "plan"),
    ("post", "edit", "plan"),
    ("post", "archive", "plan"),
    ("post", "restore", "plan"),
    ("post", "move", "plan"),
    ("post", "reorder", None),
    ("get", "delete", "plan"),
    ("post", "delete", "plan"),
]


@pytest.mark.parametrize(("method", "name", "key"), ADMIN_ACTIONS)
def test_staff_cannot_reach_the_schema(staff_client, agent, schema, method, name, key):
    response = getattr(staff_client, method)(_url(name, agent, key), {"key": "x", "type": "text"})
    assert response.status_code == 403
    assert AttributeDefinition.objects.filter(agent=agent).count() == len(schema)
    assert not AttributeDefinition.objects.get(agent=agent, key="plan").archived


@pytest.mark.parametrize(("method", "name", "key"), ADMIN_ACTIONS)
def test_another_workspace_answers_404(admin_client, other_agent, method, name, key):
    AttributeFactory(agent=other_agent, key="plan")
    response = getattr(admin_client, method)(_url(name, other_agent, key), {"label": "Hacked"})
    assert response.status_code == 404
    assert AttributeDefinition.objects.get(agent=other_agent, key="plan").label != "Hacked"


@pytest.mark.parametrize(
    ("name", "key"), [("archive", "plan"), ("restore", "plan"), ("move", "plan"), ("reorder", None)]
)
def test_mutating_views_reject_get(admin_client, agent, schema, name, key):
    assert admin_client.get(_url(name, agent, key)).status_code == 405


def test_an_unknown_key_is_404(admin_client, agent):
    assert admin_client.get(_url("edit", agent, "nope")).status_code == 404
    assert admin_client.post(_url("archive", agent, "nope")).status_code == 404


def test_labels_render_as_text(admin_client, agent):
    AttributeFactory(agent=agent, key="x", label="<script>alert(1)</script>")
    html = admin_client.get(_url("schema", agent)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
