"""Identity: the widget's public endpoints, the admins' settings page, and the demo host page."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

import jwt
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import metrics
from core.errors import DomainError
from identity import selectors, services, snippets
from identity.sessions import InvalidSessionToken, session_token_issue, session_token_verify
from identity.verification import (
    HANDOFF_PARAM,
    JWT_ALGORITHM,
    user_hash_for,
)
from identity.widget_http import WidgetError, bearer_token, read_json, widget_endpoint
from workspaces.access import get_agent_access
from workspaces.models import Agent
from workspaces.selectors import agents_for_user, identity_secret_current
from workspaces.services import identity_secret_rotate

logger = logging.getLogger("rapport.identity")


# --- Widget endpoints (public, CORS) ----------------------------------------------------------


@widget_endpoint(methods=("POST",), limited=("POST",))
def identify(request: HttpRequest, agent: Agent) -> HttpResponse:
    try:
        data = read_json(request)
        result = services.identify(agent=agent, data=data, session_token=bearer_token(request))
    except DomainError as exc:
        # The code only: tokens, hashes and payloads never reach the log.
        logger.info("identify refused for agent %s: %s", agent.public_id, exc.code)
        metrics.IDENTIFY.labels(exc.code).inc()
        raise
    contact = result.contact
    metrics.IDENTIFY.labels(contact.identity if contact is not None else "anonymous").inc()
    body: dict[str, Any] = {
        "contact": None
        if contact is None
        else {"id": str(contact.pk), "name": result.display_name, "identity": contact.identity},
        "session_token": session_token_issue(session=result.session, agent=agent),
        "ignored_keys": result.ignored,
    }
    if result.session_context is not None:
        body["session_context"] = result.session_context
    return JsonResponse(body)


@widget_endpoint(methods=("GET",))
def identity_token(request: HttpRequest, agent: Agent) -> HttpResponse:
    try:
        session = session_token_verify(token=bearer_token(request), agent=agent)
        token = services.handoff_token_for_session(agent=agent, session=session)
    except InvalidSessionToken as exc:
        raise WidgetError("invalid_session", f"{str(exc).capitalize()}.", status=401) from None
    return JsonResponse(
        {
            "token": token,
            "param": HANDOFF_PARAM,
            "expires_in": settings.IDENTITY_HANDOFF_MAX_AGE_SECONDS,
        }
    )


# --- Settings page (admins) --------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
@never_cache
def identity_settings(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """Identity secret (reveal, rotate), server snippets, the attribute toggle, a token check.
    One URL, several buttons: POST `action` says which."""
    access = get_agent_access(request, agent_public_id, admin=True)
    agent = access.agent
    url = reverse("identity:settings", kwargs={"agent_public_id": agent.public_id})
    extra: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action == "rotate":
            identity_secret_rotate(agent=agent)
            until = timezone.now() + timedelta(seconds=settings.IDENTITY_SECRET_GRACE_SECONDS)
            messages.success(
                request,
                "A new identity secret is in use. Tokens and hashes made with the previous one "
                f"keep verifying until {timezone.localtime(until):%Y-%m-%d %H:%M %Z}; update your "
                "server before then.",
            )
            return redirect(url)
        if action == "settings":
            signed = request.POST.get("create_attributes_from_signed") == "on"
            unsigned = request.POST.get("create_attributes_from_unsigned") == "on"
            services.identity_settings_update(
                agent=agent, from_signed=signed, from_unsigned=unsigned
            )
            chosen = (("signed identifies", signed), ("custom_data", unsigned))
            kinds = [kind for kind, on in chosen if on]
            messages.success(
                request,
                f"New keys from {' and '.join(kinds)} now become attributes; others are listed "
                "in ignored_keys."
                if kinds
                else "New identify keys are now ignored (and listed in ignored_keys).",
            )
            return redirect(url)
        if action == "reveal":
            extra["revealed"] = selectors.identity_secret_plain(agent=agent)
            if request.htmx:
                return render(
                    request,
                    "identity/settings.html#identity-secret",
                    _context(agent, extra, request),
                )
        elif action == "check":
            extra["check"] = selectors.identify_check(
                agent=agent,
                token=request.POST.get("token", "")[:10000],
                user_id=request.POST.get("user_id", "")[:300],
                user_hash=request.POST.get("user_hash", "")[:300],
            )
            extra["check_input"] = {
                "token": request.POST.get("token", "")[:10000],
                "user_id": request.POST.get("user_id", "")[:300],
                "user_hash": request.POST.get("user_hash", "")[:300],
            }
            if request.htmx:
                return render(
                    request,
                    "identity/settings.html#identity-check",
                    _context(agent, extra, request),
                )
        else:
            extra["error"] = "Unknown action."
            status = 400
    return render(request, "identity/settings.html", _context(agent, extra, request), status=status)


def _context(agent: Agent, extra: dict[str, Any], request: HttpRequest) -> dict:
    current, previous = selectors.identity_secrets_overview(agent=agent)
    context = {
        "agent": agent,
        "current_secret": current,
        "previous_secrets": previous,
        "grace_hours": settings.IDENTITY_SECRET_GRACE_SECONDS // 3600,
        "algorithm": JWT_ALGORITHM,
        "handoff_param": HANDOFF_PARAM,
        "demo_enabled": settings.WIDGET_DEMO_ENABLED,
        "max_attributes": settings.MAX_ATTRIBUTES_PER_AGENT,
        **extra,
    }
    widget_url = request.build_absolute_uri(static("widget/rapport.js"))
    context["server_snippets"] = snippets.server_snippets()
    context["page_snippet"] = snippets.page_snippet(
        widget_url=widget_url, agent_public_id=agent.public_id
    )
    return context


# --- Demo host page (development) ---------------------------------------------------------------

DEMO_PRODUCTS = (
    {"slug": "mug", "name": "Sunrise mug", "blurb": "Stoneware, 350 ml.", "price": "€14"},
    {"slug": "tee", "name": "Harbour tee", "blurb": "Organic cotton, unisex.", "price": "€25"},
    {"slug": "tote", "name": "Market tote", "blurb": "Sturdy canvas.", "price": "€18"},
)

DEMO_USERS = (
    {"user_id": "1001", "name": "Ada Lovelace", "email": "ada@example.com"},
    {"user_id": "1002", "name": "Grace Hopper", "email": "grace@example.com"},
    {"user_id": "1003", "name": "Katherine Johnson", "email": "katherine@example.com"},
)


def _demo_agent(request: HttpRequest, public_id: str) -> Agent:
    if not settings.WIDGET_DEMO_ENABLED:
        raise Http404("The demo page is off (WIDGET_DEMO_ENABLED).")
    # The demo backend signs tokens with the identity secret: admins only, like the secret.
    return get_agent_access(request, public_id, admin=True).agent


@require_GET
@login_required
def demo_widget(request: HttpRequest) -> HttpResponse:
    """A pretend customer shop that embeds the widget (launcher and chat panel) with one
    script tag, beside controls that identify the visitor as the shop's backend would."""
    if not settings.WIDGET_DEMO_ENABLED:
        raise Http404("The demo page is off (WIDGET_DEMO_ENABLED).")
    agents = [a for a in agents_for_user(user=request.user) if a.my_role == "admin"]
    wanted = request.GET.get("agent", "")
    agent = next((a for a in agents if a.public_id == wanted), agents[0] if agents else None)
    if agent is None:
        raise Http404("You are not an admin of any agent.")
    return render(
        request,
        "identity/demo.html",
        {"agent": agent, "agents": agents, "users": DEMO_USERS, "products": DEMO_PRODUCTS},
    )


@require_POST
@login_required
def demo_sign(request: HttpRequest) -> HttpResponse:
    """The demo's "customer backend": signs a JWT or computes a user_hash for a chosen user,
    exactly as the snippets on the settings page tell customers to."""
    agent = _demo_agent(request, request.POST.get("agent", ""))
    secret_row = identity_secret_current(agent=agent)
    if secret_row is None:
        return JsonResponse({"error": "This agent has no identity secret."}, status=409)
    user_id = request.POST.get("user_id", "").strip()[:255]
    if not user_id:
        return JsonResponse({"error": "Choose a user id."}, status=400)
    if request.POST.get("mode") == "hmac":
        return JsonResponse(
            {
                "user_id": user_id,
                "user_hash": user_hash_for(secret=secret_row.secret, user_id=user_id),
            }
        )
    try:
        attributes = json.loads(request.POST.get("contact_attributes") or "{}")
    except json.JSONDecodeError as exc:
        return JsonResponse({"error": f"contact_attributes is not JSON: {exc}"}, status=400)
    if not isinstance(attributes, dict):
        return JsonResponse({"error": "contact_attributes must be a JSON object."}, status=400)
    payload = {
        "user_id": user_id,
        "contact_attributes": attributes,
        "exp": int(time.time()) + 600,
    }
    return JsonResponse({"token": jwt.encode(payload, secret_row.secret, algorithm=JWT_ALGORITHM)})
