"""Strict request fields and the error body shared by every API serializer.

DRF's own fields are forgiving (a CharField takes 42 and stores "42", a BooleanField takes
"yes"); an API that says `string` in its schema should refuse a number with a message that
names the field, so clients find their bugs instead of storing surprises. Business rules
(valid emails, phone numbers, attribute types) stay in the services.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictRegexField(serializers.RegexField):
    def __init__(self, regex: str, *, message: str = "", **kwargs: Any) -> None:
        text = message or f"Must be a string matching {regex}."
        kwargs["error_messages"] = {"invalid": text, **kwargs.get("error_messages", {})}
        super().__init__(regex, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictUUIDField(serializers.UUIDField):
    default_error_messages = {"invalid": "Must be a contact id (a UUID string)."}

    def to_internal_value(self, data: Any):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}],
        "nullable": True,
        "description": "A string, number or boolean, coerced to the attribute's type.",
    }
)
class AttributeValueField(serializers.Field):
    """One custom attribute value as sent: a scalar, coerced later by the attribute's type."""

    default_error_messages = {"invalid": "An attribute value must be a string, number or boolean."}

    def to_internal_value(self, data: Any) -> Any:
        if data is not None and not isinstance(data, (str, int, float, bool)):
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class StrictSerializer(serializers.Serializer):
    # Refuses fields it does not declare: a misspelt field is an error, not a lost value.
    # (A comment, not a docstring: drf-spectacular would show a docstring to API users.)

    # Field name -> message for fields that exist elsewhere but cannot be sent here.
    refused_fields: Mapping[str, str] = {}

    def to_internal_value(self, data: Any) -> Any:
        unknown: dict[str, list[str]] = {}
        if isinstance(data, Mapping):
            for key in data:
                if key not in self.fields or self.fields[key].read_only:
                    message = self.refused_fields.get(str(key), "Unknown field.")
                    unknown[str(key)] = [message]
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            detail = (
                exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            )
            raise serializers.ValidationError({**detail, **unknown}) from None
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


# --- The error body (documentation of core.api.errors) --------------------------------


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, for programs: validation_error, not_found, …")
    message = serializers.CharField(help_text="For people: what is wrong and what to do.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Messages per field, e.g. {"email": ["…"], "attributes.plan": ["…"]}.',
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
