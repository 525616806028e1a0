"""Inputs a red team sent that used to answer 500: each is now a clear 400 in the usual
error shape, and writes nothing."""

from __future__ import annotations

import base64
import json

import pytest

from contacts.models import Contact
from tests.factories import AttributeFactory, ContactFactory
from tests.helpers import list_url
from tests.identity.conftest import Widget, make_jwt

pytestmark = pytest.mark.django_db

OVERFLOWING = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]


@pytest.fixture
def seen_at(agent):
    return AttributeFactory(agent=agent, key="seen_at", label="Seen at", type="datetime")


@pytest.mark.parametrize("moment", OVERFLOWING)
def test_an_overflowing_time_is_a_field_error_on_every_write_path(agent, api, seen_at, moment):
    created = api.post(
        "/api/v1/contacts/", {"external_id": "u-1", "attributes": {"seen_at": moment}}
    )
    assert created.status_code == 400
    assert created.json()["error"]["code"] == "validation_error"
    assert "years 1 to 9999" in json.dumps(created.json()["error"]["fields"])

    signed = Widget(agent).jwt(user_id="u-2", contact_attributes={"seen_at": moment})
    assert signed.status_code == 400
    assert "years 1 to 9999" in signed.json()["error"]["message"]

    typed = Widget(agent).identify({"email": "a@example.com", "custom_data": {"seen_at": moment}})
    assert typed.status_code == 400
    assert "years 1 to 9999" in typed.json()["error"]["message"]
    assert not Contact.objects.filter(agent=agent).exists()


@pytest.mark.parametrize("moment", OVERFLOWING)
def test_an_overflowing_time_in_a_filter_is_a_parameter_error(
    agent, api, staff_client, seen_at, moment
):
    ContactFactory(agent=agent)
    for params in ({"created_after": moment}, {"attr.seen_at__gt": moment}):
        listed = api.get("/api/v1/contacts/", params)
        assert listed.status_code == 400, params
        assert listed.json()["error"]["code"] == "validation_error"
        exported = api.get("/api/v1/contacts/export/", {**params, "format": "csv"})
        assert exported.status_code == 400, params
    page = staff_client.get(list_url(agent), {"attr.seen_at__gt": moment})
    assert page.status_code == 200
    assert "outside the years 1 to 9999" in page.content.decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_a_deeply_nested_cursor_is_an_invalid_cursor(agent, api, staff_client):
    ContactFactory(agent=agent)
    deep = _b64(b"[" * 50000 + b"]" * 50000)
    listed = api.get("/api/v1/contacts/", {"cursor": deep})
    assert listed.status_code == 400
    assert "cursor" in listed.json()["error"]["fields"]
    page = staff_client.get(list_url(agent), {"cursor": deep})
    assert page.status_code == 200
    contact = ContactFactory(agent=agent)
    conversations = api.get(f"/api/v1/contacts/{contact.pk}/conversations/", {"cursor": deep})
    assert conversations.status_code == 400
    inbox = staff_client.get(f"/a/{agent.public_id}/inbox/", {"cursor": deep})
    assert inbox.status_code == 200


@pytest.mark.parametrize("moment", OVERFLOWING)
def test_a_cursor_naming_an_overflowing_time_is_an_invalid_cursor(agent, api, moment):
    contact = ContactFactory(agent=agent)
    cursor = _b64(json.dumps({"t": moment, "i": str(contact.pk)}).encode())
    response = api.get(f"/api/v1/contacts/{contact.pk}/conversations/", {"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("size", ["²", "٣", "1e3", "-1", "0", "501"])
def test_a_page_size_that_is_not_a_plain_number_is_refused(agent, api, size):
    response = api.get("/api/v1/contacts/", {"page_size": size})
    assert response.status_code == 400
    assert "page_size" in response.json()["error"]["fields"]


def test_a_deeply_nested_identify_body_is_a_json_400_with_cors(agent):
    widget = Widget(agent)
    body = '{"visitor_id": "v", "custom_data": ' + "[" * 20000 + "]" * 20000 + "}"
    response = widget.client.post(widget.url, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert response["Access-Control-Allow-Origin"] == "*"
    token = make_jwt(agent, user_id="u-1")
    nested = '{"visitor_id": "v", "token": "' + token + '", "user_metadata": '
    nested += '{"a":' * 9000 + "1" + "}" * 9000 + "}"  # under the 64 KB body limit
    response = widget.client.post(widget.url, nested, content_type="application/json")
    assert response.status_code == 400
    assert not Contact.objects.filter(agent=agent).exists()


def test_a_deeply_nested_api_body_is_a_json_400(agent, api):
    body = '{"external_id": "u-1", "attributes": ' + "[" * 20000 + "]" * 20000 + "}"
    response = api.post("/api/v1/contacts/", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"invalid_json", "parse_error", "validation_error"}
    assert not Contact.objects.filter(agent=agent).exists()


def test_a_lost_database_is_a_json_503(agent, api, monkeypatch):
    from django.db import InterfaceError

    def lost(*args, **kwargs):
        raise InterfaceError("connection already closed")

    monkeypatch.setattr("contacts.api.keyset_page", lost)
    response = api.get("/api/v1/contacts/")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response["Retry-After"] == "5"


@pytest.mark.parametrize("name", ["match", "seen", "identity", "deleted"])
def test_an_empty_choice_is_refused_by_the_list_and_the_export(agent, api, name):
    ContactFactory(agent=agent)
    for url, extra in (("/api/v1/contacts/", {}), ("/api/v1/contacts/export/", {"format": "csv"})):
        response = api.get(url, {name: "", **extra})
        assert response.status_code == 400, url
        assert response.json()["error"]["fields"][name] == [
            "Give a value, or leave the parameter out."
        ]
