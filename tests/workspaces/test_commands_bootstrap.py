from __future__ import annotations

import io
import json

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from workspaces.models import Agent, ApiKey, Membership, Workspace
from workspaces.selectors import api_key_lookup, identity_secrets_valid

pytestmark = pytest.mark.django_db


def _bootstrap(*args: str) -> dict:
    out = io.StringIO()
    call_command("bootstrap", *args, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_it_prints_one_json_line_with_working_credentials():
    data = _bootstrap(
        "--workspace", "acme", "--agent", "support",
        "--admin-email", "Boss@Acme.test", "--admin-password", "s3cret-pass",
    )  # fmt: skip
    assert set(data) == {
        "workspace", "agent_id", "agent_public_id", "api_key", "identity_secret", "admin_email",
    }  # fmt: skip
    agent = Agent.objects.get(pk=data["agent_id"])
    assert agent.public_id == data["agent_public_id"]
    assert api_key_lookup(raw_key=data["api_key"]).agent == agent
    assert identity_secrets_valid(agent=agent) == [data["identity_secret"]]
    token = jwt.encode({"user_id": "1"}, data["identity_secret"], algorithm="HS256")
    assert jwt.decode(token, data["identity_secret"], algorithms=["HS256"])["user_id"] == "1"
    user = get_user_model().objects.get(username="boss@acme.test")
    assert user.check_password("s3cret-pass")
    assert Membership.objects.get(user=user).role == "admin"


def test_running_it_again_reuses_everything_and_makes_a_key_only_when_asked():
    first = _bootstrap("--workspace", "acme", "--agent", "support")
    second = _bootstrap("--workspace", "acme", "--agent", "support")
    assert second["agent_id"] == first["agent_id"]
    assert second["identity_secret"] == first["identity_secret"]
    assert second["api_key"] is None
    assert ApiKey.objects.count() == 1
    third = _bootstrap("--workspace", "acme", "--agent", "support", "--new-api-key")
    assert third["api_key"]
    assert third["api_key"] != first["api_key"]
    assert ApiKey.objects.count() == 2
    assert Workspace.objects.count() == 1
    assert Agent.objects.count() == 1


def test_api_keys_and_identity_secrets_are_not_stored_in_clear():
    data = _bootstrap("--workspace", "acme", "--agent", "support")
    key = ApiKey.objects.get()
    assert data["api_key"] not in (key.key_hash, key.prefix)
    assert data["api_key"].startswith(key.prefix)
    secret_row = Agent.objects.get().identity_secrets.get()
    assert data["identity_secret"] not in secret_row.secret_encrypted


def test_it_refuses_a_password_without_an_email():
    with pytest.raises(CommandError, match="--admin-email"):
        call_command("bootstrap", "--workspace", "a", "--agent", "b", "--admin-password", "x")
