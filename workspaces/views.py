from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import PasswordResetView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.ratelimit import client_address
from workspaces import login_throttle, timezones
from workspaces.access import get_agent_access
from workspaces.forms import AccountForm, AgentSettingsForm, ApiKeyForm, MemberPasswordResetForm
from workspaces.selectors import agents_for_user, api_keys_for_agent, user_time_zone
from workspaces.services import (
    AgentNameTaken,
    NewApiKey,
    agent_update_settings,
    api_key_create,
    api_key_revoke,
    user_time_zone_set,
)


@require_http_methods(["GET", "POST"])
@csrf_protect
@never_cache
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    # Only a path on this site: anything else ("abc", a URL name, another host) is ignored.
    if not next_url.startswith("/") or not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    if request.user.is_authenticated:
        return redirect(next_url or settings.LOGIN_REDIRECT_URL)

    form = AuthenticationForm(request, data=request.POST or None)
    status = 200
    locked = ""
    if request.method == "POST":
        address = client_address(request)
        username = request.POST.get("username", "")[:150]
        wait = login_throttle.attempt(address, username)
        if wait is not None:
            # Counted and refused before the password is checked: a locked account cannot
            # be probed further.
            form = AuthenticationForm(request, initial={"username": username})
            locked = (
                f"Too many failed sign-in attempts. Wait {max(1, -(-wait // 60))} "
                f"minute{'s' if wait > 60 else ''} and try again."
            )
            status = 429
        elif form.is_valid():
            login_throttle.succeeded(address, username)
            auth_login(request, form.get_user())
            remember_time_zone(request, user_time_zone(user=form.get_user()))
            return redirect(next_url or settings.LOGIN_REDIRECT_URL)
        else:
            status = 400
    context = {"form": form, "next": next_url, "locked": locked}
    return render(request, "workspaces/login.html", context, status=status)


def admin_login(request: HttpRequest) -> HttpResponse:
    """Django admin's sign-in behind the same attempt counter as the dashboard's."""
    if request.method == "POST":
        address = client_address(request)
        username = request.POST.get("username", "")[:150]
        wait = login_throttle.attempt(address, username)
        if wait is not None:
            response = HttpResponse(
                "Too many failed sign-in attempts. Wait and try again.",
                status=429,
                content_type="text/plain",
            )
            response["Retry-After"] = str(wait)
            return response
        response = admin.site.login(request)
        if request.user.is_authenticated:
            login_throttle.succeeded(address, username)
        return response
    return admin.site.login(request)


@require_http_methods(["GET", "POST"])
@login_required
def account(request: HttpRequest) -> HttpResponse:
    """The signed-in person's own preferences (the time zone times are shown in)."""
    form = AccountForm(
        request.POST or None, initial={"time_zone": user_time_zone(user=request.user)}
    )
    if request.method == "POST" and form.is_valid():
        zone = form.cleaned_data["time_zone"]
        user_time_zone_set(user=request.user, time_zone=zone)
        remember_time_zone(request, zone)
        messages.success(
            request, f"Times are now shown in {zone}." if zone else "Times now follow your browser."
        )
        return redirect("account")
    context = {"form": form, "browser_zone": request.COOKIES.get("tz", "")}
    return render(request, "workspaces/account.html", context, status=400 if form.errors else 200)


def remember_time_zone(request: HttpRequest, zone: str) -> None:
    """The member's chosen zone for this session (read by workspaces.timezones)."""
    if zone:
        request.session[timezones.SESSION_KEY] = zone
    else:
        request.session.pop(timezones.SESSION_KEY, None)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    auth_logout(request)
    return redirect(settings.LOGOUT_REDIRECT_URL)


class PasswordReset(PasswordResetView):
    """Django's password reset, in Rapport's pages: the mail goes through EMAIL_URL, the
    page says the same whether or not the address has an account, and requests are
    throttled like sign-ins (each one sends a mail)."""

    form_class = MemberPasswordResetForm
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    @property
    def extra_email_context(self) -> dict:
        hours = settings.PASSWORD_RESET_TIMEOUT / 3600
        if hours >= 1 and hours == int(hours):
            valid_for = f"{int(hours)} hour{'s' if hours != 1 else ''}"
        else:
            valid_for = f"{settings.PASSWORD_RESET_TIMEOUT // 60} minutes"
        return {"valid_for": valid_for}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["available"] = settings.PASSWORD_RESET_BY_EMAIL
        return context

    def post(self, request, *args, **kwargs):
        if not settings.PASSWORD_RESET_BY_EMAIL:
            return self.render_to_response(self.get_context_data(), status=503)
        form = self.get_form()
        if not form.is_valid():
            response = self.form_invalid(form)
            response.status_code = 400
            return response
        wait = login_throttle.reset_attempt(client_address(request), form.cleaned_data["email"])
        if wait is not None:
            minutes = max(1, -(-wait // 60))
            form.add_error(
                None,
                f"Too many reset requests. Wait {minutes} minute{'s' if minutes > 1 else ''} "
                "and try again.",
            )
            response = self.form_invalid(form)
            response.status_code = 429
            return response
        return self.form_valid(form)


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send the user to their first agent's contacts, or explain why there is none."""
    agents = agents_for_user(user=request.user)
    if agents:
        return redirect("contacts:list", agent_public_id=agents[0].public_id)
    return render(request, "workspaces/no_workspace.html")


# --- Agent settings: general settings and API keys (admins) ---------------------------------


def _settings_page(
    request: HttpRequest,
    access,
    *,
    settings_form: AgentSettingsForm | None = None,
    key_form: ApiKeyForm | None = None,
    new_key: NewApiKey | None = None,
    status: int = 200,
) -> HttpResponse:
    agent = access.agent
    context = {
        "agent": agent,
        "settings_form": settings_form or AgentSettingsForm(agent=agent),
        "key_form": key_form or ApiKeyForm(),
        "api_keys": list(api_keys_for_agent(agent=agent).select_related("created_by")),
        "new_key": new_key,
        "api_docs_url": reverse("api:docs"),
    }
    response = render(request, "workspaces/settings.html", context, status=status)
    if new_key is not None:
        # The raw key is in this page only: keep it out of every cache.
        add_never_cache_headers(response)
    return response


NEW_KEY_SESSION = "new_api_key"


@require_http_methods(["GET", "POST"])
@login_required
def agent_settings(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """The agent's name and default phone region, and its API keys."""
    access = get_agent_access(request, agent_public_id, admin=True)
    if request.method == "GET":
        return _settings_page(request, access, new_key=_pop_new_key(request, access.agent))
    form = AgentSettingsForm(request.POST, agent=access.agent)
    if form.is_valid():
        try:
            agent_update_settings(agent=access.agent, **form.cleaned_data)
        except AgentNameTaken:
            form.add_error("name", "Another agent of this workspace has this name.")
        else:
            messages.success(request, "Settings saved.")
            return redirect("workspaces:settings", agent_public_id=access.agent.public_id)
    return _settings_page(request, access, settings_form=form, status=400)


@require_http_methods(["GET", "POST"])
@login_required
def api_key_create_view(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """Create a key, then show it once on the settings page (post/redirect/get: a reload
    creates no second key). Only its hash is kept; the raw key waits in the session for
    that one page view."""
    access = get_agent_access(request, agent_public_id, admin=True)
    settings_url = reverse(
        "workspaces:settings", kwargs={"agent_public_id": access.agent.public_id}
    )
    if request.method == "GET":
        return redirect(settings_url)
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, access, key_form=form, status=400)
    new_key = api_key_create(
        agent=access.agent, name=form.cleaned_data["name"], created_by=request.user
    )
    request.session[NEW_KEY_SESSION] = {
        "agent": access.agent.public_id,
        "key_id": new_key.api_key.pk,
        "raw": new_key.raw,
    }
    return redirect(settings_url)


def _pop_new_key(request: HttpRequest, agent) -> NewApiKey | None:
    """The key created just before this page view, once; None on any later view."""
    stashed = request.session.pop(NEW_KEY_SESSION, None)
    if not stashed or stashed.get("agent") != agent.public_id:
        return None
    api_key = api_keys_for_agent(agent=agent).filter(pk=stashed.get("key_id")).first()
    return NewApiKey(api_key=api_key, raw=stashed["raw"]) if api_key else None


@require_POST
@login_required
def api_key_revoke_view(request: HttpRequest, agent_public_id: str, key_id: int) -> HttpResponse:
    access = get_agent_access(request, agent_public_id, admin=True)
    api_key = get_object_or_404(api_keys_for_agent(agent=access.agent), pk=key_id)
    api_key_revoke(api_key=api_key)
    messages.success(request, f"API key “{api_key.name}” revoked; it no longer works.")
    return redirect("workspaces:settings", agent_public_id=access.agent.public_id)
