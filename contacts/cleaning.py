"""Turn raw contact input (form, API body, import row, identify payload) into stored values.

Reads the agent's attribute schema but writes nothing; the services decide what to do
with the result. Every message names the field and says what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from attributes.coercion import AttributeValueError, coerce_value, infer_type
from attributes.models import KEY_PATTERN, AttributeDefinition
from contacts import normalize
from core.actors import Actor, Channel
from core.errors import ValidationFailed

CORE_FIELDS = ("name", "email", "phone", "avatar_url", "company")
ACCEPTED_KEYS = {*CORE_FIELDS, "external_id", "attributes", "tags", "stripe_accounts"}
MAX_TAGS_PER_CONTACT = 100
MAX_STRIPE_ACCOUNTS = 50

UnknownPolicy = Literal["error", "ignore", "create"]
ForbiddenPolicy = Literal["error", "ignore"]

_KEY_RE = re.compile(KEY_PATTERN)


@dataclass
class CleanInput:
    core: dict[str, str] = field(default_factory=dict)
    external_id: str | None = None
    has_external_id: bool = False
    # key -> stored value, or None to clear the key
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: list[str] | None = None
    stripe_accounts: list[dict[str, str]] | None = None
    ignored: dict[str, str] = field(default_factory=dict)
    # Attribute definitions to create first: key -> inferred type
    new_attributes: dict[str, str] = field(default_factory=dict)


def clean_contact_input(
    data: Mapping[str, Any],
    *,
    actor: Actor,
    definitions: Mapping[str, AttributeDefinition],
    phone_region: str,
    unknown_attributes: UnknownPolicy = "error",
    on_forbidden: ForbiddenPolicy = "error",
    attribute_room: int = 0,
) -> CleanInput:
    """Validate and normalize `data`; raise ValidationFailed listing every bad field."""
    errors: dict[str, list[str]] = {}
    out = CleanInput()

    if not isinstance(data, Mapping):
        raise ValidationFailed({"non_field_errors": ["Expected an object of contact fields."]})

    for key in data:
        if key not in ACCEPTED_KEYS:
            errors.setdefault(str(key), []).append("Unknown field.")

    normalizers = {
        "name": normalize.normalize_name,
        "email": normalize.normalize_email,
        "phone": lambda v: normalize.normalize_phone(v, region=phone_region),
        "avatar_url": normalize.normalize_url,
        "company": normalize.normalize_company,
    }
    for name, normalizer in normalizers.items():
        if name in data:
            try:
                out.core[name] = normalizer(data[name])
            except normalize.FieldError as exc:
                errors.setdefault(name, []).append(str(exc))

    if "external_id" in data:
        out.has_external_id = True
        try:
            out.external_id = normalize.normalize_external_id(data["external_id"])
        except normalize.FieldError as exc:
            errors.setdefault("external_id", []).append(str(exc))

    if "attributes" in data and data["attributes"] is not None:
        raw_attributes = data["attributes"]
        if not isinstance(raw_attributes, Mapping):
            errors.setdefault("attributes", []).append("Expected an object of attribute values.")
        else:
            _clean_attributes(
                raw_attributes,
                out=out,
                errors=errors,
                actor=actor,
                definitions=definitions,
                unknown_attributes=unknown_attributes,
                on_forbidden=on_forbidden,
                attribute_room=attribute_room,
            )

    if "tags" in data:
        out.tags = _clean_tags(data["tags"], errors)

    if "stripe_accounts" in data:
        out.stripe_accounts = _clean_stripe_accounts(data["stripe_accounts"], errors)

    if errors:
        raise ValidationFailed(errors)
    return out


def _clean_attributes(
    raw: Mapping[str, Any],
    *,
    out: CleanInput,
    errors: dict[str, list[str]],
    actor: Actor,
    definitions: Mapping[str, AttributeDefinition],
    unknown_attributes: UnknownPolicy,
    on_forbidden: ForbiddenPolicy,
    attribute_room: int,
) -> None:
    for key, value in raw.items():
        field_name = f"attributes.{key}"
        definition = definitions.get(key)
        if definition is None:
            if unknown_attributes == "error":
                errors.setdefault(field_name, []).append(f"No attribute with key {key!r} exists.")
                continue
            if unknown_attributes == "ignore":
                out.ignored[key] = "unknown attribute"
                continue
            if not isinstance(key, str) or not _KEY_RE.match(key):
                out.ignored[str(key)] = "not a valid attribute key"
                continue
            if value is None or isinstance(value, (dict, list)):
                out.ignored[key] = "unknown attribute without a usable value"
                continue
            if key not in out.new_attributes and len(out.new_attributes) >= attribute_room:
                out.ignored[key] = "attribute limit reached"
                continue
            type_ = infer_type([value])
            try:
                out.attributes[key] = coerce_value(type_, value, key=key)
            except AttributeValueError as exc:
                errors.setdefault(field_name, []).append(str(exc))
                continue
            out.new_attributes[key] = type_
            continue
        if definition.secure and not actor.can_write_secure:
            if on_forbidden == "ignore":
                out.ignored[key] = "secure attribute"
            else:
                errors.setdefault(field_name, []).append(
                    "Secure attribute: only admins, the API, imports and signed identify "
                    "tokens may write it."
                )
            continue
        if definition.archived and not actor.trusted:
            out.ignored[key] = "archived attribute"
            continue
        try:
            out.attributes[key] = coerce_value(
                definition.type, value, key=key, options=definition.options
            )
        except AttributeValueError as exc:
            # Staff read it beside the field; programs get the value and type back too.
            message = (
                exc.for_people(definition.label or key, definition.options)
                if actor.channel == Channel.STAFF
                else str(exc)
            )
            errors.setdefault(field_name, []).append(message)


def _clean_tags(raw: Any, errors: dict[str, list[str]]) -> list[str] | None:
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [part for part in raw.split(",") if part.strip()]
    if not isinstance(raw, (list, tuple)):
        errors.setdefault("tags", []).append("Expected a list of tag names.")
        return None
    tags: list[str] = []
    seen: set[str] = set()
    for item in raw:
        try:
            tag = normalize.normalize_tag(item)
        except normalize.FieldError as exc:
            errors.setdefault("tags", []).append(str(exc))
            continue
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            tags.append(tag)
    if len(tags) > MAX_TAGS_PER_CONTACT:
        errors.setdefault("tags", []).append(f"At most {MAX_TAGS_PER_CONTACT} tags per contact.")
    return tags


def _clean_stripe_accounts(raw: Any, errors: dict[str, list[str]]) -> list[dict[str, str]] | None:
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        errors.setdefault("stripe_accounts", []).append("Expected a list of Stripe accounts.")
        return None
    if len(raw) > MAX_STRIPE_ACCOUNTS:
        errors.setdefault("stripe_accounts", []).append(
            f"At most {MAX_STRIPE_ACCOUNTS} Stripe accounts per contact."
        )
        return None
    accounts: list[dict[str, str]] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        try:
            account = clean_stripe_account(item)
        except ValidationFailed as exc:
            for name, messages in exc.fields.items():
                errors.setdefault(f"stripe_accounts[{index}].{name}", []).extend(messages)
            continue
        if account["stripe_id"] in seen:
            errors.setdefault(f"stripe_accounts[{index}].stripe_id", []).append(
                f"{account['stripe_id']} is listed twice."
            )
            continue
        seen.add(account["stripe_id"])
        accounts.append(account)
    return accounts


def clean_stripe_account(item: Any) -> dict[str, str]:
    """One Stripe link: `stripe_id` (cus_…) required, `label` and `stripe_email` optional."""
    if not isinstance(item, Mapping):
        raise ValidationFailed({"non_field_errors": ["Expected an object."]})
    errors: dict[str, list[str]] = {}
    account: dict[str, str] = {}
    for key in item:
        if key not in ("label", "stripe_id", "stripe_email"):
            errors.setdefault(str(key), []).append("Unknown field.")
    try:
        account["stripe_id"] = normalize.normalize_stripe_id(item.get("stripe_id"))
    except normalize.FieldError as exc:
        errors.setdefault("stripe_id", []).append(str(exc))
    try:
        account["stripe_email"] = normalize.normalize_email(item.get("stripe_email"))
    except normalize.FieldError as exc:
        errors.setdefault("stripe_email", []).append(str(exc))
    label = item.get("label")
    if label is not None and not isinstance(label, str):
        errors.setdefault("label", []).append("label must be a string.")
    else:
        label = (label or "").strip()
        if len(label) > 120:
            errors.setdefault("label", []).append("label is longer than 120 characters.")
        account["label"] = label
    if errors:
        raise ValidationFailed(errors)
    return account
