"""Invitations: an admin invites an email with a role, the person follows the link and
becomes a member (creating an account, or signing in to the one they have).

Only the hash of a link's token is stored. A link works once, until it expires
(INVITATION_MAX_AGE_DAYS) or is revoked; re-issuing makes a new link and the old one stops
working. Every step is written to the workspace's audit log.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from core.errors import ConflictError, DomainError, ForbiddenError, ValidationFailed
from workspaces.models import (
    Invitation,
    Membership,
    WorkspaceEvent,
    hash_invitation_token,
    normalize_member_email,
)
from workspaces.selectors import member_with_email, user_for_email
from workspaces.services import workspace_event_record, workspace_lock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewInvitation:
    """An invitation with the token of its new link: shown once, never stored."""

    invitation: Invitation
    raw_token: str
    # An open invitation to the same address existed: it now has this link instead.
    replaced: bool = False


class AlreadyMember(ConflictError):
    code = "already_member"


class InvitationClosed(DomainError):
    """The link no longer works: `reason` is "expired", "accepted" or "revoked"."""

    code = "invitation_closed"
    status = 410

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class AccountExists(ConflictError):
    """Someone already signs in with the invited email: they must sign in to accept."""

    code = "account_exists"


class WrongAccount(ForbiddenError):
    """The signed-in person is not the one the invitation was sent to."""

    code = "wrong_account"


def _new_token() -> tuple[str, str]:
    raw = secrets.token_urlsafe(32)
    return raw, hash_invitation_token(raw)


def _expiry(now: datetime) -> datetime:
    return now + timedelta(days=settings.INVITATION_MAX_AGE_DAYS)


def _role_label(role: str) -> str:
    return Membership.Role(role).label


def invitation_problem(invitation: Invitation, *, at: datetime | None = None) -> str | None:
    """Why the invitation's link no longer works ("accepted", "revoked", "expired"), or
    None while it does."""
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= (at or timezone.now()):
        return "expired"
    return None


def _refuse_closed(invitation: Invitation) -> None:
    reason = invitation_problem(invitation)
    if reason is None:
        return
    messages = {
        "accepted": f"This invitation was already accepted by {invitation.email}.",
        "revoked": f"This invitation to {invitation.email} was revoked.",
        "expired": f"This invitation to {invitation.email} has expired.",
    }
    raise InvitationClosed(reason, messages[reason])


def _refuse_member(workspace, email: str) -> None:
    member = member_with_email(workspace=workspace, email=email)
    if member is not None:
        raise AlreadyMember(
            f"{member.user.get_username()} is already a member of {workspace.name} "
            f"({_role_label(member.role)}).",
            fields={"email": [f"{email} is already a member of this workspace."]},
        )


@transaction.atomic
def invitation_create(*, workspace, email: str, role: str, invited_by) -> NewInvitation:
    """Invite `email` to the workspace with `role`. An open invitation to the same address
    is re-issued with this role and a new link (its old link stops working)."""
    email = normalize_member_email(email)
    errors: dict[str, list[str]] = {}
    try:
        validate_email(email)
    except ValidationError:
        errors["email"] = [f"{email!r} is not an email address." if email else "Enter an email."]
    if role not in Membership.Role.values:
        errors["role"] = [f"{role!r} is not a role; use admin or staff."]
    if errors:
        raise ValidationFailed(errors)
    workspace_lock(workspace_id=workspace.pk)
    _refuse_member(workspace, email)
    raw, token_hash = _new_token()
    now = timezone.now()
    existing = (
        Invitation.objects.select_for_update()
        .filter(workspace=workspace, email=email, accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if existing is not None:
        details = {"role": role, "replaced": True}
        if existing.role != role:
            details["previous_role"] = existing.role
        existing.role = role
        existing.token_hash = token_hash
        existing.invited_by = invited_by
        existing.issued_at = now
        existing.expires_at = _expiry(now)
        existing.save(update_fields=["role", "token_hash", "invited_by", "issued_at", "expires_at"])
        workspace_event_record(
            workspace_id=workspace.pk,
            actor=invited_by,
            action=WorkspaceEvent.Action.REISSUED,
            target_email=email,
            details=details,
        )
        return NewInvitation(invitation=existing, raw_token=raw, replaced=True)
    invitation = Invitation.objects.create(
        workspace=workspace,
        email=email,
        role=role,
        token_hash=token_hash,
        invited_by=invited_by,
        created_at=now,
        issued_at=now,
        expires_at=_expiry(now),
    )
    workspace_event_record(
        workspace_id=workspace.pk,
        actor=invited_by,
        action=WorkspaceEvent.Action.INVITED,
        target_email=email,
        details={"role": role},
    )
    return NewInvitation(invitation=invitation, raw_token=raw)


@transaction.atomic
def invitation_reissue(*, invitation: Invitation, actor) -> NewInvitation:
    """A new link for an open invitation (expired ones too), valid for the full period;
    the previous link stops working."""
    workspace_lock(workspace_id=invitation.workspace_id)
    current = Invitation.objects.select_related("workspace").get(pk=invitation.pk)
    if current.accepted_at is not None or current.revoked_at is not None:
        _refuse_closed(current)
    _refuse_member(current.workspace, current.email)
    raw, token_hash = _new_token()
    now = timezone.now()
    current.token_hash = token_hash
    current.issued_at = now
    current.expires_at = _expiry(now)
    current.save(update_fields=["token_hash", "issued_at", "expires_at"])
    workspace_event_record(
        workspace_id=current.workspace_id,
        actor=actor,
        action=WorkspaceEvent.Action.REISSUED,
        target_email=current.email,
        details={"role": current.role},
    )
    return NewInvitation(invitation=current, raw_token=raw)


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor) -> Invitation:
    """Withdraw an invitation: its link stops working at once. Revoking twice is a no-op;
    an accepted invitation cannot be revoked (remove the member instead)."""
    workspace_lock(workspace_id=invitation.workspace_id)
    current = Invitation.objects.get(pk=invitation.pk)
    if current.revoked_at is not None:
        return current
    if current.accepted_at is not None:
        raise InvitationClosed(
            "accepted",
            f"{current.email} already accepted this invitation: remove the member instead.",
        )
    current.revoked_at = timezone.now()
    current.save(update_fields=["revoked_at"])
    workspace_event_record(
        workspace_id=current.workspace_id,
        actor=actor,
        action=WorkspaceEvent.Action.REVOKED,
        target_email=current.email,
        details={"role": current.role},
    )
    return current


def _is_invited_person(user, invitation: Invitation) -> bool:
    names = {normalize_member_email(user.get_username()), normalize_member_email(user.email)}
    return invitation.email in names


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user, new_account: bool = False) -> Membership:
    """`user` (the invited person, signed in) joins the workspace with the invited role.
    The link works once: a second acceptance, even at the same instant, is refused."""
    workspace_lock(workspace_id=invitation.workspace_id)
    current = Invitation.objects.select_for_update().get(pk=invitation.pk)
    _refuse_closed(current)
    if not _is_invited_person(user, current):
        raise WrongAccount(f"This invitation is for {current.email}, not {user.get_username()}.")
    membership, created = Membership.objects.get_or_create(
        user=user, workspace_id=current.workspace_id, defaults={"role": current.role}
    )
    current.accepted_at = timezone.now()
    current.accepted_by = user
    current.save(update_fields=["accepted_at", "accepted_by"])
    details = {"role": membership.role, "new_account": new_account}
    if not created:
        details["already_member"] = True
    workspace_event_record(
        workspace_id=current.workspace_id,
        actor=user,
        action=WorkspaceEvent.Action.ACCEPTED,
        target_email=current.email,
        details=details,
    )
    return membership


def split_name(name: str) -> tuple[str, str]:
    """A full name as Django's first and last name: joined again with a space, they give
    the name back as typed (whitespace runs aside)."""
    words = name.split()
    if not words:
        return "", ""
    return words[0][:150], " ".join(words[1:])[:150]


@transaction.atomic
def invitation_accept_new_account(*, invitation: Invitation, name: str, password: str):
    """Create the invited person's account (the email is the invitation's; the password
    already passed the validators) and accept the invitation with it. Nothing is created
    when the invitation cannot be accepted."""
    workspace_lock(workspace_id=invitation.workspace_id)
    if user_for_email(email=invitation.email) is not None:
        raise AccountExists(f"{invitation.email} already has an account: sign in to accept.")
    first, last = split_name(name)
    try:
        with transaction.atomic():
            user = get_user_model().objects.create_user(
                username=invitation.email,
                email=invitation.email,
                password=password,
                first_name=first,
                last_name=last,
            )
    except IntegrityError:
        raise AccountExists(
            f"{invitation.email} already has an account: sign in to accept."
        ) from None
    membership = invitation_accept(invitation=invitation, user=user, new_account=True)
    return user, membership


def invitation_send(*, invitation: Invitation, link: str) -> str:
    """Email the invitation's link when EMAIL_URL is configured: "sent", "disabled" (no
    mail server: the admin copies the link) or "failed" (logged; the link still works)."""
    if not settings.EMAIL_ENABLED:
        return "disabled"
    inviter = invitation.invited_by.get_username() if invitation.invited_by else "An admin"
    context = {
        "inviter": inviter,
        "workspace": invitation.workspace.name,
        "role": _role_label(invitation.role),
        "link": link,
        "expires_at": invitation.expires_at,
    }
    subject = " ".join(f"{inviter} invited you to {invitation.workspace.name} on Rapport".split())
    body = render_to_string("workspaces/invitation_email.txt", context)
    try:
        EmailMessage(subject, body, to=[invitation.email]).send(using="default")
    except Exception:
        # A mail server that is down or refuses must not lose the invitation: the page
        # shows the link to copy and says the email was not sent.
        logger.exception("Could not email invitation %s", invitation.pk)
        return "failed"
    return "sent"
