from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from workspaces.models import ApiKey, IdentitySecret
from workspaces.selectors import api_key_lookup, identity_secret_current, identity_secrets_valid
from workspaces.services import (
    api_key_create,
    api_key_revoke,
    api_key_touch,
    identity_secret_rotate,
)

pytestmark = pytest.mark.django_db


def test_rotation_keeps_the_previous_secret_valid_for_the_grace_period(agent):
    old = identity_secret_current(agent=agent).secret
    identity_secret_rotate(agent=agent, grace_seconds=3600)
    new = identity_secret_current(agent=agent).secret
    assert new != old
    assert identity_secrets_valid(agent=agent) == [new, old]

    IdentitySecret.objects.filter(agent=agent, expires_at__isnull=False).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert identity_secrets_valid(agent=agent) == [new]


def test_rotating_twice_drops_secrets_whose_grace_has_ended(agent):
    identity_secret_rotate(agent=agent, grace_seconds=0)
    identity_secret_rotate(agent=agent, grace_seconds=0)
    assert IdentitySecret.objects.filter(agent=agent).count() <= 2
    assert len(identity_secrets_valid(agent=agent)) == 1


def test_api_keys_are_looked_up_by_hash_and_stop_working_when_revoked(agent, other_agent):
    created = api_key_create(agent=agent, name="CRM sync")
    assert api_key_lookup(raw_key=created.raw).agent == agent
    assert api_key_lookup(raw_key=created.raw + "x") is None
    assert api_key_lookup(raw_key="") is None
    api_key_revoke(api_key=created.api_key)
    assert api_key_lookup(raw_key=created.raw) is None


def test_last_used_is_recorded_at_most_once_a_minute(agent, django_assert_num_queries):
    key = api_key_create(agent=agent, name="k").api_key
    api_key_touch(api_key=key)
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    with django_assert_num_queries(0):
        api_key_touch(api_key=key)
