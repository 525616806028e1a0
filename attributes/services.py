from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from attributes.models import KEY_PATTERN, AttributeDefinition, AttributeType
from attributes.values import value_stores
from core.errors import ConflictError, ValidationFailed
from workspaces.models import Agent

MAX_OPTIONS = 200
EDITABLE_FIELDS = ("label", "description", "options", "secure")


def clean_options(type_: str, options: Any) -> list[str]:
    """Options of a select: non-empty, distinct (ignoring case), at most MAX_OPTIONS."""
    if type_ != AttributeType.SELECT:
        if options:
            raise ValidationFailed({"options": ["Only select attributes have options."]})
        return []
    if not isinstance(options, (list, tuple)) or not options:
        raise ValidationFailed({"options": ["A select attribute needs at least one option."]})
    cleaned: list[str] = []
    seen: set[str] = set()
    for option in options:
        if not isinstance(option, str) or not option.strip():
            raise ValidationFailed({"options": ["Options must be non-empty strings."]})
        text = option.strip()
        if len(text) > 120:
            raise ValidationFailed({"options": [f"Option {text[:20]!r}… is too long."]})
        if text.casefold() in seen:
            raise ValidationFailed({"options": [f"Option {text!r} is listed twice."]})
        seen.add(text.casefold())
        cleaned.append(text)
    if len(cleaned) > MAX_OPTIONS:
        raise ValidationFailed({"options": [f"At most {MAX_OPTIONS} options."]})
    return cleaned


def attribute_room(*, agent: Agent) -> int:
    """How many more attributes the agent may define before the cap."""
    used = AttributeDefinition.objects.filter(agent=agent).count()
    return max(settings.MAX_ATTRIBUTES_PER_AGENT - used, 0)


@transaction.atomic
def attribute_create(
    *,
    agent: Agent,
    key: str,
    label: str = "",
    type: str,
    description: str = "",
    options: Iterable[str] | None = None,
    secure: bool = False,
) -> AttributeDefinition:
    """Define a new custom attribute for the agent."""

    errors: dict[str, list[str]] = {}
    if not isinstance(key, str) or not re.match(KEY_PATTERN, key):
        errors["key"] = [
            "Keys start with a lowercase letter, then up to 62 lowercase letters, digits or "
            "underscores (e.g. plan or signup_date)."
        ]
    if type not in AttributeType.values:
        errors["type"] = [f"Unknown type {type!r}; use one of {', '.join(AttributeType.values)}."]
    label = (label or "").strip() or (
        key.replace("_", " ").capitalize() if isinstance(key, str) else ""
    )
    if len(label) > 120:
        errors["label"] = ["The label is longer than 120 characters."]
    if errors:
        raise ValidationFailed(errors)
    cleaned_options = clean_options(type, list(options or []))
    if attribute_room(agent=agent) <= 0:
        raise ConflictError(
            f"This agent already has {settings.MAX_ATTRIBUTES_PER_AGENT} attributes, the limit."
        )
    position = (
        AttributeDefinition.objects.filter(agent=agent).aggregate(m=Max("position"))["m"] or 0
    ) + 1
    try:
        with transaction.atomic():
            return AttributeDefinition.objects.create(
                agent=agent,
                key=key,
                label=label,
                type=type,
                description=(description or "").strip(),
                options=cleaned_options,
                secure=bool(secure),
                position=position,
            )
    except IntegrityError:
        raise ConflictError(f"An attribute with key {key!r} already exists.") from None


def attributes_create_inferred(*, agent: Agent, types: dict[str, str]) -> None:
    """Create definitions for keys first seen in an import or identify; racing creators are fine."""
    if not types:
        return
    position = (
        AttributeDefinition.objects.filter(agent=agent).aggregate(m=Max("position"))["m"] or 0
    )
    rows = [
        AttributeDefinition(
            agent=agent,
            key=key,
            label=key.replace("_", " ").capitalize(),
            type=type_,
            position=position + index + 1,
        )
        for index, (key, type_) in enumerate(types.items())
    ]
    AttributeDefinition.objects.bulk_create(rows, ignore_conflicts=True)


def attribute_value_count(*, definition: AttributeDefinition) -> int:
    """How many contacts (live or deleted) hold a value for this attribute."""
    return sum(store.count(definition) for store in value_stores())


@transaction.atomic
def attribute_update(*, definition: AttributeDefinition, **changes: Any) -> AttributeDefinition:
    """Edit label, description, options or the secure flag (key and type never change)."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed({name: ["This field cannot be changed."] for name in unknown})
    if "label" in changes:
        label = (changes["label"] or "").strip()
        if not label or len(label) > 120:
            raise ValidationFailed({"label": ["Give a label of 1 to 120 characters."]})
        definition.label = label
    if "description" in changes:
        definition.description = (changes["description"] or "").strip()
    if "secure" in changes:
        definition.secure = bool(changes["secure"])
    if "options" in changes:
        options = clean_options(definition.type, changes["options"])
        _refuse_removing_used_options(definition, options)
        definition.options = options
    definition.updated_at = timezone.now()
    definition.save()
    return definition


def _refuse_removing_used_options(definition: AttributeDefinition, options: list[str]) -> None:
    removed = [o for o in definition.options if o not in options]
    for option in removed:
        held = sum(store.count_option(definition, option) for store in value_stores())
        if held:
            raise ConflictError(
                f"{held} contact(s) hold {option!r}; change their value before removing it.",
                fields={"options": [f"{option!r} is in use by {held} contact(s)."]},
            )


def attribute_set_archived(
    *, definition: AttributeDefinition, archived: bool
) -> AttributeDefinition:
    """Archive (hide, keep values) or restore an attribute."""
    definition.archived = archived
    definition.updated_at = timezone.now()
    definition.save(update_fields=["archived", "updated_at"])
    return definition


@transaction.atomic
def attribute_delete(*, definition: AttributeDefinition) -> int:
    """Delete the definition and remove its values from every contact; returns that count."""
    removed = sum(store.remove(definition) for store in value_stores())
    definition.delete()
    return removed


@transaction.atomic
def attribute_reorder(*, agent: Agent, keys: list[str]) -> None:
    """Put the listed keys first, in this order; unlisted ones keep their relative order after."""
    definitions = list(AttributeDefinition.objects.filter(agent=agent).order_by("position", "id"))
    by_key = {d.key: d for d in definitions}
    unknown = [k for k in keys if k not in by_key]
    if unknown:
        raise ValidationFailed({"keys": [f"No attribute with key {unknown[0]!r}."]})
    ordered = [by_key[k] for k in dict.fromkeys(keys)] + [
        d for d in definitions if d.key not in keys
    ]
    for position, definition in enumerate(ordered, start=1):
        definition.position = position
    AttributeDefinition.objects.bulk_update(ordered, ["position"])


def attribute_move(*, definition: AttributeDefinition, offset: int) -> None:
    """Move one attribute up (-1) or down (+1) in the display order."""
    keys = list(
        AttributeDefinition.objects.filter(agent_id=definition.agent_id)
        .order_by("position", "id")
        .values_list("key", flat=True)
    )
    index = keys.index(definition.key)
    target = min(max(index + offset, 0), len(keys) - 1)
    keys.insert(target, keys.pop(index))
    attribute_reorder(agent=definition.agent, keys=keys)
