"""Webhook endpoints and the outbox: one message per event, one delivery per endpoint."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from contacts.ids import uuid7

# Every event type a subscription may name; "*" subscribes to all of them.
EVENT_TYPES = (
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "contact.restored",
    "contact.merged",
    "contact.erased",
    "contact.identified",
    "conversation.created",
    "conversation.status_changed",
    "import.completed",
)
ALL_EVENTS = "*"
# Not subscribable: sent by "Send test event" to one endpoint only.
TEST_EVENT = "webhook.test"
DESCRIPTION_MAX = 255
URL_MAX = 2000


class WebhookEndpoint(models.Model):
    """Where an agent's events go. The signing secret is stored encrypted (it must sign)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    agent = models.ForeignKey(
        "workspaces.Agent", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.CharField(max_length=URL_MAX)
    description = models.CharField(max_length=DESCRIPTION_MAX, blank=True, default="")
    events = models.JSONField(default=list)
    secret_encrypted = models.TextField()
    # The secret before the last rotation keeps signing (beside the new one) until then.
    previous_secret_encrypted = models.TextField(blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    # Why it was switched off: "" (on, or off by an admin) or what the worker saw.
    disabled_reason = models.CharField(max_length=255, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    # The first failed attempt since the last success; None while it succeeds.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["agent", "enabled"], name="webhook_endpoint_agent")]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return ALL_EVENTS in self.events or event_type in self.events


class WebhookMessage(models.Model):
    """One event, as sent: its body is signed byte for byte, so it is stored as text.

    The integer key is the outbox order; `uid` is the `webhook-id` header (the receiver's
    deduplication key, the same on every attempt and redelivery).

    A contact event is written as a `draft` (the contacts' ids and what changed) and its body
    is made when it is first sent or shown (`webhooks.rendering`): the contact's JSON costs
    nothing inside the change's transaction, and from then on every attempt sends the same
    bytes."""

    uid = models.UUIDField(default=uuid7, editable=False)
    agent = models.ForeignKey("workspaces.Agent", on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=40)
    # Messages with the same key reach an endpoint in the order they were written (a
    # contact's id; a bulk operation's own key for its batches).
    ordering_key = models.CharField(max_length=80, blank=True, default="")
    body = models.TextField(blank=True, default="")
    # {"items": [{"id", "event", "extra"}…], "batch": bool, "source": str} until rendered.
    draft = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["agent", "created_at"], name="webhook_message_agent")]
        # Unique per agent, like every unique constraint of a tenant's table (docs/SCALING.md);
        # the webhook-id a receiver deduplicates on is a uuid7, which does not repeat anyway.
        constraints = [
            models.UniqueConstraint(fields=["agent", "uid"], name="uniq_webhook_message_uid"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.uid}"

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.uid.hex}"


class WebhookDelivery(models.Model):
    """One message on its way to one endpoint, with the outcome of its last attempt."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="+")
    # Copied from the message, so the ordering check reads one table.
    ordering_key = models.CharField(max_length=80, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker holds a delivery while it sends it; a worker that died lets go at this time.
    locked_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, default="")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # The worker's due list.
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=Q(status="pending"),
            ),
            # Ordering: an earlier pending delivery of the same key to the same endpoint.
            models.Index(
                fields=["endpoint", "ordering_key", "message"],
                name="webhook_delivery_order",
                condition=Q(status="pending"),
            ),
            # Settings and the API: an endpoint's recent deliveries.
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} -> {self.endpoint_id}: {self.status}"
