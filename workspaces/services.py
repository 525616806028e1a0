from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone
from django.utils.text import slugify

from core.errors import ConflictError, DomainError, ValidationFailed
from workspaces import agent_cache, crypto
from workspaces.models import (
    Agent,
    ApiKey,
    IdentitySecret,
    Membership,
    UserSettings,
    Workspace,
    WorkspaceEvent,
    hash_api_key,
)
from workspaces.sessions import sessions_end
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


# --- Members: roles, removal, the workspace's audit log -----------------------------------


class LastAdmin(ConflictError):
    """The change would leave the workspace without an admin."""

    code = "last_admin"


def workspace_lock(*, workspace_id: int) -> None:
    """Serialize changes to a workspace's members until the transaction ends.

    FOR NO KEY UPDATE on PostgreSQL: two member changes wait for each other, while rows
    that merely reference the workspace (new agents, events) are not blocked. SQLite
    takes its single write lock when the transaction begins (transaction_mode IMMEDIATE),
    which serializes them as well."""
    Workspace.objects.select_for_update(no_key=True).filter(pk=workspace_id).first()


def workspace_event_record(
    *,
    workspace_id: int,
    actor,
    action: str,
    target_email: str = "",
    details: dict | None = None,
) -> WorkspaceEvent:
    """Add an entry to the workspace's audit log."""
    return WorkspaceEvent.objects.create(
        workspace_id=workspace_id,
        actor=actor,
        actor_email=actor.get_username() if actor is not None else "",
        action=action,
        target_email=target_email,
        details=details or {},
    )


def _refuse_without_another_admin(membership: Membership, *, actor, doing: str) -> None:
    others = (
        Membership.objects.filter(workspace_id=membership.workspace_id, role=Membership.Role.ADMIN)
        .exclude(pk=membership.pk)
        .exists()
    )
    if not others:
        yourself = actor is not None and actor.pk == membership.user_id
        who = "You are" if yourself else f"{membership.user.get_username()} is"
        raise LastAdmin(
            f"{who} the only admin of this workspace, which always keeps one: make another "
            f"member an admin first, then {doing}."
        )


@transaction.atomic
def membership_role_change(*, membership: Membership, role: str, actor) -> Membership:
    """Give a member another role; they are signed out everywhere, so every page they have
    open is read again with the new role. The last admin cannot be made staff."""
    if role not in Membership.Role.values:
        raise ValidationFailed({"role": [f"{role!r} is not a role; use admin or staff."]})
    workspace_lock(workspace_id=membership.workspace_id)
    # Read again under the lock: the page that asked may be out of date.
    current = Membership.objects.select_related("user").filter(pk=membership.pk).first()
    if current is None:
        raise DomainError(
            f"{membership.user.get_username()} was removed from this workspace meanwhile.",
            code="not_found",
            status=404,
        )
    if current.role == role:
        return current
    if current.role == Membership.Role.ADMIN:
        _refuse_without_another_admin(current, actor=actor, doing="change this role")
    previous = current.role
    current.role = role
    current.save(update_fields=["role"])
    workspace_event_record(
        workspace_id=current.workspace_id,
        actor=actor,
        action=WorkspaceEvent.Action.ROLE_CHANGED,
        target_email=current.user.get_username(),
        details={"from": previous, "to": role},
    )
    sessions_end(user=current.user)
    return current


@transaction.atomic
def membership_remove(*, membership: Membership, actor) -> None:
    """Take a member out of the workspace and sign them out everywhere at once. The last
    admin cannot be removed (nor leave)."""
    workspace_lock(workspace_id=membership.workspace_id)
    current = Membership.objects.select_related("user").filter(pk=membership.pk).first()
    if current is None:
        return  # removed meanwhile by someone else: nothing left to do
    leaving = actor is not None and actor.pk == current.user_id
    if current.role == Membership.Role.ADMIN:
        doing = "leave" if leaving else "remove them"
        _refuse_without_another_admin(current, actor=actor, doing=doing)
    current.delete()
    workspace_event_record(
        workspace_id=current.workspace_id,
        actor=actor,
        action=WorkspaceEvent.Action.REMOVED,
        target_email=current.user.get_username(),
        details={"role": current.role, **({"self": True} if leaving else {})},
    )
    sessions_end(user=current.user)
