"""The public page an invitation link opens: the invited person creates an account (name
and password) or signs in to the one they have, and joins the workspace with the invited
role. A link that no longer works says why, and changes nothing."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from core.ratelimit import client_address
from workspaces import login_throttle
from workspaces.forms import NewAccountForm, SignInToAcceptForm
from workspaces.invitations import (
    AccountExists,
    InvitationClosed,
    invitation_accept,
    invitation_accept_new_account,
    invitation_problem,
)
from workspaces.models import Invitation, Membership
from workspaces.selectors import first_agent_of, invitation_by_token, user_for_email, user_time_zone
from workspaces.views import remember_time_zone

BACKEND = "workspaces.auth.EmailBackend"
# The one button each situation offers (the form's `action`).
ACTIONS = {
    "join": "join",
    "wrong_account": "sign_out",
    "sign_in": "sign_in",
    "new_account": "create",
}


def _closed(request: HttpRequest, invitation: Invitation | None, reason: str) -> HttpResponse:
    context = {"invitation": invitation, "reason": reason}
    return render(
        request,
        "workspaces/invitation_closed.html",
        context,
        status=404 if invitation is None else 410,
    )


def _welcome(request: HttpRequest, membership: Membership) -> HttpResponse:
    workspace = membership.workspace
    messages.success(
        request, f"Welcome to {workspace.name}. You are {membership.get_role_display()} here."
    )
    agent = first_agent_of(workspace=workspace)
    if agent is None:
        return redirect("home")
    return redirect("contacts:list", agent_public_id=agent.public_id)


@require_http_methods(["GET", "POST"])
@csrf_protect
@never_cache
def invitation_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    invitation = invitation_by_token(raw_token=token)
    if invitation is None:
        return _closed(request, None, "unknown")
    reason = invitation_problem(invitation)
    if reason is not None:
        return _closed(request, invitation, reason)

    account = user_for_email(email=invitation.email)
    signed_in = request.user.is_authenticated
    if signed_in and account is not None and request.user.pk == account.pk:
        mode = "join"
    elif signed_in:
        mode = "wrong_account"
    elif account is not None:
        mode = "sign_in"
    else:
        mode = "new_account"

    posted = request.POST if request.method == "POST" else None
    sign_in_form = SignInToAcceptForm(posted if mode == "sign_in" else None)
    new_form = NewAccountForm(posted if mode == "new_account" else None, email=invitation.email)
    status = 200
    error = ""
    if request.method == "POST":
        if request.POST.get("action") != ACTIONS[mode]:
            # The form was made for another situation (signed in or out in another tab).
            error = "Something changed since this page was opened: check it and try again."
            status = 409
        else:
            try:
                if mode == "wrong_account":
                    auth_logout(request)
                    return redirect(request.path)
                if mode == "join":
                    membership = invitation_accept(invitation=invitation, user=request.user)
                    return _welcome(request, membership)
                if mode == "sign_in":
                    response, status = _sign_in_and_join(request, invitation, account, sign_in_form)
                    if response is not None:
                        return response
                elif new_form.is_valid():
                    user, membership = invitation_accept_new_account(
                        invitation=invitation,
                        name=new_form.cleaned_data["name"],
                        password=new_form.cleaned_data["password1"],
                    )
                    auth_login(request, user, backend=BACKEND)
                    return _welcome(request, membership)
                else:
                    status = 400
            except InvitationClosed as exc:
                return _closed(request, invitation, exc.reason)
            except AccountExists:
                # The account was created meanwhile (another tab): sign in to it instead.
                return redirect(request.path)

    context = {
        "invitation": invitation,
        "workspace": invitation.workspace,
        "role_label": invitation.get_role_display(),
        "inviter": invitation.invited_by.get_username() if invitation.invited_by else "",
        "mode": mode,
        "sign_in_form": sign_in_form,
        "new_form": new_form,
        "error": error,
    }
    return render(request, "workspaces/invitation.html", context, status=status)


def _sign_in_and_join(
    request: HttpRequest, invitation: Invitation, account, form: SignInToAcceptForm
) -> tuple[HttpResponse | None, int]:
    """The invited person's password signs them in and they join: (the redirect, 302), or
    (None, status) with the form saying why not. Attempts count against the sign-in
    throttle, as on the sign-in page."""
    if not form.is_valid():
        return None, 400
    address = client_address(request)
    username = account.get_username()
    wait = login_throttle.attempt(address, username)
    if wait is not None:
        minutes = max(1, -(-wait // 60))
        form.add_error(
            None,
            f"Too many failed sign-in attempts. Wait {minutes} minute"
            f"{'s' if minutes > 1 else ''} and try again.",
        )
        return None, 429
    user = authenticate(request, username=username, password=form.cleaned_data["password"])
    if user is None:
        form.add_error("password", "This is not the password of this account.")
        return None, 400
    login_throttle.succeeded(address, username)
    membership = invitation_accept(invitation=invitation, user=user)
    auth_login(request, user, backend=BACKEND)
    remember_time_zone(request, user_time_zone(user=user))
    return _welcome(request, membership), 302
