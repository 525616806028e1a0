from __future__ import annotations

import pytest
from django.test import Client

from workspaces.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(agent):
    return api_key_create(agent=agent, name="test")


def test_a_valid_key_sees_its_agent(agent, key):
    response = Client().get("/api/v1/agent/", HTTP_AUTHORIZATION=f"Bearer {key.raw}")
    assert response.status_code == 200
    assert response.json() == {
        "id": agent.pk,
        "public_id": agent.public_id,
        "name": "Support",
        "workspace": "Acme",
        "default_phone_region": "US",
    }
    key.api_key.refresh_from_db()
    assert key.api_key.last_used_at is not None


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Authentication credentials were not provided."),
        ("Bearer nope", "The API key is unknown or has been revoked."),
        ("Basic abc", "Use the header Authorization: Bearer <api_key>."),
    ],
)
def test_missing_or_bad_keys_get_401_in_the_error_shape(key, header, message):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = Client().get("/api/v1/agent/", **extra)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {"error": {"code": "unauthorized", "message": message, "fields": {}}}


def test_a_revoked_key_is_refused(key):
    api_key_revoke(api_key=key.api_key)
    response = Client().get("/api/v1/agent/", HTTP_AUTHORIZATION=f"Bearer {key.raw}")
    assert response.status_code == 401


def test_keys_are_throttled_with_retry_after(key, settings):
    # Hour windows: a minute boundary cannot fall between the calls of the test.
    settings.API_RATE_LIMIT = "2/hour"
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key.raw}")
    assert client.get("/api/v1/agent/").status_code == 200
    assert client.get("/api/v1/agent/").status_code == 200
    response = client.get("/api/v1/agent/")
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 3600
    assert response.json()["error"]["code"] == "throttled"


def test_the_schema_and_docs_are_served_without_a_key(db):
    schema = Client().get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/agent/" in schema.content
    docs = Client().get("/api/v1/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui-bundle.js" in docs.content  # local assets: tests/core/test_api_schema.py
