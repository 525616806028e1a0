"""Settings → Members: the workspace's members, invitations and audit log. Admins invite,
re-issue and revoke invitations, change roles and remove members; staff read the list.
Every POST re-checks the role (403 for staff) and the workspace (404 for another's ids)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import DomainError, ValidationFailed
from workspaces.access import get_agent_access
from workspaces.forms import InviteForm, RoleForm
from workspaces.invitations import (
    AlreadyMember,
    NewInvitation,
    invitation_create,
    invitation_reissue,
    invitation_revoke,
    invitation_send,
)
from workspaces.models import Membership
from workspaces.selectors import (
    AgentAccess,
    invitation_of,
    invitations_open,
    members_for_workspace,
    membership_of,
    workspace_events,
)
from workspaces.services import membership_remove, membership_role_change
from workspaces.sessions import session_keep

NEW_LINK_SESSION = "new_invitation_link"


def _members_url(agent, anchor: str = "") -> str:
    url = reverse("workspaces:members", kwargs={"agent_public_id": agent.public_id})
    return f"{url}#{anchor}" if anchor else url


def _members_page(
    request: HttpRequest,
    access: AgentAccess,
    *,
    invite_form: InviteForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    agent = access.agent
    workspace = agent.workspace
    members = members_for_workspace(workspace=workspace)
    admins = sum(1 for m in members if m.role == Membership.Role.ADMIN)
    for member in members:
        member.is_you = member.user_id == request.user.pk
        member.only_admin = member.role == Membership.Role.ADMIN and admins == 1
    context = {
        "agent": agent,
        "workspace": workspace,
        "is_admin": access.is_admin,
        "members": members,
        "admin_count": admins,
        "error": error,
        "roles": Membership.Role.choices,
    }
    new_link = None
    if access.is_admin:
        new_link = _pop_new_link(request, agent)
        invitations = invitations_open(workspace=workspace)
        for invitation in invitations:
            invitation.expired = invitation.is_expired
        context.update(
            invite_form=invite_form or InviteForm(),
            invitations=invitations,
            events=workspace_events(workspace=workspace),
            new_link=new_link,
            email_enabled=settings.EMAIL_ENABLED,
            max_age_days=settings.INVITATION_MAX_AGE_DAYS,
        )
    response = render(request, "workspaces/members.html", context, status=status)
    if new_link is not None:
        # The link is a credential shown in this page only: keep it out of every cache.
        add_never_cache_headers(response)
    return response


def _stash_new_link(request: HttpRequest, agent, new: NewInvitation, sent: str) -> None:
    """Keep the link for the page the redirect shows (post/redirect/get), once."""
    path = reverse("invitation_accept", kwargs={"token": new.raw_token})
    request.session[NEW_LINK_SESSION] = {
        "agent": agent.public_id,
        "invitation": new.invitation.pk,
        "email": new.invitation.email,
        "link": request.build_absolute_uri(path),
        "sent": sent,
        "replaced": new.replaced,
    }


def _pop_new_link(request: HttpRequest, agent) -> dict | None:
    stashed = request.session.pop(NEW_LINK_SESSION, None)
    if not stashed or stashed.get("agent") != agent.public_id:
        return None
    return stashed


@require_GET
@login_required
def members(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """The workspace's members (everyone); invitations and the audit log (admins)."""
    access = get_agent_access(request, agent_public_id)
    return _members_page(request, access)


@require_POST
@login_required
def member_invite(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """Invite an email with a role; the new link is shown once (and emailed when a mail
    server is configured)."""
    access = get_agent_access(request, agent_public_id, admin=True)
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _members_page(request, access, invite_form=form, status=400)
    try:
        new = invitation_create(
            workspace=access.agent.workspace,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            invited_by=request.user,
        )
    except AlreadyMember as exc:
        form.add_error("email", exc.message)
        return _members_page(request, access, invite_form=form, status=409)
    except ValidationFailed as exc:
        for field, problems in exc.fields.items():
            form.add_error(field if field in form.fields else None, problems)
        return _members_page(request, access, invite_form=form, status=400)
    _send_and_stash(request, access.agent, new)
    return redirect(_members_url(access.agent, "new-invitation"))


def _send_and_stash(request: HttpRequest, agent, new: NewInvitation) -> None:
    path = reverse("invitation_accept", kwargs={"token": new.raw_token})
    sent = invitation_send(invitation=new.invitation, link=request.build_absolute_uri(path))
    _stash_new_link(request, agent, new, sent)


@require_POST
@login_required
def invitation_reissue_view(
    request: HttpRequest, agent_public_id: str, invitation_id: int
) -> HttpResponse:
    access = get_agent_access(request, agent_public_id, admin=True)
    invitation = invitation_of(workspace=access.agent.workspace, invitation_id=invitation_id)
    try:
        new = invitation_reissue(invitation=invitation, actor=request.user)
    except DomainError as exc:
        return _members_page(request, access, error=exc.message, status=exc.status)
    _send_and_stash(request, access.agent, new)
    return redirect(_members_url(access.agent, "new-invitation"))


@require_POST
@login_required
def invitation_revoke_view(
    request: HttpRequest, agent_public_id: str, invitation_id: int
) -> HttpResponse:
    access = get_agent_access(request, agent_public_id, admin=True)
    invitation = invitation_of(workspace=access.agent.workspace, invitation_id=invitation_id)
    try:
        invitation_revoke(invitation=invitation, actor=request.user)
    except DomainError as exc:
        return _members_page(request, access, error=exc.message, status=exc.status)
    messages.success(
        request, f"Invitation to {invitation.email} revoked; its link no longer works."
    )
    return redirect(_members_url(access.agent, "invitations"))


def _confirm_page(
    request: HttpRequest, access: AgentAccess, member: Membership, *, action: str, role: str = ""
) -> HttpResponse:
    """Ask before an admin acts on their own membership (or before any removal, when the
    page is opened without JavaScript's confirmation)."""
    context = {
        "agent": access.agent,
        "workspace": access.agent.workspace,
        "member": member,
        "action": action,
        "role": role,
        "role_label": Membership.Role(role).label if role else "",
        "yourself": member.user_id == request.user.pk,
        "members_url": _members_url(access.agent),
    }
    return render(request, "workspaces/member_confirm.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def member_role(request: HttpRequest, agent_public_id: str, membership_id: int) -> HttpResponse:
    """Change a member's role; they are signed out everywhere. Changing your own role asks
    first, and the workspace always keeps an admin."""
    access = get_agent_access(request, agent_public_id, admin=True)
    member = membership_of(workspace=access.agent.workspace, membership_id=membership_id)
    if request.method == "GET":
        return redirect(_members_url(access.agent))
    form = RoleForm(request.POST)
    if not form.is_valid():
        problem = "; ".join(form.errors["role"])
        return _members_page(request, access, error=f"Role: {problem}", status=400)
    role = form.cleaned_data["role"]
    yourself = member.user_id == request.user.pk
    if yourself and role != member.role and request.POST.get("confirm") != "yes":
        return _confirm_page(request, access, member, action="role", role=role)
    try:
        changed = membership_role_change(membership=member, role=role, actor=request.user)
    except DomainError as exc:
        return _members_page(request, access, error=exc.message, status=exc.status)
    if role == member.role:
        messages.info(
            request, f"{member.user.get_username()} is already {changed.get_role_display()}."
        )
    elif yourself:
        # Your other sessions end; this one goes on, now with the new role.
        session_keep(request)
        messages.success(
            request,
            f"You are now {changed.get_role_display()} of {access.agent.workspace.name}; "
            "your other sessions were signed out.",
        )
        if role != Membership.Role.ADMIN:
            return redirect(_members_url(access.agent))
    else:
        messages.success(
            request,
            f"{member.user.get_username()} is now {changed.get_role_display()}. They were "
            "signed out everywhere and see the new role when they sign in again.",
        )
    return redirect(_members_url(access.agent))


@require_http_methods(["GET", "POST"])
@login_required
def member_remove(request: HttpRequest, agent_public_id: str, membership_id: int) -> HttpResponse:
    """Remove a member (or leave, for yourself, after confirming): they lose access and are
    signed out everywhere at once. The workspace always keeps an admin."""
    access = get_agent_access(request, agent_public_id, admin=True)
    member = membership_of(workspace=access.agent.workspace, membership_id=membership_id)
    yourself = member.user_id == request.user.pk
    if request.method == "GET" or (yourself and request.POST.get("confirm") != "yes"):
        return _confirm_page(request, access, member, action="remove")
    try:
        membership_remove(membership=member, actor=request.user)
    except DomainError as exc:
        return _members_page(request, access, error=exc.message, status=exc.status)
    if yourself:
        workspace = access.agent.workspace.name
        auth_logout(request)
        messages.success(request, f"You left {workspace} and were signed out.")
        return redirect(settings.LOGIN_URL)
    messages.success(
        request,
        f"{member.user.get_username()} was removed from {access.agent.workspace.name} and "
        "signed out everywhere.",
    )
    return redirect(_members_url(access.agent))
