from __future__ import annotations

import hashlib
import secrets

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from workspaces import crypto

PUBLIC_ID_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"


def new_public_id() -> str:
    # Unguessable and URL-safe: the widget embeds it in pages anyone can read, so it must
    # not reveal how many agents exist or let one be guessed from another.
    return "ag_" + "".join(secrets.choice(PUBLIC_ID_ALPHABET) for _ in range(16))


def validate_phone_region(value: str) -> None:
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(f"{value!r} is not a known ISO 3166 region code (e.g. US, GB, FR).")


class Workspace(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        STAFF = "staff", "Staff"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "workspace"], name="uniq_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} is {self.role} of {self.workspace_id}"

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN


class Agent(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=120)
    public_id = models.CharField(max_length=32, unique=True, default=new_public_id)
    default_phone_region = models.CharField(
        max_length=2,
        default="US",
        validators=[validate_phone_region],
        help_text="Region assumed for phone numbers typed without a country code.",
    )
    # Keys of a signed identify (JWT contact_attributes, HMAC user_metadata) that match no
    # attribute become new attributes (type inferred, up to the per-agent cap): the
    # customer's own server sent them. Unsigned custom_data does so only when asked.
    create_attributes_from_signed = models.BooleanField(
        default=True,
        help_text="Unknown keys in a signed identify become new attributes (type inferred).",
    )
    create_attributes_from_unsigned = models.BooleanField(
        default=False,
        help_text="Unknown keys in unsigned custom_data become new attributes (type inferred).",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="uniq_agent_name"),
        ]

    def __str__(self) -> str:
        return self.name


def hash_api_key(raw: str) -> str:
    # API keys carry 256 bits of randomness, so a fast hash is enough: there is nothing to
    # brute-force, and lookups stay a single indexed equality.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKey(models.Model):
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdentitySecret(models.Model):
    """A signing secret for identify; the newest is current, older ones expire after rotation."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="identity_secrets")
    secret_encrypted = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    # Null while current; set to "now + grace period" when a newer secret replaces it.
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["agent", "-created_at"], name="idsecret_agent_created")]

    def __str__(self) -> str:
        return f"identity secret #{self.pk} of agent {self.agent_id}"

    @property
    def secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)


class UserSettings(models.Model):
    """A person's own preferences, whatever workspace they are looking at."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rapport_settings"
    )
    # An IANA zone ("Europe/Paris"); blank follows the browser's.
    time_zone = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"settings of user {self.user_id}"
