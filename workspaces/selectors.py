from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, QuerySet
from django.http import Http404
from django.utils import timezone

from workspaces import sql
from workspaces.models import (
    Agent,
    ApiKey,
    IdentitySecret,
    Membership,
    UserSettings,
    hash_api_key,
)


@dataclass(frozen=True)
class AgentAccess:
    """An agent as seen by one signed-in user: the agent and that user's role in it."""

    agent: Agent
    membership: Membership

    @property
    def is_admin(self) -> bool:
        return self.membership.is_admin


def agents_for_user(*, user) -> list[Agent]:
    """Every agent of every workspace the user belongs to, grouped by workspace, each with
    the user's role there as `my_role`."""
    return list(
        Agent.objects.filter(workspace__memberships__user=user)
        .annotate(my_role=F("workspace__memberships__role"))
        .select_related("workspace")
        .order_by("workspace__name", "name", "id")
    )


def agent_access_for_user(*, user, public_id: str) -> AgentAccess:
    """The agent with `public_id` if the user is a member of its workspace, else 404."""
    agent = (
        Agent.objects.filter(public_id=public_id, workspace__memberships__user=user)
        .select_related("workspace")
        .first()
    )
    if agent is None:
        raise Http404("No such agent.")
    membership = Membership.objects.get(user=user, workspace_id=agent.workspace_id)
    return AgentAccess(agent=agent, membership=membership)


def agent_by_public_id(*, public_id: str) -> Agent | None:
    """The agent a widget call names. (SQL by hand: every widget call starts here.)"""
    found = list(Agent.objects.raw(sql.AGENT_BY_PUBLIC_ID, [public_id]))
    return found[0] if found else None


def api_key_lookup(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key` (by hash), with its agent loaded."""
    if not raw_key or len(raw_key) > 200:
        return None
    return (
        ApiKey.objects.filter(key_hash=hash_api_key(raw_key), revoked_at__isnull=True)
        .select_related("agent", "agent__workspace")
        .first()
    )


def api_keys_for_agent(*, agent: Agent) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(agent=agent).order_by("revoked_at", "-created_at")


def identity_secrets_valid(*, agent: Agent) -> list[str]:
    """Secrets that verify identify calls now: the current one first, then those in grace."""
    return secrets_in_force(identity_secret_rows(agent=agent), at=timezone.now())


def secrets_in_force(rows: Iterable[tuple[str, datetime | None]], *, at: datetime) -> list[str]:
    """Of (secret, expiry) rows, the secrets that verify at `at`: current or still in grace."""
    return [secret for secret, expires_at in rows if expires_at is None or expires_at > at]


def identity_secret_rows(*, agent: Agent) -> list[tuple[str, datetime | None]]:
    """Every secret of the agent with its expiry (None while current), newest first."""
    # SQL by hand: the widget's agent cache reloads it every few seconds per process.
    rows = IdentitySecret.objects.raw(sql.IDENTITY_SECRETS, [agent.pk])
    return [(row.secret, row.expires_at) for row in rows]


def identity_secret_current(*, agent: Agent) -> IdentitySecret | None:
    return (
        IdentitySecret.objects.filter(agent=agent, expires_at__isnull=True)
        .order_by("-created_at", "-id")
        .first()
    )


def user_time_zone(*, user) -> str:
    """The zone a member chose for times ("" to follow their browser)."""
    return UserSettings.objects.filter(user=user).values_list("time_zone", flat=True).first() or ""
