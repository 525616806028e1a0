"""How a contact's stored values and history read on the contact page (no database access)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from attributes.coercion import display_value
from attributes.models import AttributeDefinition
from contacts.models import AuditEvent, Contact
from contacts.table import IDENTITY_SOURCES, display_phone

FIELD_LABELS = {
    "name": "Name",
    "email": "Email",
    "phone": "Phone",
    "company": "Company",
    "avatar_url": "Avatar URL",
    "external_id": "External ID",
    "identity": "Identity",
    "identity_source": "Verified by",
    "deleted_at": "Deleted",
    "tags": "Tags",
    "tags_added": "Tags added",
    "tags_removed": "Tags removed",
    "stripe_accounts": "Stripe accounts",
    "stripe_accounts_added": "Stripe accounts moved in",
    "conversations_moved": "Conversations moved in",
    "conversations_anonymized": "Conversations anonymized",
    "merged_contact": "Merged in",
}
ACTION_LABELS = {
    "created": "Created",
    "updated": "Updated",
    "deleted": "Deleted",
    "restored": "Restored",
    "merged": "Merged",
    "erased": "Erased",
}
CHANNEL_LABELS = {
    "staff": "dashboard",
    "api": "API",
    "import": "import",
    "jwt": "identify (JWT)",
    "hmac": "identify (HMAC)",
    "widget": "chat widget",
    "system": "system",
}


def identity_source_label(contact: Contact) -> str:
    return IDENTITY_SOURCES.get(contact.identity_source, contact.identity_source)


@dataclass
class Change:
    label: str
    before: str = ""
    after: str = ""
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass
class HistoryEntry:
    action: str
    action_label: str
    who: str
    channel: str
    at: Any
    changes: list[Change]


def _show(value: Any, definition: AttributeDefinition | None = None) -> str:
    if value is None or value == "":
        return ""
    if definition is not None:
        return display_value(definition.type, value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items() if v)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _stripe_ids(accounts: Any) -> list[str]:
    if isinstance(accounts, dict):
        accounts = [accounts]
    if not isinstance(accounts, list):
        return []
    return [a.get("stripe_id", "") for a in accounts if isinstance(a, dict)]


def _change(name: str, value: Any, definitions: Mapping[str, AttributeDefinition]) -> Change:
    if name.startswith("attributes."):
        key = name.split(".", 1)[1]
        definition = definitions.get(key)
        label = definition.label if definition else key
        before, after = value if isinstance(value, list) and len(value) == 2 else (None, value)
        return Change(label, _show(before, definition), _show(after, definition))
    label = FIELD_LABELS.get(name, name.replace("_", " ").capitalize())
    if name == "tags_added":
        return Change(label, added=[str(v) for v in value or []])
    if name == "tags_removed":
        return Change(label, removed=[str(v) for v in value or []])
    if not (isinstance(value, list) and len(value) == 2):
        return Change(label, after=_show(value))
    before, after = value
    if name == "tags":
        before_set = {str(t).casefold(): t for t in before or []}
        after_set = {str(t).casefold(): t for t in after or []}
        return Change(
            label,
            added=[after_set[k] for k in after_set if k not in before_set],
            removed=[before_set[k] for k in before_set if k not in after_set],
        )
    if name == "stripe_accounts":
        old, new = _stripe_ids(before), _stripe_ids(after)
        if before and after and old == new:
            return Change(label, _show(before), _show(after))
        return Change(
            label, added=[i for i in new if i not in old], removed=[i for i in old if i not in new]
        )
    if name == "identity":
        return Change(label, _show(before).replace("_", "-"), _show(after).replace("_", "-"))
    if name == "identity_source":
        return Change(
            label,
            IDENTITY_SOURCES.get(before or "", _show(before)),
            IDENTITY_SOURCES.get(after or "", _show(after)),
        )
    if name == "deleted_at":
        return Change("Restored from deleted")
    if name == "merged_contact":
        merged = before if isinstance(before, dict) else {}
        who = merged.get("name") or merged.get("email") or "a contact"
        email = merged.get("email") if merged.get("name") else ""
        return Change(label, after=f"{who} ({email})" if email else who)
    if name == "phone":
        return Change(label, display_phone(before or ""), display_phone(after or ""))
    return Change(label, _show(before), _show(after))


def history(
    events: Sequence[AuditEvent], definitions: Mapping[str, AttributeDefinition]
) -> list[HistoryEntry]:
    """Audit events as lines a person reads: who, through what, which field before → after."""
    entries = []
    for event in events:
        changes = event.changes if isinstance(event.changes, dict) else {}
        skip = {"identity"} if event.action == AuditEvent.Action.CREATED else set()
        entries.append(
            HistoryEntry(
                action=event.action,
                action_label=ACTION_LABELS.get(event.action, event.action),
                who=event.actor_label,
                channel=CHANNEL_LABELS.get(event.channel, event.channel),
                at=event.created_at,
                changes=[
                    _change(name, value, definitions)
                    for name, value in changes.items()
                    if name not in skip
                ],
            )
        )
    return entries


@dataclass
class AttributeRow:
    key: str
    label: str
    type_label: str
    value: str
    href: str = ""
    secure: bool = False
    empty: bool = True
    description: str = ""


def attribute_rows(
    contact: Contact, definitions: Sequence[AttributeDefinition]
) -> list[AttributeRow]:
    """Every non-archived attribute with the contact's value (blank ones too, to fill in)."""
    values = contact.attributes or {}
    rows = []
    for definition in definitions:
        if definition.archived:
            continue
        value = values.get(definition.key)
        text = display_value(definition.type, value) if value is not None else ""
        rows.append(
            AttributeRow(
                key=definition.key,
                label=definition.label,
                type_label=definition.get_type_display(),
                value=text,
                href=text if definition.type == "url" and text else "",
                secure=definition.secure,
                empty=value is None,
                description=definition.description,
            )
        )
    return rows


@dataclass
class MergeLine:
    label: str
    primary: str
    result: str
    changes: bool


def merge_lines(
    primary: Contact,
    secondary: Contact,
    preview: Mapping[str, list[Any]],
    definitions: Mapping[str, AttributeDefinition],
) -> list[MergeLine]:
    """Side-by-side rows for the merge preview: each field as it is and as it will be."""
    lines = []
    names = ["name", "email", "phone", "company", "external_id", "identity"]
    keys = sorted(
        {*(primary.attributes or {}), *(secondary.attributes or {})},
        key=lambda k: (definitions[k].position if k in definitions else 10**6, k),
    )
    for name in names:
        before = getattr(primary, name) or ""
        change = preview.get(name)
        after = change[1] if change else before
        label = FIELD_LABELS[name]
        if name == "identity":
            before, after = before.replace("_", "-"), after.replace("_", "-")
        elif name == "phone":
            before, after = display_phone(before), display_phone(after or "")
        lines.append(MergeLine(label, _show(before), _show(after), change is not None))
    for key in keys:
        definition = definitions.get(key)
        if definition is not None and definition.archived:
            continue
        before = (primary.attributes or {}).get(key)
        change = preview.get(f"attributes.{key}")
        after = change[1] if change else before
        label = definition.label if definition else key
        lines.append(
            MergeLine(label, _show(before, definition), _show(after, definition), bool(change))
        )
    return lines
