"""An endpoint's signing secrets: stored encrypted, read back only to sign (or to show the
new one once, when it is made)."""

from __future__ import annotations

from django.utils import timezone

from webhooks.models import WebhookEndpoint
from workspaces.crypto import decrypt, encrypt


def secret_store(endpoint: WebhookEndpoint, secret: str) -> None:
    endpoint.secret_encrypted = encrypt(secret)


def endpoint_signing_secrets(endpoint: WebhookEndpoint, now=None) -> list[str]:
    """The current secret, and the one it replaced while that one's grace period lasts."""
    now = now or timezone.now()
    secrets = [decrypt(endpoint.secret_encrypted)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted and expires is not None and expires > now:
        secrets.append(decrypt(endpoint.previous_secret_encrypted))
    return secrets
