"""Reading endpoints and their delivery logs, always within one agent."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from contacts.selectors import parse_contact_id as parse_uuid
from webhooks.models import WebhookDelivery, WebhookEndpoint
from workspaces.models import Agent


def endpoints_of(*, agent: Agent) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(agent=agent).order_by("created_at", "id")


def endpoint_get(*, agent: Agent, endpoint_id: Any) -> WebhookEndpoint:
    """WebhookEndpoint.DoesNotExist for a malformed, foreign or unknown id."""
    pk = parse_uuid(endpoint_id)
    if pk is None:
        raise WebhookEndpoint.DoesNotExist
    return endpoints_of(agent=agent).get(pk=pk)


def deliveries_of(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """Newest first, with their messages."""
    return (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("message")
        .order_by("-created_at", "-id")
    )


def delivery_get(*, endpoint: WebhookEndpoint, delivery_id: Any) -> WebhookDelivery:
    pk = parse_uuid(delivery_id)
    if pk is None:
        raise WebhookDelivery.DoesNotExist
    return deliveries_of(endpoint=endpoint).get(pk=pk)
