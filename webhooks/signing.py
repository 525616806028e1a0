"""Standard Webhooks signatures (standardwebhooks.com) with the `standardwebhooks` package.

`webhook-signature` holds one `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` per
secret, separated by spaces: while a rotated secret's grace period lasts, both sign, so a
receiver still holding the old secret keeps verifying."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature_header(
    secrets_in_use: Iterable[str], *, msg_id: str, at: datetime, body: str | bytes
) -> str:
    return " ".join(
        Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body) for secret in secrets_in_use
    )


def signed_headers(
    secrets_in_use: Iterable[str], *, msg_id: str, at: datetime, body: str | bytes
) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature_header(secrets_in_use, msg_id=msg_id, at=at, body=body),
    }
