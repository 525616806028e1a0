"""Reads for the identity settings page: the agent's secrets (masked) and a token checker."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from identity.verification import IdentifyError, hmac_verify, jwt_verify, user_id_from_claim
from workspaces.models import Agent, IdentitySecret
from workspaces.selectors import identity_secret_current, identity_secrets_valid


@dataclass(frozen=True)
class SecretSummary:
    """A secret as the settings page lists it: never the secret itself."""

    masked: str
    created_at: datetime
    expires_at: datetime | None


def mask_secret(secret: str) -> str:
    # The "rsk_" prefix says what kind of secret it is; the last four characters let an
    # admin tell two secrets apart. The 40 characters in between stay hidden.
    return f"{secret[:4]}{'•' * 12}{secret[-4:]}"


def identity_secrets_overview(*, agent: Agent) -> tuple[SecretSummary | None, list[SecretSummary]]:
    """The current secret and the rotated ones still verifying (grace period), masked."""
    now = timezone.now()
    current: SecretSummary | None = None
    previous: list[SecretSummary] = []
    for row in IdentitySecret.objects.filter(agent=agent).order_by("-created_at", "-id"):
        summary = SecretSummary(mask_secret(row.secret), row.created_at, row.expires_at)
        if row.expires_at is None and current is None:
            current = summary
        elif row.expires_at is not None and row.expires_at > now:
            previous.append(summary)
    return current, previous


def identity_secret_plain(*, agent: Agent) -> str | None:
    """The current secret in clear, for an admin who asked to reveal it."""
    row = identity_secret_current(agent=agent)
    return row.secret if row is not None else None


@dataclass(frozen=True)
class IdentifyCheck:
    """What identify would make of a token or a user_hash, without writing anything."""

    ok: bool
    code: str
    message: str
    user_id: str = ""
    claims: str = ""


def identify_check(
    *, agent: Agent, token: str = "", user_id: str = "", user_hash: str = ""
) -> IdentifyCheck:
    """Check a JWT, or a user_id with its user_hash, against the agent's valid secrets."""
    secrets = identity_secrets_valid(agent=agent)
    try:
        if token.strip():
            payload: dict[str, Any] = jwt_verify(token=token, secrets=secrets)
            stored = user_id_from_claim(payload.get("user_id"))
            attributes = payload.get("contact_attributes")
            if attributes is not None and not isinstance(attributes, dict):
                raise IdentifyError("validation_error", "contact_attributes must be an object.")
            claims = json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False)
            return IdentifyCheck(True, "ok", "Valid: identify accepts this token.", stored, claims)
        if user_id.strip() or user_hash.strip():
            stored = hmac_verify(user_id=user_id, user_hash=user_hash, secrets=secrets)
            return IdentifyCheck(True, "ok", "Valid: this user_hash proves the user_id.", stored)
    except IdentifyError as exc:
        return IdentifyCheck(False, exc.code, exc.message)
    return IdentifyCheck(False, "empty", "Paste a token, or a user_id and its user_hash.")
