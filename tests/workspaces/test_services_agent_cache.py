"""The agent and identity secrets each process keeps for widget calls."""

from __future__ import annotations

import pytest

from identity.services import identity_settings_update
from tests.identity.conftest import Widget, make_jwt, secret_of
from workspaces import agent_cache, crypto
from workspaces.models import IdentitySecret
from workspaces.services import agent_update_settings, identity_secret_rotate

pytestmark = pytest.mark.django_db

ROTATED = "rsk_" + "n" * 43


def test_a_second_lookup_reads_nothing_and_hands_out_a_copy(agent, django_assert_num_queries):
    with django_assert_num_queries(2):  # the agent, its secrets
        first = agent_cache.cached_agent(public_id=agent.public_id)
    with django_assert_num_queries(0):
        again = agent_cache.cached_agent(public_id=agent.public_id)
        secrets = agent_cache.cached_identity_secrets(agent=again)
    assert first.pk == again.pk == agent.pk
    assert secrets == [secret_of(agent)]
    first.name = "Changed by a caller"
    assert agent_cache.cached_agent(public_id=agent.public_id).name == "Support"


def test_an_unknown_agent_is_none_and_asked_again_each_time(db, django_assert_num_queries):
    assert agent_cache.cached_agent(public_id="ag_nosuchagent") is None
    with django_assert_num_queries(1):
        assert agent_cache.cached_agent(public_id="ag_nosuchagent") is None


def test_entries_are_read_again_after_the_configured_seconds(agent, settings, monkeypatch):
    agent_cache.cached_agent(public_id=agent.public_id)
    type(agent).objects.filter(pk=agent.pk).update(default_phone_region="FR")  # another process
    assert agent_cache.cached_agent(public_id=agent.public_id).default_phone_region == "US"
    now = agent_cache.time.monotonic()
    monkeypatch.setattr(
        agent_cache, "time", type("Clock", (), {"monotonic": staticmethod(lambda: now + 6)})
    )
    assert settings.WIDGET_AGENT_CACHE_SECONDS == 5
    assert agent_cache.cached_agent(public_id=agent.public_id).default_phone_region == "FR"


def test_zero_seconds_keeps_nothing(agent, settings, django_assert_num_queries):
    settings.WIDGET_AGENT_CACHE_SECONDS = 0
    agent_cache.cached_agent(public_id=agent.public_id)
    with django_assert_num_queries(2):
        agent_cache.cached_agent(public_id=agent.public_id)


def test_changes_made_through_this_process_are_seen_at_once(agent):
    agent_cache.cached_agent(public_id=agent.public_id)
    identity_settings_update(agent=agent, from_signed=True, from_unsigned=True)
    assert agent_cache.cached_agent(public_id=agent.public_id).create_attributes_from_unsigned
    agent_update_settings(agent=agent, name="Help", default_phone_region="DE")
    assert agent_cache.cached_agent(public_id=agent.public_id).default_phone_region == "DE"
    old = secret_of(agent)
    identity_secret_rotate(agent=agent)
    assert agent_cache.cached_identity_secrets(agent=agent) == [secret_of(agent), old]


def test_a_token_signed_with_a_secret_rotated_by_another_process_verifies_at_once(agent):
    widget = Widget(agent)
    assert widget.identify({"token": make_jwt(agent, user_id="u-1")}).status_code == 200
    # Another process rotates: the rows change, this process's entry does not hear of it.
    IdentitySecret.objects.filter(agent=agent).update(secret_encrypted=crypto.encrypt(ROTATED))
    response = widget.identify({"token": make_jwt(secret=ROTATED, user_id="u-1")})
    assert response.status_code == 200
    assert response.json()["contact"]["identity"] == "verified"
    forged = widget.identify({"token": make_jwt(secret="rsk_" + "g" * 43, user_id="u-1")})
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "invalid_signature"
