from __future__ import annotations

import pytest

from attributes.models import AttributeDefinition
from contacts.models import Contact
from tests.factories import AttributeFactory, ContactFactory
from tests.helpers import error

pytestmark = pytest.mark.django_db

URL = "/api/v1/attributes/"
FIELDS = {
    "key", "label", "type", "description", "options", "secure", "archived", "position",
    "created_at", "updated_at",
}  # fmt: skip


def test_create_list_and_fetch(api, agent):
    response = api.post(
        URL, {"key": "plan", "type": "select", "options": ["Free", "Pro"], "secure": True}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == FIELDS
    assert body | {"created_at": None, "updated_at": None} == {
        "key": "plan",
        "label": "Plan",
        "type": "select",
        "description": "",
        "options": ["Free", "Pro"],
        "secure": True,
        "archived": False,
        "position": 1,
        "created_at": None,
        "updated_at": None,
    }
    api.post(URL, {"key": "signup_date", "type": "date", "label": "Signed up"})
    listed = api.get(URL).json()["results"]
    assert [(a["key"], a["label"], a["position"]) for a in listed] == [
        ("plan", "Plan", 1),
        ("signup_date", "Signed up", 2),
    ]
    assert api.get(f"{URL}plan/").json() == body
    assert api.get(f"{URL}nope/").status_code == 404
    assert api.get(f"{URL}Not%20A%20Key/").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"key": "Plan", "type": "text"}, 400, "key"),
        ({"key": "plan", "type": "money"}, 400, "type"),
        ({"key": "plan", "type": "select"}, 400, "options"),
        ({"key": "plan", "type": "text", "options": ["a"]}, 400, "options"),
        ({"key": "plan", "type": "select", "options": ["a", "A"]}, 400, "options"),
        ({"key": "plan", "type": "text", "secure": "yes"}, 400, "secure"),
        ({"key": "plan", "type": "text", "colour": "red"}, 400, "colour"),
        ({"type": "text"}, 400, "key"),
    ],
)
def test_bad_definitions_are_refused(api, agent, body, status, field):
    response = api.post(URL, body)
    assert response.status_code == status
    assert field in error(response)["fields"]
    assert not AttributeDefinition.objects.exists()


def test_a_taken_key_or_the_attribute_limit_is_409(api, agent, settings):
    AttributeFactory(agent=agent, key="plan")
    response = api.post(URL, {"key": "plan", "type": "text"})
    assert response.status_code == 409
    assert "already exists" in error(response)["message"]
    settings.MAX_ATTRIBUTES_PER_AGENT = 1
    assert api.post(URL, {"key": "other", "type": "text"}).status_code == 409


def test_patch_changes_label_description_options_and_secure_but_never_key_or_type(api, agent):
    AttributeFactory(agent=agent, key="plan", type="select", options=["Free", "Pro"])
    ContactFactory(agent=agent, attributes={"plan": "Pro"})
    response = api.patch(
        f"{URL}plan/",
        {
            "label": "Pricing plan",
            "description": "From billing",
            "options": ["Free", "Pro", "Team"],
        },
    )
    assert response.status_code == 200
    assert response.json()["label"] == "Pricing plan"
    assert response.json()["options"] == ["Free", "Pro", "Team"]
    refused = api.patch(f"{URL}plan/", {"key": "tier", "type": "text"})
    assert refused.status_code == 400
    assert error(refused)["fields"] == {
        "key": ["The key of an attribute cannot change."],
        "type": ["The type of an attribute cannot change; create a new attribute instead."],
    }
    in_use = api.patch(f"{URL}plan/", {"options": ["Free"]})
    assert in_use.status_code == 409
    assert "1 contact(s) hold 'Pro'" in error(in_use)["message"]
    definition = AttributeDefinition.objects.get(agent=agent, key="plan")
    assert definition.options == ["Free", "Pro", "Team"]


def test_archive_hides_values_from_contacts_and_restore_brings_them_back(api, agent):
    AttributeFactory(agent=agent, key="plan")
    contact = ContactFactory(agent=agent, attributes={"plan": "Pro"})
    archived = api.post(f"{URL}plan/archive/")
    assert archived.status_code == 200
    assert archived.json()["archived"] is True
    assert api.get(f"/api/v1/contacts/{contact.pk}/").json()["attributes"] == {}
    contact.refresh_from_db()
    assert contact.attributes == {"plan": "Pro"}  # kept
    restored = api.post(f"{URL}plan/restore/")
    assert restored.json()["archived"] is False
    assert api.get(f"/api/v1/contacts/{contact.pk}/").json()["attributes"] == {"plan": "Pro"}


def test_deleting_an_attribute_with_values_asks_for_confirmation(api, agent):
    AttributeFactory(agent=agent, key="plan")
    ContactFactory(agent=agent, attributes={"plan": "Pro"})
    ContactFactory(agent=agent, attributes={"plan": "Free", "other": 1})
    ContactFactory(agent=agent, attributes={})
    refused = api.delete(f"{URL}plan/")
    assert refused.status_code == 409
    err = error(refused)
    assert err["code"] == "confirmation_required"
    assert err["message"].startswith("2 contact(s) hold a value for 'plan'.")
    assert "?confirm=true" in err["message"]
    assert AttributeDefinition.objects.filter(key="plan").exists()
    assert api.delete(f"{URL}plan/?confirm=maybe").status_code == 400
    done = api.delete(f"{URL}plan/?confirm=true")
    assert done.status_code == 200
    assert done.json() == {"key": "plan", "values_removed": 2}
    assert not AttributeDefinition.objects.filter(key="plan").exists()
    assert sorted(len(c.attributes) for c in Contact.objects.all()) == [0, 0, 1]


def test_deleting_an_unused_attribute_needs_no_confirmation(api, agent):
    AttributeFactory(agent=agent, key="plan")
    response = api.delete(f"{URL}plan/")
    assert response.json() == {"key": "plan", "values_removed": 0}
    assert not AttributeDefinition.objects.exists()
