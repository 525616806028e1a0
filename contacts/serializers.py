"""API request validation and the documented shapes of contact answers.

Request serializers check structure and JSON types only (a string where a string belongs,
at most 1,000 contacts per bulk call); what a value means — a valid email, a phone number
for the agent's region, an attribute value of the right type — is decided by the services,
which raise field errors of their own. Answers are built by contacts.serialization; the
output serializers here describe them in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from contacts.cleaning import MAX_STRIPE_ACCOUNTS, MAX_TAGS_PER_CONTACT
from contacts.models import Identity
from contacts.normalize import (
    MAX_COMPANY,
    MAX_EMAIL,
    MAX_EXTERNAL_ID,
    MAX_NAME,
    MAX_URL,
)
from core.api.fields import (
    AttributeValueField,
    ErrorDetailSerializer,
    StrictCharField,
    StrictChoiceField,
    StrictRegexField,
    StrictSerializer,
    StrictUUIDField,
)

MAX_BULK = 1000
MAX_PHONE_INPUT = 64
STRIPE_ID_PATTERN = r"^cus_[A-Za-z0-9]{1,250}$"


def _text(max_length: int, help_text: str = "", **kwargs: Any) -> StrictCharField:
    return StrictCharField(
        max_length=max_length,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text=help_text,
        **kwargs,
    )


def _attributes_field() -> serializers.DictField:
    return serializers.DictField(
        child=AttributeValueField(allow_null=True),
        required=False,
        allow_null=True,
        help_text=(
            "Custom attribute values by key, coerced to each attribute's type "
            '("42" becomes 42 for a number). Keys merge one by one; null clears a key.'
        ),
    )


# --- Requests -------------------------------------------------------------------------------


class StripeAccountInputSerializer(StrictSerializer):
    """A linked Stripe customer."""

    label = _text(120)
    stripe_id = StrictRegexField(
        STRIPE_ID_PATTERN,
        message="Must be a Stripe customer id such as cus_ABC123.",
        help_text="A Stripe customer id, cus_…",
    )
    stripe_email = _text(MAX_EMAIL)


class ContactWriteSerializer(StrictSerializer):
    """A contact's writable fields, every one optional. Unknown fields are refused."""

    external_id = _text(
        MAX_EXTERNAL_ID,
        "Your id for this person. On create, an existing contact with this id is updated "
        "(and restored if deleted) instead. Set once; it never changes afterwards.",
    )
    name = _text(MAX_NAME)
    email = _text(MAX_EMAIL, "Stored trimmed with the domain lower-cased.")
    phone = _text(
        MAX_PHONE_INPUT,
        "Any format; stored as E.164. Numbers without a country code use the agent's "
        "default phone region.",
    )
    avatar_url = _text(MAX_URL, "An absolute http(s) URL.")
    company = _text(MAX_COMPANY)
    identity = StrictChoiceField(
        choices=Identity.choices,
        required=False,
        help_text=(
            "Identity level of a new contact (verified by default, since the API is a trusted "
            "channel). On an existing contact it can only go up."
        ),
    )
    attributes = _attributes_field()
    tags = serializers.ListField(
        child=StrictCharField(allow_blank=True),
        max_length=MAX_TAGS_PER_CONTACT,
        required=False,
        allow_null=True,
        help_text="The contact's tags: replaces the whole set (null or [] removes them all).",
    )
    stripe_accounts = StripeAccountInputSerializer(
        many=True,
        max_length=MAX_STRIPE_ACCOUNTS,
        required=False,
        allow_null=True,
        help_text="The linked Stripe customers: replaces the whole list.",
    )


class ContactPatchSerializer(ContactWriteSerializer):
    """The fields to change; those left out keep their values."""

    refused_fields = {"id": "The id of a contact cannot change."}


class _BulkItemsField(serializers.ListField):
    """A list of contacts whose items are validated one by one by the view, so that one bad
    item is reported in its own result instead of failing the call."""

    def run_child_validation(self, data: list) -> list:
        return list(data)


class ContactBulkSerializer(StrictSerializer):
    """Contacts to create or update in one call."""

    contacts = _BulkItemsField(
        child=ContactWriteSerializer(),
        min_length=1,
        max_length=MAX_BULK,
        help_text=(
            f"1 to {MAX_BULK:,} contacts, each upserted like POST /contacts/ (by external_id "
            "when given, else created)."
        ),
    )


class ContactEnsureSerializer(StrictSerializer):
    """Who to get or create: a fingerprint, or an email, phone or name to key on."""

    fingerprint = _text(
        MAX_EXTERNAL_ID,
        "A trusted id (your user id). Given: the verified contact with this external_id, "
        "created if missing. Omitted: an unverified contact keyed by the normalized email, "
        "else phone, else name.",
    )
    name = _text(MAX_NAME)
    email = _text(MAX_EMAIL)
    phone = _text(MAX_PHONE_INPUT)
    avatar_url = _text(MAX_URL)
    company = _text(MAX_COMPANY)
    attributes = _attributes_field()


class ContactMergeSerializer(StrictSerializer):
    """The two contacts to merge."""

    primary = StrictUUIDField(help_text="The contact that stays; its values win.")
    secondary = StrictUUIDField(help_text="The contact folded into the primary, then removed.")


class TagNamesSerializer(StrictSerializer):
    """Tags to add."""

    tags = serializers.ListField(
        child=StrictCharField(allow_blank=True),
        min_length=1,
        max_length=MAX_TAGS_PER_CONTACT,
        help_text="Tag names to add (created for the agent when new; matched ignoring case).",
    )


# --- Answers (documentation of contacts.serialization) -------------------------------------


class StripeAccountSerializer(serializers.Serializer):
    label = serializers.CharField()
    stripe_id = serializers.CharField()
    stripe_email = serializers.CharField()


class ContactSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    external_id = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField(help_text="E.164, or empty.")
    avatar_url = serializers.CharField()
    company = serializers.CharField()
    identity = serializers.ChoiceField(choices=Identity.choices)
    verified_at = serializers.DateTimeField(allow_null=True)
    attributes = serializers.DictField(
        child=AttributeValueField(),
        help_text="Values by attribute key (archived attributes only when asked for).",
    )
    tags = serializers.ListField(child=serializers.CharField())
    stripe_accounts = StripeAccountSerializer(many=True)
    first_seen_at = serializers.DateTimeField(allow_null=True)
    last_seen_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    deleted_at = serializers.DateTimeField(allow_null=True)


class ContactPageSerializer(serializers.Serializer):
    results = ContactSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page, or null at the end.")
    previous = serializers.URLField(
        allow_null=True, help_text="The previous page, or null on the first."
    )


class BulkItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in the request.")
    status = serializers.ChoiceField(choices=["created", "updated", "error"])
    id = serializers.UUIDField(allow_null=True, help_text="The contact, unless status is error.")
    error = ErrorDetailSerializer(allow_null=True, help_text="Why the item failed, if it did.")


class BulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    errors = serializers.IntegerField()
    results = BulkItemResultSerializer(many=True)


class EnsureResultSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    created = serializers.BooleanField()
    verified = serializers.BooleanField()


class TagCountSerializer(serializers.Serializer):
    name = serializers.CharField()
    contact_count = serializers.IntegerField(help_text="Live (not deleted) contacts with the tag.")


class TagListSerializer(serializers.Serializer):
    results = TagCountSerializer(many=True)


# --- Segments -------------------------------------------------------------------------------


class SegmentSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Use it as GET /api/v1/contacts/?segment=<id>.")
    name = serializers.CharField()
    query = serializers.CharField(
        help_text=(
            "The saved view as list parameters (the same syntax as GET /api/v1/contacts/), "
            "e.g. `match=any&attr.plan=pro&tag__eq=vip&ordering=-last_seen_at`; `cols` is "
            "the dashboard's columns."
        )
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    contact_count = serializers.IntegerField(
        required=False,
        help_text="With include_counts=true: how many contacts match now (estimated when large).",
    )
    contact_count_exact = serializers.BooleanField(
        required=False,
        help_text="With include_counts=true: false when contact_count is an estimate.",
    )


class SegmentListSerializer(serializers.Serializer):
    results = SegmentSerializer(many=True)
