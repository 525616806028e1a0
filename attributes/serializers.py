"""API request validation and documented answers for the attribute schema.

Structure and JSON types are checked here; the rules (key format, option lists, the
attribute cap, options still in use) are the services'.
"""

from __future__ import annotations

from rest_framework import serializers

from attributes.models import KEY_PATTERN, AttributeType
from attributes.services import MAX_OPTIONS
from core.api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictRegexField,
    StrictSerializer,
)

MAX_LABEL = 120
MAX_DESCRIPTION = 2000


def _options_field() -> serializers.ListField:
    return serializers.ListField(
        child=StrictCharField(max_length=MAX_LABEL),
        max_length=MAX_OPTIONS,
        required=False,
        help_text="The choices of a select attribute (only select attributes have options).",
    )


class AttributeCreateSerializer(StrictSerializer):
    """A new custom attribute."""

    key = StrictRegexField(
        KEY_PATTERN,
        message=(
            "Keys start with a lowercase letter, then up to 62 lowercase letters, digits or "
            "underscores (e.g. plan or signup_date)."
        ),
        help_text="Immutable slug: a lowercase letter, then lowercase letters, digits or _.",
    )
    type = StrictChoiceField(choices=AttributeType.choices, help_text="Immutable.")
    label = StrictCharField(
        max_length=MAX_LABEL,
        required=False,
        allow_blank=True,
        help_text="Shown to people; defaults to the key in words.",
    )
    description = StrictCharField(max_length=MAX_DESCRIPTION, required=False, allow_blank=True)
    options = _options_field()
    secure = StrictBooleanField(
        required=False,
        help_text=(
            "Written only by trusted channels (the API, admins, imports, signed identify "
            "tokens); self-reported data never sets it."
        ),
    )


class AttributeUpdateSerializer(StrictSerializer):
    """The attribute settings to change."""

    refused_fields = {
        "key": "The key of an attribute cannot change.",
        "type": "The type of an attribute cannot change; create a new attribute instead.",
        "archived": "Use POST …/archive/ or …/restore/.",
    }

    label = StrictCharField(max_length=MAX_LABEL, required=False)
    description = StrictCharField(max_length=MAX_DESCRIPTION, required=False, allow_blank=True)
    options = _options_field()
    secure = StrictBooleanField(required=False)


class AttributeSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    type = serializers.ChoiceField(choices=AttributeType.choices)
    description = serializers.CharField()
    options = serializers.ListField(child=serializers.CharField())
    secure = serializers.BooleanField()
    archived = serializers.BooleanField(
        help_text="Hidden from forms, columns and contact answers; values are kept."
    )
    position = serializers.IntegerField(help_text="Display order.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AttributeListSerializer(serializers.Serializer):
    results = AttributeSerializer(many=True)


class AttributeDeletedSerializer(serializers.Serializer):
    key = serializers.CharField()
    values_removed = serializers.IntegerField(help_text="Contacts that held a value for it.")
