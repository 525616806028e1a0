from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone
from django.utils.text import slugify

from core.errors import ValidationFailed
from workspaces import agent_cache, crypto
from workspaces.models import (
    Agent,
    ApiKey,
    IdentitySecret,
    Membership,
    UserSettings,
    Workspace,
    hash_api_key,
)
from workspaces.timezones import known_zones

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewApiKey:
    """A freshly created key: `raw` is shown once and never stored."""

    api_key: ApiKey
    raw: str


def workspace_get_or_create(*, name: str) -> tuple[Workspace, bool]:
    slug = slugify(name) or "workspace"
    return Workspace.objects.get_or_create(slug=slug, defaults={"name": name})


@transaction.atomic
def agent_create(*, workspace: Workspace, name: str, default_phone_region: str = "US") -> Agent:
    """Create an agent with its first identity secret."""
    agent = Agent.objects.create(
        workspace=workspace, name=name, default_phone_region=default_phone_region
    )
    identity_secret_create(agent=agent)
    return agent


def membership_set(*, user, workspace: Workspace, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        user=user, workspace=workspace, defaults={"role": role}
    )
    return membership


def api_key_create(*, agent: Agent, name: str, created_by=None) -> NewApiKey:
    """Create a key for `agent`; only its hash is kept."""
    raw = "rk_" + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        agent=agent,
        name=name[:80] or "API key",
        prefix=raw[:11],
        key_hash=hash_api_key(raw),
        created_by=created_by,
    )
    return NewApiKey(api_key=api_key, raw=raw)


def api_key_revoke(*, api_key: ApiKey) -> None:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once a minute per key so busy keys don't write on every request."""
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < timedelta(minutes=1):
        return
    try:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    except OperationalError:
        # Best effort: a busy database (SQLite's single writer lock held by a long bulk
        # write) must not turn a read into an error; the next call records the use.
        logger.warning("Could not record the use of API key %s", api_key.prefix)
        return
    api_key.last_used_at = now


def identity_secret_create(*, agent: Agent) -> IdentitySecret:
    secret = IdentitySecret.objects.create(
        agent=agent, secret_encrypted=crypto.encrypt("rsk_" + secrets.token_urlsafe(32))
    )
    agent_cache.forget(agent)
    return secret


@transaction.atomic
def identity_secret_rotate(*, agent: Agent, grace_seconds: int | None = None) -> IdentitySecret:
    """Make a new current secret; the previous ones keep verifying for the grace period."""
    if grace_seconds is None:
        grace_seconds = settings.IDENTITY_SECRET_GRACE_SECONDS
    now = timezone.now()
    expires = now + timedelta(seconds=grace_seconds)
    # Lock the agent row so two rotations at once cannot both leave a "current" secret.
    Agent.objects.select_for_update().filter(pk=agent.pk).first()
    IdentitySecret.objects.filter(agent=agent, expires_at__isnull=True).update(expires_at=expires)
    IdentitySecret.objects.filter(agent=agent, expires_at__lte=now).delete()
    return identity_secret_create(agent=agent)


class AgentNameTaken(Exception):
    """Another agent of the workspace already has the name."""


def agent_update_settings(*, agent: Agent, name: str, default_phone_region: str) -> Agent:
    """Rename the agent and set the region assumed for phone numbers without a country code."""
    agent.name = name
    agent.default_phone_region = default_phone_region
    agent.full_clean(exclude=["workspace", "public_id"], validate_unique=False)
    try:
        with transaction.atomic():
            agent.save(update_fields=["name", "default_phone_region"])
    except IntegrityError:
        raise AgentNameTaken(name) from None
    agent_cache.forget(agent)
    return agent


def user_time_zone_set(*, user, time_zone: str) -> UserSettings:
    """Show this member's times in `time_zone` (an IANA name; "" follows their browser)."""
    if time_zone and time_zone not in known_zones():
        raise ValidationFailed({"time_zone": [f"{time_zone!r} is not a time zone."]})
    found, _ = UserSettings.objects.update_or_create(user=user, defaults={"time_zone": time_zone})
    return found
