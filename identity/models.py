from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class VisitorSession(models.Model):
    """A widget visitor (its anonymous `visitor_id`) and the contact it is known as."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(
        "workspaces.Agent", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    visitor_id = models.CharField(max_length=128)
    contact = models.ForeignKey(
        "contacts.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="visitor_sessions",
    )
    # True when this session created `contact`: self-reported data may then overwrite its
    # own earlier answers, while for anyone else's contact it may only fill blanks.
    created_contact = models.BooleanField(default=False)
    # True when this session reached its contact by presenting a valid signature itself (a
    # JWT, an HMAC user_hash or a hand-off token). The trust rule of SPEC 6: a session stands
    # for a verified contact only when this is true. Merges, adoptions, imports and staff
    # edits can make a session's contact verified, but never set this flag.
    signed = models.BooleanField(default=False)
    # The `user_metadata` sent beside the signed token of this session's latest JWT identify:
    # session context for the bot (the page, the cart…). It is not covered by the signature,
    # so it is unverified and never written to the contact; a change of contact clears it.
    context = models.JSONField(null=True, blank=True)
    context_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "visitor_id"], name="uniq_visitor_session"),
        ]

    def __str__(self) -> str:
        return f"visitor {self.visitor_id}"


class HandoffTokenUse(models.Model):
    """A redeemed help-center hand-off token: each one carries an identity once.

    The token travels in a URL (`?rapport_identity=…`), where it can end up in browser
    history or a Referer header; remembering its id until it expires makes a copied link
    useless after the first page load.
    """

    agent = models.ForeignKey(
        "workspaces.Agent", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    jti = models.CharField(max_length=64)
    used_at = models.DateTimeField(default=timezone.now)
    # Rows are pruned once the token could no longer be redeemed anyway.
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        # Once per agent: a token is signed with one agent's secret and redeemed only at that
        # agent, so this is as strict as a global key, and it holds the tenant key like every
        # unique constraint of a tenant's table (docs/SCALING.md).
        constraints = [
            models.UniqueConstraint(fields=["agent", "jti"], name="uniq_handoff_token_use"),
        ]

    def __str__(self) -> str:
        return f"hand-off {self.jti}"
