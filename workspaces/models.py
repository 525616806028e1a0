from __future__ import annotations

import hashlib
import secrets

import phonenumbers
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac

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
    # Part of every session's auth hash (workspaces.sessions): adding one signs the person
    # out everywhere at once, whatever the session backend (removal, role change).
    session_epoch = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"settings of user {self.user_id}"


class SessionUser(User):
    """The user of a signed-in request (workspaces.auth loads it with its settings in the
    same query): its session hash covers the password, as Django's does, and the session
    epoch, so sessions end when either changes."""

    class Meta:
        proxy = True

    @property
    def session_epoch(self) -> int:
        try:
            return self.rapport_settings.session_epoch
        except UserSettings.DoesNotExist:
            return 0

    def get_session_auth_hash(self) -> str:
        return session_auth_hash(self.password, self.session_epoch)

    def get_session_auth_fallback_hash(self):
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield session_auth_hash(self.password, self.session_epoch, secret=secret)


def session_auth_hash(password: str, epoch: int, *, secret: str | None = None) -> str:
    # Epoch 0 gives exactly Django's own hash, so sessions made before the epoch existed
    # (or by Django's own login with a plain User) stay valid until the first bump.
    value = password if not epoch else f"{password}\x00session-epoch:{epoch}"
    return salted_hmac(_SESSION_HASH_SALT, value, secret=secret, algorithm="sha256").hexdigest()


_SESSION_HASH_SALT = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"


def normalize_member_email(value: str) -> str:
    """A sign-in email as Rapport keeps it: trimmed and lower-cased (sign-in ignores case)."""
    return value.strip().lower()


def hash_invitation_token(raw: str) -> str:
    # 256 random bits, like API keys: a fast hash is enough and lookups stay one equality.
    return hashlib.sha256(raw.encode()).hexdigest()


class Invitation(models.Model):
    """An invitation to join a workspace with a role; only the hash of its link's token is
    kept. Open until accepted or revoked; its link works until `expires_at`."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=16, choices=Membership.Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # When the current link was made (a re-issue makes a new one and restarts the clock).
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One open invitation per address and workspace: inviting again re-issues it.
            models.UniqueConstraint(
                Lower("email"),
                "workspace",
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="uniq_open_invitation",
            ),
        ]

    def __str__(self) -> str:
        return f"invitation of {self.email} to {self.workspace_id}"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class WorkspaceEvent(models.Model):
    """The workspace's audit log: who invited, revoked, joined, changed a role or removed
    whom. The actor's and target's emails are copied so the log outlives the accounts."""

    class Action(models.TextChoices):
        INVITED = "invitation.created", "Invited"
        REISSUED = "invitation.reissued", "Re-issued an invitation"
        REVOKED = "invitation.revoked", "Revoked an invitation"
        ACCEPTED = "invitation.accepted", "Accepted an invitation"
        ROLE_CHANGED = "member.role_changed", "Changed a role"
        REMOVED = "member.removed", "Removed a member"

    # Indexed by wsevent_ws_created, whose first column it is.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True, default="")
    action = models.CharField(max_length=40, choices=Action.choices)
    target_email = models.CharField(max_length=254, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # The Members page reads the latest 50 of a workspace straight off this index.
            models.Index(fields=["workspace", "-created_at", "-id"], name="wsevent_ws_created")
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_email} on {self.target_email}"

    @property
    def summary(self) -> str:
        """What happened, as a sentence without its actor ("invited ada@… as Staff")."""
        details = self.details or {}
        role = _role_label(details.get("role"))
        target = self.target_email
        match self.action:
            case self.Action.INVITED:
                return f"invited {target} as {role}"
            case self.Action.REISSUED:
                return f"made a new invitation link for {target} ({role})"
            case self.Action.REVOKED:
                return f"revoked the invitation of {target}"
            case self.Action.ACCEPTED:
                how = "created an account and " if details.get("new_account") else ""
                return f"{how}joined as {role}"
            case self.Action.ROLE_CHANGED:
                before = _role_label(details.get("from"))
                after = _role_label(details.get("to"))
                return f"changed the role of {target} from {before} to {after}"
            case self.Action.REMOVED:
                if details.get("self"):
                    return "left the workspace"
                return f"removed {target} ({_role_label(details.get('role'))})"
        return self.get_action_display()


def _role_label(role: str | None) -> str:
    return dict(Membership.Role.choices).get(role or "", role or "?")
