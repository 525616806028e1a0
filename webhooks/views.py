"""Settings → Webhooks (admins): an agent's endpoints, each with its delivery log.

Admins add an endpoint (its signing secret is shown once, on the page the form leads to),
change its URL, description and events, switch it off and on, rotate its secret (shown
once too), delete it, send it a test event, and read and resend its deliveries. Like the
other settings pages except Members, the page is the admins' alone: staff get 403 on every
view, GET and POST. Every view re-checks the workspace and the role, and looks endpoints
and deliveries up inside the agent, so another agent's id is a 404.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from core.errors import ConflictError, ValidationFailed
from core.htmx import render_page_or_fragment, wants_fragment
from core.keyset import InvalidCursor, cursor_moment, cursor_uuid, decode_cursor, encode_cursor
from webhooks.forms import EVENT_HELP, EndpointForm
from webhooks.models import ALL_EVENTS, WebhookDelivery, WebhookEndpoint
from webhooks.rendering import messages_render
from webhooks.selectors import deliveries_of, delivery_get, endpoint_get, endpoints_of
from webhooks.services import (
    delivery_redeliver,
    endpoint_create,
    endpoint_delete,
    endpoint_rotate_secret,
    endpoint_send_test,
    endpoint_update,
)
from webhooks.transport import RESPONSE_LIMIT
from workspaces.access import get_agent_access
from workspaces.selectors import AgentAccess

# The secret a create or a rotation just made, kept for the page the redirect shows, once.
NEW_SECRET_SESSION = "webhook_new_secret"  # noqa: S105 (a session key, not a secret)
DELIVERIES_PER_PAGE = 50
# A delivery log with a pending delivery due within this refreshes itself while open.
REFRESH_WITHIN = timedelta(minutes=1)
PENDING = WebhookDelivery.Status.PENDING


# --- Lookups -----------------------------------------------------------------------------------


def _admin_access(request: HttpRequest, agent_public_id: str) -> AgentAccess:
    """The agent, for an admin of its workspace: 404 for anyone outside it, 403 for staff."""
    return get_agent_access(request, agent_public_id, admin=True)


def _endpoint_for(access: AgentAccess, endpoint_id: Any) -> WebhookEndpoint:
    try:
        return endpoint_get(agent=access.agent, endpoint_id=endpoint_id)
    except WebhookEndpoint.DoesNotExist:
        raise Http404("No such webhook endpoint.") from None


def _delivery_for(endpoint: WebhookEndpoint, delivery_id: Any) -> WebhookDelivery:
    try:
        return delivery_get(endpoint=endpoint, delivery_id=delivery_id)
    except WebhookDelivery.DoesNotExist:
        raise Http404("No such delivery.") from None


def _list_url(agent) -> str:
    return reverse("webhooks:endpoints", kwargs={"agent_public_id": agent.public_id})


def _endpoint_url(endpoint: WebhookEndpoint, agent, anchor: str = "") -> str:
    url = reverse(
        "webhooks:endpoint",
        kwargs={"agent_public_id": agent.public_id, "endpoint_id": endpoint.pk},
    )
    return f"{url}#{anchor}" if anchor else url


# --- What the pages show -----------------------------------------------------------------------


def _event_labels(events: list[str]) -> list[str]:
    return ["All events"] if ALL_EVENTS in events else list(events)


def _hours(value: float) -> str:
    return f"{value:g} hour{'' if value == 1 else 's'}"


def _endpoints_with_latest(agent) -> QuerySet[WebhookEndpoint]:
    """The agent's endpoints, each with its pending count and its latest delivery's status,
    time and answer, in one query (whatever the number of endpoints and deliveries)."""
    deliveries = WebhookDelivery.objects.filter(endpoint=OuterRef("pk"))
    pending = (
        deliveries.filter(status=PENDING)
        .order_by()
        .values("endpoint")
        .annotate(n=Count("pk"))
        .values("n")
    )
    latest = deliveries.order_by("-created_at", "-id")
    return (
        endpoints_of(agent=agent)
        .defer("secret_encrypted", "previous_secret_encrypted")
        .annotate(
            pending_count=Coalesce(Subquery(pending, output_field=IntegerField()), 0),
            last_status=Subquery(latest.values("status")[:1]),
            last_at=Subquery(latest.values("created_at")[:1]),
            last_response=Subquery(latest.values("response_status")[:1]),
            last_event=Subquery(latest.values("message__event_type")[:1]),
        )
    )


def _endpoint_notes(endpoint: WebhookEndpoint) -> None:
    """What the pages say about an endpoint's state, set on it."""
    endpoint.event_labels = _event_labels(endpoint.events)
    endpoint.switched_off = not endpoint.enabled and bool(endpoint.disabled_reason)
    endpoint.failing = endpoint.enabled and endpoint.failing_since is not None
    if endpoint.failing:
        endpoint.disable_at = endpoint.failing_since + timedelta(
            hours=settings.WEBHOOK_DISABLE_AFTER_HOURS
        )


def _deliveries_page(
    endpoint: WebhookEndpoint, cursor: str | None
) -> tuple[list[WebhookDelivery], str | None, str]:
    """Up to DELIVERIES_PER_PAGE deliveries, newest first, older than `cursor`; the cursor
    of the next older page (None on the last); a notice when `cursor` was not one of ours."""
    rows = deliveries_of(endpoint=endpoint).defer("message__body", "response_body")
    notice = ""
    if cursor:
        try:
            position = decode_cursor(cursor, keys=("at", "id"))
            at, pk = cursor_moment(position["at"]), cursor_uuid(position["id"])
        except InvalidCursor as exc:
            notice = str(exc)
        else:
            rows = rows.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=pk))
    found = list(rows[: DELIVERIES_PER_PAGE + 1])
    older = None
    if len(found) > DELIVERIES_PER_PAGE:
        found = found[:DELIVERIES_PER_PAGE]
        older = encode_cursor({"at": found[-1].created_at, "id": found[-1].pk})
    now = timezone.now()
    for delivery in found:
        delivery.sending = (
            delivery.status == PENDING
            and delivery.locked_until is not None
            and delivery.locked_until > now
        )
        delivery.due = delivery.status == PENDING and delivery.next_attempt_at <= now
    return found, older, notice


def _deliveries_context(
    request: HttpRequest, access: AgentAccess, endpoint: WebhookEndpoint, **extra: Any
) -> dict[str, Any]:
    cursor = request.GET.get("before") or None
    deliveries, older, notice = _deliveries_page(endpoint, cursor)
    soon = timezone.now() + REFRESH_WITHIN
    return {
        "agent": access.agent,
        "endpoint": endpoint,
        "deliveries": deliveries,
        "older_cursor": older,
        "first_page": cursor is None or bool(notice),
        "cursor_notice": notice,
        "endpoint_url": _endpoint_url(endpoint, access.agent),
        # Watch a delivery the worker is about to send (the first page only, while it is on).
        "refresh": cursor is None
        and endpoint.enabled
        and any(d.status == PENDING and d.next_attempt_at <= soon for d in deliveries),
        "per_page": DELIVERIES_PER_PAGE,
        **extra,
    }


def _endpoint_context(
    request: HttpRequest,
    access: AgentAccess,
    endpoint: WebhookEndpoint,
    *,
    form: EndpointForm | None = None,
    new_secret: dict | None = None,
) -> dict[str, Any]:
    _endpoint_notes(endpoint)
    now = timezone.now()
    previous_until = endpoint.previous_secret_expires_at
    if not endpoint.previous_secret_encrypted or previous_until is None or previous_until <= now:
        previous_until = None
    return {
        **_deliveries_context(request, access, endpoint),
        "workspace": access.agent.workspace,
        "form": form or EndpointForm.for_endpoint(endpoint),
        "event_help": EVENT_HELP,
        "new_secret": new_secret,
        "previous_until": previous_until,
        "grace": _hours(settings.WEBHOOK_ROTATION_GRACE_HOURS),
        "grace_hours": settings.WEBHOOK_ROTATION_GRACE_HOURS,
        "disable_after": _hours(settings.WEBHOOK_DISABLE_AFTER_HOURS),
        "list_url": _list_url(access.agent),
    }


def _list_page(
    request: HttpRequest,
    access: AgentAccess,
    *,
    form: EndpointForm | None = None,
    status: int = 200,
) -> HttpResponse:
    endpoints = list(_endpoints_with_latest(access.agent))
    for endpoint in endpoints:
        _endpoint_notes(endpoint)
    context = {
        "agent": access.agent,
        "workspace": access.agent.workspace,
        "endpoints": endpoints,
        "form": form or EndpointForm(initial={"events": [ALL_EVENTS]}),
        "event_help": EVENT_HELP,
        "max_endpoints": settings.WEBHOOK_MAX_ENDPOINTS,
        "at_max": len(endpoints) >= settings.WEBHOOK_MAX_ENDPOINTS,
        "retention_days": settings.WEBHOOK_RETENTION_DAYS,
        "disable_after": _hours(settings.WEBHOOK_DISABLE_AFTER_HOURS),
    }
    return render(request, "webhooks/endpoints.html", context, status=status)


def _endpoint_page(
    request: HttpRequest,
    access: AgentAccess,
    endpoint: WebhookEndpoint,
    *,
    form: EndpointForm | None = None,
    status: int = 200,
) -> HttpResponse:
    # Only the whole page takes the secret: the log's own refresh must not swallow it.
    showing = request.method == "GET" and not wants_fragment(request, "deliveries")
    new_secret = _pop_new_secret(request, endpoint) if showing else None
    context = _endpoint_context(request, access, endpoint, form=form, new_secret=new_secret)
    response = render_page_or_fragment(
        request,
        "webhooks/endpoint.html",
        "deliveries",
        context,
        target="deliveries",
        status=status,
    )
    if new_secret is not None:
        # The secret is shown in this page only: keep it out of every cache.
        add_never_cache_headers(response)
    return response


def _stash_new_secret(
    request: HttpRequest, endpoint: WebhookEndpoint, secret: str, *, rotated: bool
) -> None:
    """Keep a new secret for the page the redirect shows (post/redirect/get), once."""
    request.session[NEW_SECRET_SESSION] = {
        "endpoint": str(endpoint.pk),
        "secret": secret,
        "rotated": rotated,
    }


def _pop_new_secret(request: HttpRequest, endpoint: WebhookEndpoint) -> dict | None:
    """The stashed secret if it is this endpoint's; taken out of the session either way."""
    stashed = request.session.pop(NEW_SECRET_SESSION, None)
    if not stashed or stashed.get("endpoint") != str(endpoint.pk):
        return None
    return stashed


def _outcome(delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> tuple[bool, str]:
    """(went well, what to tell) after a test event was sent."""
    if delivery.status == WebhookDelivery.Status.SUCCEEDED:
        return True, (
            f"Test event delivered: the endpoint answered {delivery.response_status} in "
            f"{delivery.latency_ms} ms."
        )
    if delivery.status == WebhookDelivery.Status.FAILED:
        return False, f"The test event failed: {delivery.error or 'no answer'}"
    if not endpoint.enabled:
        return False, "The endpoint is off: the test event waits until you switch it on."
    if delivery.attempts:
        return False, (
            f"The test event failed: {delivery.error or 'no answer'} It is tried again "
            f"at {timezone.localtime(delivery.next_attempt_at):%H:%M:%S}."
        )
    return True, "The test event is queued; the worker sends it within seconds."


def _after_delivery_action(
    request: HttpRequest,
    access: AgentAccess,
    endpoint: WebhookEndpoint,
    *,
    ok: bool,
    text: str,
) -> HttpResponse:
    """The delivery log with the result on top (htmx), or back to the endpoint's page with
    the result as a message."""
    if wants_fragment(request, "deliveries"):
        context = _endpoint_context(request, access, endpoint)
        context["result"] = {"ok": ok, "text": text}
        return render(request, "webhooks/endpoint.html#deliveries", context)
    (messages.success if ok else messages.error)(request, text)
    return redirect(_endpoint_url(endpoint, access.agent, "deliveries"))


# --- Views -------------------------------------------------------------------------------------


@require_GET
@login_required
def endpoints(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """The agent's endpoints with their latest delivery, and the form to add one."""
    access = _admin_access(request, agent_public_id)
    return _list_page(request, access)


@require_POST
@login_required
def endpoint_create_view(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """Add an endpoint; its page then shows the signing secret, once."""
    access = _admin_access(request, agent_public_id)
    form = EndpointForm(request.POST)
    if not form.is_valid():
        return _list_page(request, access, form=form, status=400)
    try:
        endpoint, secret = endpoint_create(agent=access.agent, user=request.user, **form.values())
    except ValidationFailed as exc:
        form.add_refusal(exc.fields)
        return _list_page(request, access, form=form, status=400)
    except ConflictError as exc:
        form.add_error(None, exc.message)
        return _list_page(request, access, form=form, status=exc.status)
    _stash_new_secret(request, endpoint, secret, rotated=False)
    return redirect(_endpoint_url(endpoint, access.agent, "new-secret"))


@require_GET
@login_required
@vary_on_headers("HX-Request", "HX-Target")
def endpoint_detail(request: HttpRequest, agent_public_id: str, endpoint_id) -> HttpResponse:
    """One endpoint: its state, its recent deliveries (keyset pages, newest first), the
    form to change it, and its secret, test, on/off and delete controls."""
    access = _admin_access(request, agent_public_id)
    endpoint = _endpoint_for(access, endpoint_id)
    return _endpoint_page(request, access, endpoint)


@require_POST
@login_required
def endpoint_update_view(request: HttpRequest, agent_public_id: str, endpoint_id) -> HttpResponse:
    """Change the URL, description and events."""
    access = _admin_access(request, agent_public_id)
    endpoint = _endpoint_for(access, endpoint_id)
    form = EndpointForm(request.POST)
    if not form.is_valid():
        return _endpoint_page(request, access, endpoint, form=form, status=400)
    try:
        endpoint_update(endpoint, **form.values())
    except ValidationFailed as exc:
        form.add_refusal(exc.fields)  # nothing was changed: the service checks first
        return _endpoint_page(request, access, endpoint, form=form, status=400)
    messages.success(request, "Endpoint saved. The next events go out with these settings.")
    return redirect(_endpoint_url(endpoint, access.agent))


@require_POST
@login_required
def endpoint_enabled_view(request: HttpRequest, agent_public_id: str, endpoint_id) -> HttpResponse:
    """Switch an endpoint on (`enabled=on`) or off (anything else)."""
    access = _admin_access(request, agent_public_id)
    endpoint = _endpoint_for(access, endpoint_id)
    enabled = request.POST.get("enabled") == "on"
    endpoint_update(endpoint, enabled=enabled)
    if enabled:
        messages.success(request, "Endpoint switched on: deliveries waiting for it go out again.")
    else:
        messages.success(
            request,
            "Endpoint switched off: no new events are queued for it, and deliveries "
            "already waiting are held until you switch it on again.",
        )
    return redirect(_endpoint_url(endpoint, access.agent))


@require_POST
@login_required
def endpoint_rotate_view(request: HttpRequest, agent_public_id: str, endpoint_id) -> HttpResponse:
    """A new signing secret, shown once; the old one keeps signing beside it for
    WEBHOOK_ROTATION_GRACE_HOURS."""
    access = _admin_access(request, agent_public_id)
    endpoint = _endpoint_for(access, endpoint_id)
    secret = endpoint_rotate_secret(endpoint)
    _stash_new_secret(request, endpoint, secret, rotated=True)
    return redirect(_endpoint_url(endpoint, access.agent, "new-secret"))


@require_http_methods(["GET", "POST"])
@login_required
def endpoint_delete_view(request: HttpRequest, agent_public_id: str, endpoint_id) -> HttpResponse:
    """Ask first (GET, or a POST without `confirm=yes`), then delete the endpoint with its
    delivery log."""
    access = _admin_access(request, agent_public_id)
    endpoint = _endpoint_for(access, endpoint_id)
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        counts = WebhookDelivery.objects.filter(endpoint=endpoint).aggregate(
            total=Count("pk"), pending=Count("pk", filter=Q(status=PENDING))
        )
        context = {
            "agent": access.agent,
            "endpoint": endpoint,
            "counts": counts,
            "endpoint_url": _endpoint_url(endpoint, access.agent),
        }
        return render(request, "webhooks/endpoint_delete.html", context)
    url = endpoint.url
    endpoint_delete(endpoint)
    messages.success(request, f"Endpoint {url} deleted with its delivery log.")
    return redirect(_list_url(access.agent))


@require_POST
@login_required
def endpoint_test_view(request: HttpRequest, agent_public_id: str, endpoint_id) -> HttpResponse:
    """Send a `webhook.test` event to this endpoint now and tell how it went."""
    access = _admin_access(request, agent_public_id)
    endpoint = _endpoint_for(access, endpoint_id)
    delivery = endpoint_send_test(endpoint)
    ok, text = _outcome(delivery, endpoint)
    return _after_delivery_action(request, access, endpoint, ok=ok, text=text)


@require_GET
@login_required
def delivery_detail(
    request: HttpRequest, agent_public_id: str, endpoint_id, delivery_id
) -> HttpResponse:
    """One delivery: its outcome, the request body as sent and what the endpoint answered."""
    access = _admin_access(request, agent_public_id)
    endpoint = _endpoint_for(access, endpoint_id)
    delivery = _delivery_for(endpoint, delivery_id)
    messages_render([delivery.message])
    body = delivery.message.body
    try:
        pretty = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        pretty = body
    now = timezone.now()
    context = {
        "agent": access.agent,
        "endpoint": endpoint,
        "delivery": delivery,
        "request_body": pretty,
        "sending": delivery.status == PENDING
        and delivery.locked_until is not None
        and delivery.locked_until > now,
        "due": delivery.status == PENDING and delivery.next_attempt_at <= now,
        "response_limit_kb": RESPONSE_LIMIT // 1024,
        "endpoint_url": _endpoint_url(endpoint, access.agent),
        "list_url": _list_url(access.agent),
    }
    return render(request, "webhooks/delivery.html", context)


@require_POST
@login_required
def delivery_resend_view(
    request: HttpRequest, agent_public_id: str, endpoint_id, delivery_id
) -> HttpResponse:
    """Send a delivery's message again (the same webhook-id), as a new pending delivery."""
    access = _admin_access(request, agent_public_id)
    endpoint = _endpoint_for(access, endpoint_id)
    delivery = _delivery_for(endpoint, delivery_id)
    delivery_redeliver(delivery)
    event = delivery.message.event_type
    if endpoint.enabled:
        text = f"{event} queued again with the same webhook-id; it goes out within seconds."
    else:
        text = f"{event} queued again; it waits until the endpoint is switched on."
    return _after_delivery_action(request, access, endpoint, ok=True, text=text)
