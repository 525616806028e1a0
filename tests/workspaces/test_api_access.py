"""Every endpoint sees only its key's agent; keys are required; keys are throttled."""

from __future__ import annotations

import pytest
from django.test import Client

from attributes.models import AttributeDefinition
from contacts.models import Contact
from tests.factories import AttributeFactory, ContactFactory, TagFactory
from tests.helpers import error

pytestmark = pytest.mark.django_db


def _foreign_calls(contact_id, attribute_key, other_id):
    c = f"/api/v1/contacts/{contact_id}"
    a = f"/api/v1/attributes/{attribute_key}"
    return [
        ("get", f"{c}/", None),
        ("patch", f"{c}/", {"name": "Hacked"}),
        ("delete", f"{c}/", None),
        ("post", f"{c}/restore/", None),
        ("post", f"{c}/erase/", None),
        ("post", f"{c}/tags/", {"tags": ["x"]}),
        ("delete", f"{c}/tags/vip/", None),
        ("get", f"{c}/conversations/", None),
        ("post", "/api/v1/contacts/merge/", {"primary": str(other_id), "secondary": contact_id}),
        ("get", f"{a}/", None),
        ("patch", f"{a}/", {"label": "Hacked"}),
        ("delete", f"{a}/?confirm=true", None),
        ("post", f"{a}/archive/", None),
        ("post", f"{a}/restore/", None),
    ]


def test_another_agents_key_gets_404_for_this_agents_ids_and_changes_nothing(
    agent, other_agent, other_api
):
    contact = ContactFactory(agent=agent, name="Ada", external_id="ada")
    contact.tags.add(TagFactory(agent=agent, name="vip"))
    AttributeFactory(agent=agent, key="plan", label="Plan")
    theirs = ContactFactory(agent=other_agent)
    for method, path, body in _foreign_calls(str(contact.pk), "plan", theirs.pk):
        kwargs = {"content_type": "application/json"} if method in ("post", "patch") else {}
        response = getattr(other_api, method)(path, body, **kwargs)
        assert response.status_code == 404, (method, path, response.content)
        assert error(response)["code"] == "not_found"
    contact.refresh_from_db()
    assert (contact.name, contact.deleted_at) == ("Ada", None)
    assert [t.name for t in contact.tags.all()] == ["vip"]
    assert AttributeDefinition.objects.get(agent=agent, key="plan").label == "Plan"


def test_lists_and_upserts_never_reach_another_agent(agent, other_agent, api, other_api):
    ContactFactory(agent=other_agent, external_id="same", name="Theirs")
    TagFactory(agent=other_agent, name="secret")
    AttributeFactory(agent=other_agent, key="secret")
    assert api.get("/api/v1/contacts/").json()["results"] == []
    assert api.get("/api/v1/tags/").json() == {"results": []}
    assert api.get("/api/v1/attributes/").json() == {"results": []}
    created = api.post("/api/v1/contacts/", {"external_id": "same", "name": "Mine"})
    assert created.status_code == 201  # a different person: external ids are per agent
    assert Contact.objects.get(agent=other_agent).name == "Theirs"
    assert api.get("/api/v1/contacts/?q=theirs").json()["results"] == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/contacts/"),
        ("post", "/api/v1/contacts/"),
        ("post", "/api/v1/contacts/bulk/"),
        ("post", "/api/v1/contacts/ensure/"),
        ("get", "/api/v1/tags/"),
        ("get", "/api/v1/attributes/"),
        ("get", "/api/v1/contacts/01890a5d-ac96-774b-bcce-b302099a8057/"),
    ],
)
def test_calls_without_a_valid_key_get_401(agent, method, path):
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer rk_nope"}):
        response = getattr(Client(**headers), method)(path)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        assert error(response)["code"] == "unauthorized"
    assert not Contact.objects.exists()


def test_keys_are_throttled_with_429_and_retry_after(api, agent, settings):
    settings.API_RATE_LIMIT = "3/hour"
    for _ in range(3):
        assert api.get("/api/v1/contacts/").status_code == 200
    response = api.post("/api/v1/contacts/", {"name": "Late"})
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 3600
    assert error(response)["code"] == "throttled"
    assert not Contact.objects.exists()


def test_keys_are_throttled_separately(agent, api, other_api, settings):
    settings.API_RATE_LIMIT = "1/hour"
    assert api.get("/api/v1/tags/").status_code == 200
    assert api.get("/api/v1/tags/").status_code == 429
    assert other_api.get("/api/v1/tags/").status_code == 200
