from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce, Concat, Lower, NullIf, Trim
from django.http import Http404
from django.utils import timezone

from core.prepared import prepared
from workspaces import sql
from workspaces.models import (
    Agent,
    ApiKey,
    IdentitySecret,
    Invitation,
    Membership,
    UserSettings,
    Workspace,
    WorkspaceEvent,
    hash_api_key,
    hash_invitation_token,
    normalize_member_email,
)

# How many entries of the workspace's audit log the Members page shows.
EVENTS_SHOWN = 50


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
    found = list(Agent.objects.raw(prepared(sql.AGENT_BY_PUBLIC_ID), [public_id]))
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
    rows = IdentitySecret.objects.raw(prepared(sql.IDENTITY_SECRETS), [agent.pk])
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


# --- Members, invitations and the workspace's audit log ------------------------------------


def members_for_workspace(*, workspace: Workspace) -> list[Membership]:
    """The workspace's members with their users: admins first, then by name (by email for
    those without one), each with `display_name` ("" when none was given)."""
    full_name = Trim(Concat("user__first_name", Value(" "), "user__last_name"))
    return list(
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .annotate(
            display_name=full_name,
            role_rank=Case(When(role=Membership.Role.ADMIN, then=Value(0)), default=Value(1)),
            sort_name=Lower(Coalesce(NullIf(full_name, Value("")), "user__username")),
        )
        .order_by("role_rank", "sort_name", "id")
    )


def membership_of(*, workspace: Workspace, membership_id: int) -> Membership:
    """A member of this workspace by id; 404 for any other id, another workspace's too."""
    found = (
        Membership.objects.filter(workspace=workspace, pk=membership_id)
        .select_related("user")
        .first()
    )
    if found is None:
        raise Http404("No such member.")
    return found


def invitations_open(*, workspace: Workspace) -> list[Invitation]:
    """Invitations neither accepted nor revoked (expired ones included: they can be
    re-issued), newest link first."""
    return list(
        Invitation.objects.filter(
            workspace=workspace, accepted_at__isnull=True, revoked_at__isnull=True
        )
        .select_related("invited_by")
        .order_by("-issued_at", "-id")
    )


def invitation_of(*, workspace: Workspace, invitation_id: int) -> Invitation:
    """An invitation of this workspace by id; 404 for any other id."""
    found = Invitation.objects.filter(workspace=workspace, pk=invitation_id).first()
    if found is None:
        raise Http404("No such invitation.")
    return found


def invitation_by_token(*, raw_token: str) -> Invitation | None:
    """The invitation a link's token belongs to (by hash), whatever its state."""
    if not raw_token or len(raw_token) > 200:
        return None
    return (
        Invitation.objects.filter(token_hash=hash_invitation_token(raw_token))
        .select_related("workspace", "invited_by")
        .first()
    )


def workspace_events(*, workspace: Workspace, limit: int = EVENTS_SHOWN) -> list[WorkspaceEvent]:
    """The latest entries of the workspace's audit log, newest first."""
    return list(
        WorkspaceEvent.objects.filter(workspace=workspace).order_by("-created_at", "-id")[:limit]
    )


def user_for_email(*, email: str):
    """The account that signs in with this email, or None. The sign-in name decides (in
    its exact spelling first when two differ only by case), then the email field."""
    email = normalize_member_email(email)
    users = get_user_model()._default_manager
    by_name = list(users.filter(username__iexact=email).order_by("id")[:5])
    if by_name:
        exact = [u for u in by_name if u.username == email]
        return (exact or by_name)[0]
    by_email = list(users.filter(email__iexact=email).order_by("id")[:2])
    return by_email[0] if len(by_email) == 1 else None


def member_with_email(*, workspace: Workspace, email: str) -> Membership | None:
    """The workspace's membership of whoever signs in with, or has, this email."""
    email = normalize_member_email(email)
    return (
        Membership.objects.filter(workspace=workspace)
        .filter(Q(user__username__iexact=email) | Q(user__email__iexact=email))
        .select_related("user")
        .first()
    )


def first_agent_of(*, workspace: Workspace) -> Agent | None:
    return Agent.objects.filter(workspace=workspace).order_by("name", "id").first()
