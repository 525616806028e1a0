from __future__ import annotations

import pytest
from django.test import Client

from workspaces.services import api_key_create

CONTACT_FIELDS = {
    "id", "external_id", "name", "email", "phone", "avatar_url", "company", "identity",
    "verified_at", "attributes", "tags", "stripe_accounts", "first_seen_at", "last_seen_at",
    "created_at", "updated_at", "deleted_at",
}  # fmt: skip


class ApiClient(Client):
    """A test client whose bodies are JSON unless told otherwise."""

    def post(self, path, data=None, content_type="application/json", **extra):
        return super().post(path, data, content_type=content_type, **extra)

    def patch(self, path, data="", content_type="application/json", **extra):
        return super().patch(path, data, content_type=content_type, **extra)


@pytest.fixture
def key(agent):
    return api_key_create(agent=agent, name="test")


@pytest.fixture
def api(key) -> ApiClient:
    """A client speaking for `agent` with its API key."""
    return ApiClient(HTTP_AUTHORIZATION=f"Bearer {key.raw}")


@pytest.fixture
def other_api(other_agent) -> ApiClient:
    """A client with the key of another workspace's agent."""
    return ApiClient(HTTP_AUTHORIZATION=f"Bearer {api_key_create(agent=other_agent, name='x').raw}")


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    return body["error"]
