from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Concat, Length, Lower
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone

from contacts.ids import uuid7

LIVE = Q(deleted_at__isnull=True)


class Identity(models.TextChoices):
    VERIFIED = "verified", "Verified"
    SELF_REPORTED = "self_reported", "Self-reported"
    ANONYMOUS = "anonymous", "Anonymous"


# Identity only ever moves up this ladder: a verified contact never becomes unverified.
IDENTITY_RANK = {Identity.ANONYMOUS: 0, Identity.SELF_REPORTED: 1, Identity.VERIFIED: 2}

# What each sortable core column is ordered by. Text people type is ordered without regard
# to case ("alice" beside "Alice", not after "Zoe"). Every entry has a matching index below:
# (agent, expression, id) restricted to live contacts, so a sorted page is an index scan
# that stops after one page, and the id tie-breaker keeps pages stable.
# Nullable columns sort through a stand-in ("never seen" as the epoch, no external id as "")
# so every sort key is a plain value and keyset pagination needs no NULL special cases.
# Conversations are counted on the contact (conversation_count, kept by the help desk), so
# "most conversations first" reads an index like any other column instead of counting.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
SORT_EXPRESSIONS = {
    "name": Lower("name"),
    "email": Lower("email"),
    "company": Lower("company"),
    "phone": F("phone"),
    "external_id": Coalesce("external_id", Value("")),
    "identity": F("identity"),
    "created_at": F("created_at"),
    "updated_at": F("updated_at"),
    "last_seen_at": Coalesce("last_seen_at", Value(NEVER)),
    "first_seen_at": Coalesce("first_seen_at", Value(NEVER)),
    "conversation_count": F("conversation_count"),
}
SORTABLE_FIELDS = tuple(SORT_EXPRESSIONS)


def _sort_index(field: str) -> models.Index:
    return models.Index(
        F("agent"),
        SORT_EXPRESSIONS[field],
        F("id"),
        name=f"contact_sort_{field}"[:30],
        condition=LIVE,
    )


# The channels whose contacts a signed identify may adopt by email (SPEC 6): a team made
# them (API, import, dashboard), so the signed-in person is who they were made for.
ADOPTABLE_SOURCES = ("api", "import", "staff")

# Who made a contact verified, as its badge says it (SPEC 2: a trusted channel).
VERIFIED_LABELS = {
    "jwt": "Verified",
    "hmac": "Verified",
    "staff": "Verified by staff",
    "api": "Verified by API",
    "import": "Verified by import",
}


class Contact(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # Composite indexes below all lead with agent, so the plain FK index would be dead weight.
    agent = models.ForeignKey(
        "workspaces.Agent", on_delete=models.CASCADE, related_name="contacts", db_index=False
    )
    # NULL, not "": many contacts have no external id, and the unique constraint ignores NULLs.
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    # Key of an unverified contact created by "ensure" (hash of its email, phone or name).
    fingerprint = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    name = models.CharField(max_length=255, blank=True, default="")
    email = models.CharField(max_length=254, blank=True, default="")
    phone = models.CharField(max_length=20, blank=True, default="")
    avatar_url = models.CharField(max_length=2000, blank=True, default="")
    company = models.CharField(max_length=255, blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    identity = models.CharField(max_length=16, choices=Identity.choices, default=Identity.ANONYMOUS)
    # The channel that last raised the identity level: jwt, hmac, api, staff, import, widget.
    identity_source = models.CharField(max_length=16, blank=True, default="")
    verified_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    conversation_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # One lower-cased haystack for "search as you type" (name, email, external id, phone
    # digits), kept by the database itself. On PostgreSQL a trigram GIN index on it
    # (migration 0002) answers substring searches without scanning the table.
    search_text = models.GeneratedField(
        expression=Lower(
            Concat(
                "name",
                Value(" "),
                "email",
                Value(" "),
                Coalesce("external_id", Value("")),
                Value(" "),
                "phone",
            )
        ),
        output_field=models.TextField(),
        db_persist=True,
    )

    tags = models.ManyToManyField("contacts.Tag", through="contacts.ContactTag", related_name="+")

    class Meta:
        constraints = [
            # Over live and soft-deleted contacts alike: a deleted contact keeps its id so an
            # upsert restores it instead of creating a second person.
            models.UniqueConstraint(
                fields=["agent", "external_id"], name="uniq_contact_external_id"
            ),
            models.UniqueConstraint(
                fields=["agent", "fingerprint"],
                name="uniq_contact_fingerprint",
                condition=Q(fingerprint__isnull=False),
            ),
            models.CheckConstraint(
                condition=Q(identity__in=[c.value for c in Identity]), name="contact_identity_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["agent", "-deleted_at", "id"],
                name="contact_deleted",
                condition=Q(deleted_at__isnull=False),
            ),
            # The email sort index doubles as the case-insensitive lookup index (merge offers,
            # import matching, self-reported identify all look live contacts up by email).
            *[_sort_index(f) for f in SORTABLE_FIELDS],
            # Self-reported contacts by email or phone, oldest first: what every verified
            # identify probes (the twins it folds in) and a self-reported identify attaches
            # to. Their own indexes because the sort indexes leave an ORDER BY created_at
            # LIMIT to the planner, which on a new agent's stale statistics walked the
            # agent's whole created_at index instead (2 ms at 2,000 contacts, planned again
            # on every call); these answer in the order asked, and only self-reported rows
            # pay for them.
            *[
                models.Index(
                    F("agent"),
                    key,
                    F("created_at"),
                    F("id"),
                    name=f"contact_self_reported_{name}",
                    condition=Q(deleted_at__isnull=True, identity=Identity.SELF_REPORTED),
                )
                for name, key in (("email", Lower("email")), ("phone", F("phone")))
            ],
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.phone or self.external_id or str(self.id)

    @property
    def display_name(self) -> str:
        return self.name or self.email or self.phone or self.external_id or "Anonymous visitor"

    @property
    def is_verified(self) -> bool:
        return self.identity == Identity.VERIFIED

    @property
    def identity_label(self) -> str:
        """The identity badge, honest about who vouched: only a signed identify proves the
        visitor is this person; staff, the API and imports vouch for the record."""
        if self.identity != Identity.VERIFIED:
            return self.get_identity_display()
        return VERIFIED_LABELS.get(self.identity_source, "Verified")

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class Tag(models.Model):
    agent = models.ForeignKey(
        "workspaces.Agent", on_delete=models.CASCADE, related_name="tags", db_index=False
    )
    name = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint("agent", Lower("name"), name="uniq_tag_name_ci"),
        ]

    def __str__(self) -> str:
        return self.name


class ContactTag(models.Model):
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="contact_tags", db_index=False
    )
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="contact_tags")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "tag"], name="uniq_contact_tag"),
        ]
        indexes = [models.Index(fields=["tag", "contact"], name="contacttag_tag_contact")]

    def __str__(self) -> str:
        return f"{self.contact_id} #{self.tag_id}"


class StripeAccount(models.Model):
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="stripe_accounts", db_index=False
    )
    label = models.CharField(max_length=120, blank=True, default="")
    stripe_id = models.CharField(max_length=255)
    stripe_email = models.CharField(max_length=254, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["contact", "stripe_id"], name="uniq_contact_stripe_id"),
        ]

    def __str__(self) -> str:
        return self.stripe_id


class AuditEvent(models.Model):
    """Who changed what on a contact. Survives the contact only as a PII-free erasure record."""

    class Action(models.TextChoices):
        CREATED = "created"
        UPDATED = "updated"
        DELETED = "deleted"
        RESTORED = "restored"
        MERGED = "merged"
        ERASED = "erased"

    agent = models.ForeignKey("workspaces.Agent", on_delete=models.CASCADE, related_name="+")
    # A plain id, not a foreign key: the erasure record must outlive the contact row.
    contact_id = models.UUIDField()
    action = models.CharField(max_length=16, choices=Action.choices)
    channel = models.CharField(max_length=16)
    actor_label = models.CharField(max_length=255, blank=True, default="")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # {"field": [before, after], "attributes.plan": [...], "tags": [[...], [...]]}
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["contact_id", "-created_at"], name="audit_contact_time")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.contact_id} by {self.channel}"


class TablePreference(models.Model):
    """A staff member's contacts-table layout for one agent (columns, rows per page)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey("workspaces.Agent", on_delete=models.CASCADE, related_name="+")
    columns = models.JSONField(default=list, blank=True)
    page_size = models.PositiveSmallIntegerField(default=50)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "agent"], name="uniq_table_preference"),
        ]

    def __str__(self) -> str:
        return f"table of user {self.user_id} for agent {self.agent_id}"


class MergedContact(models.Model):
    """A contact merged away, and the contact it lives on in: its old page redirects there.
    (Only ids: the merged-away person's name and email are in the survivor's history.)"""

    id = models.UUIDField(primary_key=True)
    into = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    merged_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.id} merged into {self.into_id}"


# The longest note a team member may write (a note is a remark, not a document).
NOTE_MAX_LENGTH = 5000


class Note(models.Model):
    """A team member's note on a contact: plain text, shown newest first on its page."""

    # The (contact, -created_at, -id) index below serves every read by contact.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="notes", db_index=False
    )
    # The agent again, so an erasure looks through one agent's notes for the person.
    agent = models.ForeignKey("workspaces.Agent", on_delete=models.CASCADE, related_name="+")
    # The author's name is kept: the note still says who wrote it after they leave.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_name = models.CharField(max_length=255, blank=True, default="")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(LessThanOrEqual(Length("body"), NOTE_MAX_LENGTH)) & ~Q(body=""),
                name="note_body_length",
            ),
        ]
        indexes = [
            models.Index(fields=["contact", "-created_at", "-id"], name="note_contact_time"),
        ]

    def __str__(self) -> str:
        return f"note {self.pk} on {self.contact_id}"

    @property
    def edited(self) -> bool:
        return self.updated_at > self.created_at


SEGMENT_NAME_MAX = 80
SEGMENT_QUERY_MAX = 4000


class Segment(models.Model):
    """A saved table state (search, filters, conditions, match, sort, columns) under a name:
    private to its owner, or shared with everyone who works on the agent."""

    # Both constraints lead with the agent, so the plain FK index would be dead weight.
    agent = models.ForeignKey(
        "workspaces.Agent", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # A shared segment outlives its creator's account (the team still uses it).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(max_length=SEGMENT_NAME_MAX)
    shared = models.BooleanField(default=False)
    # The table's query string without paging (contacts.query.segments.segment_query).
    query = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # One name per person (any case); the sidebar lists theirs by it.
            models.UniqueConstraint(
                F("agent"), F("owner"), Lower("name"), name="uniq_segment_owner_name"
            ),
            # Shared names are the team's: two "VIP" entries would be ambiguous.
            models.UniqueConstraint(
                F("agent"), Lower("name"), condition=Q(shared=True), name="uniq_segment_shared_name"
            ),
            models.CheckConstraint(
                condition=Q(LessThanOrEqual(Length("query"), SEGMENT_QUERY_MAX)) & ~Q(name=""),
                name="segment_query_length",
            ),
        ]

    def __str__(self) -> str:
        return self.name
