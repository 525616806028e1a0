"""Reading an identify body: which mode it is, the visitor id, and the contact input it
carries. Pure helpers (no database); every problem is an `IdentifyError` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from core.errors import ValidationFailed
from identity.verification import IdentifyError

# Contact fields a signed identify may set; everything else in the object is an attribute key.
CORE_KEYS = ("name", "email", "phone", "company", "avatar_url")
# What an unsigned identify may say at the top level (SPEC 6, mode 3): self-reported values,
# written like name/email/phone (a contact of someone else's only has its blanks filled).
SELF_REPORTED_KEYS = ("email", "name", "phone", "company", "avatar_url")
# Contact fields that identify never writes from a payload, whatever the channel.
RESERVED_KEYS = {
    "id",
    "external_id",
    "user_id",
    "identity",
    "fingerprint",
    "tags",
    "stripe_accounts",
    "attributes",
    "verified_at",
    "first_seen_at",
    "last_seen_at",
    "created_at",
    "updated_at",
    "deleted_at",
}
MAX_VISITOR_ID = 128
# The most session context (a signed-token identify's user_metadata) kept for the bot, as JSON.
MAX_SESSION_CONTEXT_BYTES = 16 * 1024

# The keys each mode reads; anything else in the body is listed in ignored_keys.
MODE_KEYS = {
    "jwt": {"token", "user_metadata"},
    "handoff": {"identity_token"},
    "hmac": {"user_id", "user_hash", "user_metadata"},
    "self_reported": {*SELF_REPORTED_KEYS, "custom_data"},
    "anonymous": set(),
}
MODE_LABELS = {
    "jwt": "signed-token",
    "handoff": "hand-off",
    "hmac": "HMAC",
    "self_reported": "self-reported",
    "anonymous": "anonymous",
}

# Why a key matching no attribute was not stored, by kind of identify.
UNKNOWN_ATTRIBUTE = {
    True: "No attribute has this key, and new attributes from signed identifies are turned off "
    "(Settings → Identity verification).",
    False: "No attribute has this key; unsigned custom_data does not create attributes unless "
    "that is turned on (Settings → Identity verification).",
}
# Reasons the contact cleaner gives for keys it skipped -> (code, explanation).
CLEAN_REASONS = {
    "unknown attribute": ("unknown_attribute", ""),
    "secure attribute": (
        "secure_attribute",
        "Secure attribute: only a signed token's contact_attributes may write it.",
    ),
    "archived attribute": ("archived_attribute", "The attribute is archived."),
    "attribute limit reached": ("attribute_limit", ""),
    "not a valid attribute key": (
        "invalid_key",
        "Attribute keys are a lowercase letter, then lowercase letters, digits or _.",
    ),
    "unknown attribute without a usable value": (
        "unusable_value",
        "A new attribute needs a plain value (text, number, true/false, date or URL).",
    ),
}


def identify_mode(data: Mapping[str, Any]) -> str:
    """The strongest proof present decides; weaker keys beside it are listed as not used."""
    if "token" in data:
        return "jwt"
    if "identity_token" in data:
        return "handoff"
    if "user_hash" in data or "user_id" in data:
        return "hmac"
    if any(key in data for key in MODE_KEYS["self_reported"]):
        return "self_reported"
    return "anonymous"


def unused_keys(data: Mapping[str, Any], mode: str) -> list[dict[str, str]]:
    return [
        ignored_entry(key, "not_used", f"Not used by a {MODE_LABELS[mode]} identify.")
        for key in sorted(set(data) - MODE_KEYS[mode] - {"visitor_id"})
    ]


def visitor_id_from(data: Mapping[str, Any]) -> str:
    value = data.get("visitor_id")
    problem = ""
    if value is None or value == "":
        problem = "visitor_id is required (the widget's anonymous id for this browser)."
    elif not isinstance(value, str):
        problem = "visitor_id must be a string."
    elif len(value) > MAX_VISITOR_ID:
        problem = f"visitor_id is longer than {MAX_VISITOR_ID} characters."
    elif not value.isprintable() or " " in value:
        problem = "visitor_id may not contain spaces or control characters."
    if problem:
        raise IdentifyError(
            "validation_error", problem, status=400, fields={"visitor_id": [problem]}
        )
    return value


def object_or_none(value: Any, name: str) -> dict[str, Any] | None:
    """`value` when it is an object (None for none): user_metadata, contact_attributes and
    custom_data. A NUL character in any of its keys or strings is refused here, before
    anything is written: no text or JSON column can store one."""
    if value is None:
        return None
    if not isinstance(value, dict):
        message = f"{name} must be an object of fields and attribute keys."
        raise IdentifyError("validation_error", message, status=400, fields={name: [message]})
    if _holds_nul(value):
        message = f"{name} holds a NUL character (\\u0000), which cannot be stored."
        raise IdentifyError("validation_error", message, status=400, fields={name: [message]})
    return value


def _holds_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def contact_data(fields: Mapping[str, Any], *, ignored: list[dict[str, str]]) -> dict[str, Any]:
    """Contact-service input from a flat object: core fields, everything else attributes."""
    data: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for key, value in fields.items():
        if key in CORE_KEYS:
            data[key] = value
        elif key in RESERVED_KEYS:
            ignored.append(_reserved(key))
        else:
            attributes[key] = value
    if attributes:
        data["attributes"] = attributes
    return data


def self_reported_data(data: Mapping[str, Any], *, ignored: list[dict[str, str]]) -> dict[str, Any]:
    """Contact-service input from an unsigned body: its contact fields and custom_data."""
    raw: dict[str, Any] = {key: data[key] for key in SELF_REPORTED_KEYS if key in data}
    custom = object_or_none(data.get("custom_data"), "custom_data") or {}
    attributes: dict[str, Any] = {}
    for key, value in custom.items():
        if key in CORE_KEYS:
            ignored.append(
                ignored_entry(
                    key, "not_used", "Contact fields go at the top level, not in custom_data."
                )
            )
        elif key in RESERVED_KEYS:
            ignored.append(_reserved(key))
        else:
            attributes[key] = value
    if attributes:
        raw["attributes"] = attributes
    return raw


def session_context_ignored(context: dict[str, Any] | None) -> list[dict[str, str]]:
    """Why this user_metadata cannot be kept as session context (empty when it can)."""
    if context is None:
        return []
    size = len(json.dumps(context, ensure_ascii=False, separators=(",", ":")).encode())
    if size <= MAX_SESSION_CONTEXT_BYTES:
        return []
    limit = MAX_SESSION_CONTEXT_BYTES // 1024
    reason = (
        f"Session context is kept for the bot up to {limit} KB of JSON; this was {size:,} "
        "bytes, so the bot does not see it (the browser still gets it back)."
    )
    return [ignored_entry("user_metadata", "too_large", reason)]


def supplied_keys(raw: Mapping[str, Any]) -> list[str]:
    return [k for k in raw if k != "attributes"] + list(raw.get("attributes") or {})


def _reserved(key: str) -> dict[str, str]:
    if key in ("external_id", "user_id"):
        return ignored_entry(key, "reserved", "The contact's external id is the signed user_id.")
    return ignored_entry(key, "reserved", "Identify does not set this field; use the API.")


def clean_ignored(reasons: Mapping[str, str], *, signed: bool) -> list[dict[str, str]]:
    """The contact cleaner's skipped keys as ignored_keys entries."""
    out = []
    for key, reason in reasons.items():
        code, explanation = CLEAN_REASONS.get(reason, ("not_written", reason))
        if code == "unknown_attribute":
            explanation = UNKNOWN_ATTRIBUTE[signed]
        elif code == "attribute_limit":
            explanation = (
                f"The agent already has {settings.MAX_ATTRIBUTES_PER_AGENT} attributes, the limit."
            )
        out.append(ignored_entry(key, code, explanation))
    return out


def ignored_entry(key: str, code: str, reason: str) -> dict[str, str]:
    return {"key": str(key)[:100], "code": code, "reason": reason}


def prefixed_error(exc: ValidationFailed, container: str) -> IdentifyError:
    """A contact validation error as a 400, its fields named as the caller sent them."""
    fields: dict[str, list[str]] = {}
    for name, messages in exc.fields.items():
        if name.startswith("attributes."):
            name = f"{container or 'custom_data'}.{name.split('.', 1)[1]}"
        elif container:
            name = f"{container}.{name}"
        fields[name] = messages
    first_name, first_messages = next(iter(fields.items()))
    return IdentifyError(
        "validation_error", f"{first_name}: {first_messages[0]}", status=400, fields=fields
    )
