from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from contacts.ids import uuid7


class Conversation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ESCALATED = "escalated", "Escalated"
        CLOSED = "closed", "Closed"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    agent = models.ForeignKey(
        "workspaces.Agent", on_delete=models.CASCADE, related_name="conversations", db_index=False
    )
    contact = models.ForeignKey(
        "contacts.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conversations",
        db_index=False,
    )
    visitor_session = models.ForeignKey(
        "identity.VisitorSession",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conversations",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    subject = models.CharField(max_length=255, blank=True, default="")
    # Set by a GDPR erasure: the transcript stays (anonymized), the person is gone.
    contact_erased = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    last_message_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["agent", "-last_message_at", "id"], name="conv_agent_activity"),
            models.Index(
                fields=["agent", "status", "-last_message_at", "id"], name="conv_agent_status"
            ),
            # A contact's history, newest or oldest first (read backwards), ties by id: the
            # keyset pages of the contact page and the API start their range here.
            models.Index(
                fields=["contact", "-last_message_at", "-id"], name="conv_contact_activity_id"
            ),
        ]

    def __str__(self) -> str:
        return self.subject or f"Conversation {self.id}"


class Message(models.Model):
    class Role(models.TextChoices):
        VISITOR = "visitor", "Visitor"
        BOT = "bot", "Bot"
        STAFF = "staff", "Staff"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    body = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["conversation", "created_at"], name="message_conv_time")]

    def __str__(self) -> str:
        return f"{self.role}: {self.body[:40]}"
