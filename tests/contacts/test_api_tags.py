from __future__ import annotations

import pytest
from django.utils import timezone

from contacts.models import Tag
from tests.factories import ContactFactory, TagFactory
from tests.helpers import error

pytestmark = pytest.mark.django_db


def test_adding_tags_reuses_existing_names_ignoring_case(api, agent):
    TagFactory(agent=agent, name="VIP")
    contact = ContactFactory(agent=agent)
    response = api.post(f"/api/v1/contacts/{contact.pk}/tags/", {"tags": ["vip", "New one"]})
    assert response.status_code == 200
    assert response.json()["tags"] == ["New one", "VIP"]
    assert Tag.objects.filter(agent=agent).count() == 2
    again = api.post(f"/api/v1/contacts/{contact.pk}/tags/", {"tags": ["VIP"]})
    assert again.json()["tags"] == ["New one", "VIP"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tags": []}, "tags"),
        ({"tags": "vip"}, "tags"),
        ({"tags": [""]}, "tags"),
        ({"tags": [3]}, "tags[0]"),
        ({"tags": ["x" * 65]}, "tags"),
        ({}, "tags"),
    ],
)
def test_bad_tags_are_refused(api, agent, body, field):
    contact = ContactFactory(agent=agent)
    response = api.post(f"/api/v1/contacts/{contact.pk}/tags/", body)
    assert response.status_code == 400
    assert field in error(response)["fields"]
    assert not Tag.objects.exists()


def test_removing_one_tag(api, agent):
    contact = ContactFactory(agent=agent)
    contact.tags.add(TagFactory(agent=agent, name="VIP"), TagFactory(agent=agent, name="a/b"))
    assert api.delete(f"/api/v1/contacts/{contact.pk}/tags/vip/").status_code == 204
    assert api.delete(f"/api/v1/contacts/{contact.pk}/tags/a/b/").status_code == 204
    assert list(contact.tags.all()) == []
    # Removing a tag the contact does not carry changes nothing.
    assert api.delete(f"/api/v1/contacts/{contact.pk}/tags/vip/").status_code == 204
    assert Tag.objects.filter(agent=agent).count() == 2  # the agent's tags stay


def test_tags_list_counts_live_contacts(api, agent, other_agent):
    vip, beta = TagFactory(agent=agent, name="vip"), TagFactory(agent=agent, name="Beta")
    TagFactory(agent=agent, name="unused")
    TagFactory(agent=other_agent, name="secret")
    ContactFactory(agent=agent).tags.add(vip, beta)
    ContactFactory(agent=agent).tags.add(vip)
    ContactFactory(agent=agent, deleted_at=timezone.now()).tags.add(vip)
    response = api.get("/api/v1/tags/")
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"name": "Beta", "contact_count": 1},
            {"name": "unused", "contact_count": 0},
            {"name": "vip", "contact_count": 2},
        ]
    }
