"""Request and response shapes of the conversation API (validation and the OpenAPI schema)."""

from __future__ import annotations

from django.core.validators import RegexValidator
from rest_framework import serializers

from contacts.models import Identity
from helpdesk.models import Conversation, Message
from helpdesk.personalization import ESCAPES, TEMPLATE_MAX_LENGTH
from helpdesk.services import MESSAGE_MAX_LENGTH

# Spelled so that the OpenAPI pattern (which drf-spectacular copies from the validator) and
# the server agree: some character that is not whitespace, and no NUL anywhere.
MESSAGE_PATTERN = r"^[^\x00]*[^\s\x00][^\x00]*$"
NO_NUL_PATTERN = r"^[^\x00]*$"


class StrictCharField(serializers.CharField):
    """Text that must arrive as a JSON string: 0 or true is an error, not "0" or "True"."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class ConversationRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Conversation.Status.choices)


class ContextStripeAccountSerializer(serializers.Serializer):
    label = serializers.CharField()
    stripe_id = serializers.CharField()
    stripe_email = serializers.CharField()


class ContextContactSerializer(serializers.Serializer):
    """The verified contact as the contact JSON of the API, attributes limited to live ones."""

    id = serializers.UUIDField()
    external_id = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()
    avatar_url = serializers.CharField()
    company = serializers.CharField()
    identity = serializers.ChoiceField(choices=Identity.choices)
    verified_at = serializers.DateTimeField(allow_null=True)
    attributes = serializers.DictField(
        child=serializers.JSONField(),
        help_text="Non-archived custom attribute values by key, typed as stored.",
    )
    tags = serializers.ListField(child=serializers.CharField())
    stripe_accounts = ContextStripeAccountSerializer(many=True)
    first_seen_at = serializers.DateTimeField(allow_null=True)
    last_seen_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    deleted_at = serializers.DateTimeField(allow_null=True)


class SessionContextSerializer(serializers.Serializer):
    """What the visitor's page said beside its signed token: unverified session data."""

    data = serializers.DictField(
        child=serializers.JSONField(),
        help_text="The `user_metadata` object of the session's latest signed-token identify.",
    )
    verified = serializers.BooleanField(
        help_text="Always false: the signature covers the token, not this object. Use it to "
        "tailor answers (the page, the cart), never to decide who the person is."
    )
    source = serializers.ChoiceField(choices=["user_metadata"])
    updated_at = serializers.DateTimeField(help_text="When the widget last sent it.")


class ConversationContextSerializer(serializers.Serializer):
    conversation = ConversationRefSerializer()
    verified = serializers.BooleanField(
        help_text="True when the conversation's contact is verified; only then is it shown."
    )
    contact = ContextContactSerializer(
        allow_null=True,
        help_text="The verified contact, or null: an unverified contact is never revealed.",
    )
    session_context = SessionContextSerializer(
        allow_null=True,
        help_text=(
            "Session context of the visitor session this conversation came from: the "
            "`user_metadata` sent beside its signed token (JWT identify). Null when none was "
            "sent, or when that session is no longer signed in as this verified contact. "
            "Never stored on the contact."
        ),
    )


class TemplateRenderRequestSerializer(serializers.Serializer):
    template = StrictCharField(
        max_length=TEMPLATE_MAX_LENGTH,
        allow_blank=True,
        trim_whitespace=False,
        validators=[RegexValidator(NO_NUL_PATTERN, "The template may not contain NUL characters.")],
        help_text=(
            "Text with {{contact.name}}, {{contact.email}}, {{contact.phone}}, "
            "{{contact.external_id}} and {{contact.attr.<key>}} placeholders. Other {{…}} "
            "placeholders are left as written."
        ),
    )
    escape = serializers.ChoiceField(
        choices=ESCAPES,
        default="none",
        help_text=(
            "How values are encoded where they are inserted: none (plain text), url "
            "(percent-encoded), json (inside a JSON string) or html."
        ),
    )


class TemplateRenderSerializer(serializers.Serializer):
    rendered = serializers.CharField()
    verified = serializers.BooleanField(
        help_text="False when the contact is not verified: every placeholder rendered empty."
    )
    unknown_keys = serializers.ListField(
        child=serializers.CharField(),
        help_text="Placeholders naming no known field or live attribute (rendered empty).",
    )
    missing_keys = serializers.ListField(
        child=serializers.CharField(),
        help_text="Known placeholders that rendered empty because there is no value.",
    )


class BotMessageCreateSerializer(serializers.Serializer):
    body = StrictCharField(
        min_length=1,
        max_length=MESSAGE_MAX_LENGTH,
        trim_whitespace=False,
        validators=[
            RegexValidator(MESSAGE_PATTERN, "The message is empty or contains NUL characters.")
        ],
        help_text="The reply as plain text (surrounding whitespace is trimmed).",
    )


class ConversationMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.ChoiceField(choices=Message.Role.choices)
    body = serializers.CharField()
    created_at = serializers.DateTimeField()


class ConversationStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices)


class ConversationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Conversation.Status.choices)
    subject = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    last_message_at = serializers.DateTimeField()


class ConversationPageSerializer(serializers.Serializer):
    results = ConversationSerializer(many=True)
    next = serializers.URLField(allow_null=True)
