"""The OpenAPI schema describes the real bodies and every status of each endpoint."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from tests.helpers import CONTACT_FIELDS

pytestmark = pytest.mark.django_db

OPERATIONS = {
    # 404: a `segment` that is private, another agent's or unknown.
    ("get", "/api/v1/contacts/"): {"200", "400", "401", "404", "429"},
    ("post", "/api/v1/contacts/"): {"200", "201", "400", "401", "409", "413", "415", "429"},
    ("post", "/api/v1/contacts/bulk/"): {"200", "400", "401", "413", "415", "429"},
    ("post", "/api/v1/contacts/ensure/"): {"200", "201", "400", "401", "413", "415", "429"},
    ("post", "/api/v1/contacts/merge/"): {"200", "400", "401", "404", "409", "413", "415", "429"},
    ("get", "/api/v1/contacts/{contact_id}/"): {"200", "400", "401", "404", "429"},
    ("patch", "/api/v1/contacts/{contact_id}/"): {
        "200", "400", "401", "404", "409", "413", "415", "429",
    },
    ("delete", "/api/v1/contacts/{contact_id}/"): {"204", "401", "404", "429"},
    ("post", "/api/v1/contacts/{contact_id}/restore/"): {"200", "401", "404", "429"},
    ("post", "/api/v1/contacts/{contact_id}/erase/"): {"204", "401", "404", "429"},
    ("post", "/api/v1/contacts/{contact_id}/tags/"): {
        "200", "400", "401", "404", "413", "415", "429",
    },
    ("delete", "/api/v1/contacts/{contact_id}/tags/{tag}/"): {"204", "400", "401", "404", "429"},
    ("get", "/api/v1/contacts/{contact_id}/conversations/"): {"200", "400", "401", "404", "429"},
    ("post", "/api/v1/contacts/{contact_id}/identity-token"): {"200", "401", "404", "409", "429"},
    ("get", "/api/v1/segments/"): {"200", "400", "401", "429"},
    ("get", "/api/v1/tags/"): {"200", "401", "429"},
    ("get", "/api/v1/attributes/"): {"200", "401", "429"},
    ("post", "/api/v1/attributes/"): {"201", "400", "401", "409", "413", "415", "429"},
    ("get", "/api/v1/attributes/{key}/"): {"200", "401", "404", "429"},
    ("patch", "/api/v1/attributes/{key}/"): {
        "200", "400", "401", "404", "409", "413", "415", "429",
    },
    ("delete", "/api/v1/attributes/{key}/"): {"200", "400", "401", "404", "409", "429"},
    ("post", "/api/v1/attributes/{key}/archive/"): {"200", "401", "404", "429"},
    ("post", "/api/v1/attributes/{key}/restore/"): {"200", "401", "404", "429"},
}  # fmt: skip


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_every_endpoint_documents_each_status_it_can_answer(schema):
    for (method, path), statuses in OPERATIONS.items():
        operation = schema["paths"][path][method]
        # Any call can meet a database that is briefly unreachable.
        assert set(operation["responses"]) == statuses | {"503"}, (method, path)
        assert operation["security"] == [{"ApiKey": []}]


def test_every_answer_has_a_real_body_schema(schema):
    for (method, path), _statuses in OPERATIONS.items():
        for status, response in schema["paths"][path][method]["responses"].items():
            if status == "204":
                assert "content" not in response
                continue
            body = _resolve(schema, response["content"]["application/json"]["schema"])
            assert body["type"] == "object", (method, path, status)
            assert body["properties"], (method, path, status)
            if status.startswith(("4", "5")):
                assert set(body["properties"]) == {"error"}


def test_request_bodies_are_described_and_refuse_unknown_fields(schema):
    for (method, path), _statuses in OPERATIONS.items():
        operation = schema["paths"][path][method]
        if "requestBody" not in operation:
            continue
        body = _resolve(schema, operation["requestBody"]["content"]["application/json"]["schema"])
        assert body["properties"], (method, path)
        assert body["additionalProperties"] is False, (method, path)


def test_the_contact_schema_has_exactly_the_spec_5_fields(schema):
    contact = schema["components"]["schemas"]["Contact"]
    assert set(contact["properties"]) == CONTACT_FIELDS
    assert set(contact["required"]) == CONTACT_FIELDS
    assert contact["properties"]["external_id"]["nullable"] is True
    assert contact["properties"]["identity"] == {"$ref": "#/components/schemas/IdentityEnum"}
    writable = schema["components"]["schemas"]["ContactWrite"]["properties"]
    assert set(writable) == {
        "external_id", "name", "email", "phone", "avatar_url", "company", "identity",
        "attributes", "tags", "stripe_accounts",
    }  # fmt: skip


def test_throttled_and_unauthorized_answers_document_their_headers(schema):
    responses = schema["paths"]["/api/v1/contacts/"]["get"]["responses"]
    assert "Retry-After" in responses["429"]["headers"]
    assert "WWW-Authenticate" in responses["401"]["headers"]


def test_the_docs_page_uses_local_assets(db):
    page = Client().get("/api/v1/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    # Every script, stylesheet and icon is ours (the page also holds a random CSRF token,
    # so searching it for a word like "cdn" would fail by chance).
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets
    # Its start-up script is served by the docs URL itself (?script=), never inline.
    assert all(url.startswith(("/static/", "/api/v1/docs/?")) for url in assets), assets
    assert "<style" not in page
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []
    script = Client().get("/api/v1/docs/", {"script": ""})
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
