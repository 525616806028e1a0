"""Endpoints (register, change, rotate, remove), redelivery and test events.

Callers check the admin role and the agent; these functions check the values."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from contacts.ids import uuid7
from core.errors import ConflictError, ValidationFailed
from webhooks import relay
from webhooks.events import outbox_write
from webhooks.models import (
    ALL_EVENTS,
    DESCRIPTION_MAX,
    EVENT_TYPES,
    TEST_EVENT,
    URL_MAX,
    WebhookDelivery,
    WebhookEndpoint,
)
from webhooks.secrets import secret_store
from webhooks.signing import new_secret
from webhooks.transport import literal_address_refused
from workspaces.models import Agent


def url_problem(url: str) -> str:
    """Why `url` cannot be a webhook target, or "" when it can."""
    if not url:
        return "Give the URL that should receive the events."
    if len(url) > URL_MAX:
        return f"Use at most {URL_MAX} characters."
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "A URL has no spaces or control characters."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "This is not a valid URL."
    if parts.scheme not in ("http", "https"):
        return "Use an http:// or https:// URL."
    if settings.WEBHOOK_REQUIRE_HTTPS and parts.scheme != "https":
        return "Use an https:// URL: events carry personal data."
    if not parts.hostname:
        return "The URL has no host."
    if parts.username or parts.password:
        return "Leave credentials out of the URL; verify the signature instead."
    if parts.fragment:
        return "A URL fragment (#…) is never sent; leave it out."
    if port == 0:
        return "The URL's port must be 1 to 65535."
    return literal_address_refused(parts.hostname)


def events_problem(events: Any) -> str:
    if not isinstance(events, list) or not events:
        return f'List the events to send, or ["{ALL_EVENTS}"] for all of them.'
    unknown = [e for e in events if not isinstance(e, str) or e not in (*EVENT_TYPES, ALL_EVENTS)]
    if unknown:
        return f"Unknown event {unknown[0]!r}; use {', '.join(EVENT_TYPES)} or {ALL_EVENTS}."
    return ""


def _cleaned(url: Any = None, events: Any = None, description: Any = None) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    if url is not None:
        text = str(url).strip()
        if problem := url_problem(text):
            errors["url"] = [problem]
        out["url"] = text
    if events is not None:
        if problem := events_problem(events):
            errors["events"] = [problem]
        else:
            out["events"] = [ALL_EVENTS] if ALL_EVENTS in events else sorted(set(events))
    if description is not None:
        text = " ".join(str(description).split())
        if len(text) > DESCRIPTION_MAX:
            errors["description"] = [f"Use at most {DESCRIPTION_MAX} characters."]
        out["description"] = text
    if errors:
        raise ValidationFailed(errors)
    return out


def endpoint_create(
    *, agent: Agent, url: str, events: list[str], description: str = "", user=None
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (the only time the secret is returned)."""
    values = _cleaned(url=url, events=events, description=description or "")
    with transaction.atomic():
        count = WebhookEndpoint.objects.select_for_update().filter(agent=agent).count()
        if count >= settings.WEBHOOK_MAX_ENDPOINTS:
            raise ConflictError(
                f"This agent already has {count} endpoints, the most it may have; remove one "
                "first.",
            )
        endpoint = WebhookEndpoint(agent=agent, created_by=user, **values)
        secret = new_secret()
        secret_store(endpoint, secret)
        endpoint.save()
    return endpoint, secret


def endpoint_update(endpoint: WebhookEndpoint, **changes: Any) -> WebhookEndpoint:
    """Change url, events, description and/or enabled; turning an endpoint back on clears
    its failure record (its waiting deliveries go out again)."""
    enabled = changes.pop("enabled", None)
    values = _cleaned(**changes)
    now = timezone.now()
    for name, value in values.items():
        setattr(endpoint, name, value)
    if enabled is not None and bool(enabled) != endpoint.enabled:
        endpoint.enabled = bool(enabled)
        endpoint.disabled_at = None if enabled else now
        endpoint.disabled_reason = ""
        endpoint.failing_since = None
    endpoint.updated_at = now
    endpoint.save()
    return endpoint


def endpoint_rotate_secret(endpoint: WebhookEndpoint) -> str:
    """A new secret; the old one keeps signing beside it for WEBHOOK_ROTATION_GRACE_HOURS."""
    now = timezone.now()
    secret = new_secret()
    grace = timedelta(hours=settings.WEBHOOK_ROTATION_GRACE_HOURS)
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted if grace else ""
    endpoint.previous_secret_expires_at = now + grace if grace else None
    secret_store(endpoint, secret)
    endpoint.updated_at = now
    endpoint.save()
    return secret


def endpoint_delete(endpoint: WebhookEndpoint) -> None:
    """Remove the endpoint with its delivery log (messages no endpoint needs are pruned).

    Switched off first, in a transaction of its own, so changes made from then on write no
    delivery for it; the row lock then waits for the writes already under way (they hold
    the endpoint FOR KEY SHARE from the moment they read it, `events._subscribed`), whose
    deliveries go with the rest (a delivery committed after the cascade collected its rows
    would break the foreign key at the end)."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False)
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
        if locked is not None:
            locked.delete()


def delivery_redeliver(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery's message again to its endpoint (same webhook-id), as a new delivery."""
    now = timezone.now()
    return WebhookDelivery.objects.create(
        endpoint_id=delivery.endpoint_id,
        message_id=delivery.message_id,
        ordering_key=f"redeliver:{uuid7()}",
        next_attempt_at=now,
        created_at=now,
    )


def endpoint_send_test(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A `webhook.test` event to this endpoint alone, attempted at once (retried by the
    worker like any other when the attempt fails and is worth retrying)."""
    with transaction.atomic():
        (message,) = outbox_write(
            agent_id=endpoint.agent_id,
            endpoints=[_OnlyFor(endpoint)],
            events=[
                (
                    TEST_EVENT,
                    f"test:{uuid7()}",
                    {"endpoint": {"id": str(endpoint.pk), "url": endpoint.url}},
                    None,
                )
            ],
        )
    delivery = WebhookDelivery.objects.get(message=message)
    if endpoint.enabled:
        relay.deliver([delivery.pk])
        delivery.refresh_from_db()
    return delivery


class _OnlyFor:
    """An endpoint stand-in that wants the test event (which no subscription names)."""

    def __init__(self, endpoint: WebhookEndpoint) -> None:
        self.pk = endpoint.pk

    def wants(self, event_type: str) -> bool:
        return True
