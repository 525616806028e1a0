"""Bulk actions: one change (add or remove a tag, set an attribute, delete, restore) applied
to many contacts, either the rows selected in the table or every contact a table view
matches (run in the background in batches, see `transfers.bulk`).

An action works on one batch of ids at a time with set-based statements: one INSERT … ON
CONFLICT DO NOTHING (or DELETE) for a tag, one UPDATE for deletes and attribute values. It
leaves one audit entry per contact it really changed and returns their ids, so a batch run
twice changes and audits nothing the second time, and a bulk delete can record exactly the
contacts an undo must bring back.

The table view a background job works on is kept as its filter query string and read
again through `ContactFilterSet` when the job runs (`bulk_matching`), never as a list of ids.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Func, JSONField, QuerySet
from django.db.models.functions import Lower
from django.http import QueryDict
from django.utils import timezone

from attributes.coercion import display_value
from attributes.selectors import attribute_definitions
from contacts import normalize
from contacts.cleaning import clean_contact_input
from contacts.models import AuditEvent, Contact, Tag
from contacts.query.filterset import ContactFilterSet
from contacts.services.audit import audit_many
from contacts.services.tags import tags_get_or_create
from core.actors import Actor
from core.errors import ValidationFailed
from transfers import sql
from workspaces.models import Agent

# The actions, as the bulk bar's buttons and a job's `action` name them.
ACTION_LABELS = {
    "tag": "Add tag",
    "untag": "Remove tag",
    "set_attribute": "Set attribute",
    "delete": "Delete",
    "restore": "Restore",
}
# Table state that is not a filter: a background job works on the whole view, in id order.
# (`segment` only marks the saved segment a view was opened from; its filters are in the state.)
NOT_FILTERS = ("cursor", "at", "per_page", "cols", "ordering", "segment")
MAX_QUERY = 4000


@dataclass(frozen=True)
class BulkAction:
    """A validated bulk action and its parameters (JSON-safe, stored on a job as they are)."""

    action: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return ACTION_LABELS[self.action]

    @property
    def summary(self) -> str:
        """What it does, as a line above the table: "Add the tag “vip”"."""
        p = self.params
        if self.action == "tag":
            return f"Add the tag “{p['tag']}”"
        if self.action == "untag":
            return f"Remove the tag “{p['tag']}”"
        if self.action == "set_attribute":
            if p.get("value") is None:
                return f"Clear {p['label']}"
            return f"Set {p['label']} to “{p['shown']}”"
        return "Delete" if self.action == "delete" else "Restore"

    def done_text(self, changed: int, unchanged: int = 0) -> str:
        """The outcome in a sentence: "Tagged 3 contacts with “vip” (2 already had it)."."""
        p, people = self.params, count_text(changed)
        if self.action == "tag":
            text, rest = f"Tagged {people} with “{p['tag']}”", "already had it"
        elif self.action == "untag":
            text, rest = f"Removed the tag “{p['tag']}” from {people}", "did not have it"
        elif self.action == "set_attribute":
            if p.get("value") is None:
                text = f"Cleared {p['label']} on {people}"
            else:
                text = f"Set {p['label']} to “{p['shown']}” on {people}"
            rest = "already had that value" if p.get("value") is not None else "had no value"
        elif self.action == "delete":
            text, rest = f"Deleted {people}", "were already deleted"
        else:
            text, rest = f"Restored {people}", "were not deleted"
        if unchanged:
            return f"{text} ({unchanged:,} {rest})."
        return f"{text}."


def count_text(count: int) -> str:
    return f"{count:,} contact{'s' if count != 1 else ''}"


def bulk_action_clean(
    *, agent: Agent, actor: Actor, action: str, data: Mapping[str, Any]
) -> BulkAction:
    """The action with its parameters checked as the contact form checks them; ValidationFailed
    naming the field (`tag`, `attribute`, `value`) otherwise."""
    if action not in ACTION_LABELS:
        raise ValidationFailed({"action": [f"Unknown bulk action {action!r}."]})
    if action in ("tag", "untag"):
        raw = str(data.get("tag") or "")
        if not raw.strip():
            word = "add" if action == "tag" else "remove"
            raise ValidationFailed({"tag": [f"Type the tag to {word}."]})
        try:
            name = normalize.normalize_tag(raw)
        except normalize.FieldError as exc:
            raise ValidationFailed({"tag": [str(exc)]}) from None
        # Spelled as the agent already spells it ("vip" for "VIP"): tags are case-insensitive.
        existing = (
            Tag.objects.alias(lname=Lower("name"))
            .filter(agent=agent, lname=name.lower())
            .values_list("name", flat=True)
            .first()
        )
        return BulkAction(action, {"tag": existing or name})
    if action == "set_attribute":
        return _clean_attribute(agent, actor, data)
    return BulkAction(action)


def _clean_attribute(agent: Agent, actor: Actor, data: Mapping[str, Any]) -> BulkAction:
    key = str(data.get("attribute") or "").strip()
    definitions = {d.key: d for d in attribute_definitions(agent=agent)}
    definition = definitions.get(key)
    if definition is None:
        raise ValidationFailed({"attribute": ["Choose an attribute to set."]})
    raw = data.get("value")
    raw = "" if raw is None else str(raw)
    try:
        clean = clean_contact_input(
            {"attributes": {key: raw}},
            actor=actor,
            definitions=definitions,
            phone_region=agent.default_phone_region,
        )
    except ValidationFailed as exc:
        messages = [m for ms in exc.fields.values() for m in ms]
        raise ValidationFailed({"value": messages}) from None
    value = clean.attributes.get(key)
    shown = display_value(definition.type, value) if value is not None else ""
    return BulkAction(
        "set_attribute",
        {"key": key, "value": value, "label": definition.label or key, "shown": shown},
    )


# --- The view a background job works on --------------------------------------------------------


def bulk_filter_query(state: QueryDict) -> str:
    """The filters of a table state as a query string (no page, order or columns)."""
    params = state.copy()
    for key in NOT_FILTERS:
        params.pop(key, None)
    return params.urlencode()


def bulk_filters(*, agent: Agent, query: str) -> ContactFilterSet:
    """The filter set of a frozen view, every parameter checked (ValidationFailed naming a
    parameter that no longer applies, e.g. an attribute deleted since)."""
    if len(query) > MAX_QUERY:
        raise ValidationFailed({"query": ["The view's filters are too long."]})
    definitions = {d.key: d for d in attribute_definitions(agent=agent)}
    return ContactFilterSet(QueryDict(query), agent=agent, definitions=definitions).validated()


def bulk_matching(*, agent: Agent, query: str) -> QuerySet[Contact]:
    """Every contact of the agent the view matches now (live ones unless `deleted=true`)."""
    return bulk_filters(agent=agent, query=query).qs


def bulk_next_ids(qs: QuerySet, *, after: Any, size: int) -> list[Any]:
    """The next `size` ids of `qs` after `after` (None: from the start), in id order: keyset
    batches over the primary key, which stay as cheap at the millionth row as at the first."""
    if after is not None:
        qs = qs.filter(pk__gt=after)
    return list(qs.order_by("pk").values_list("pk", flat=True)[:size])


# --- Applying an action to one batch ------------------------------------------------------------


def bulk_apply(
    *,
    agent: Agent,
    actor: Actor,
    action: BulkAction,
    contact_ids: Sequence[Any],
    at: datetime | None = None,
) -> list[Any]:
    """Apply `action` to the agent's contacts among `contact_ids` (others are ignored), in one
    transaction; returns the ids of the contacts it changed (each audited once)."""
    ids = list(dict.fromkeys(contact_ids))
    if not ids:
        return []
    at = at or timezone.now()
    # No savepoint inside a job's batch transaction: a failure there fails the whole batch.
    with transaction.atomic(savepoint=False):
        changed, changes = _APPLIERS[action.action](agent, action.params, ids, at)
        if changed:
            audit_many(
                agent_id=agent.pk,
                actor=actor,
                action=_AUDIT_ACTIONS.get(action.action, AuditEvent.Action.UPDATED),
                changes_by_contact={pk: changes(pk) for pk in changed},
                at=at,
            )
    return changed


_AUDIT_ACTIONS = {"delete": AuditEvent.Action.DELETED, "restore": AuditEvent.Action.RESTORED}
_Result = tuple[list[Any], Callable[[Any], dict[str, Any] | None]]


def _db_ids(ids: Iterable[Any]) -> list[Any]:
    pk = Contact._meta.pk
    return [pk.get_db_prep_value(i, connection) for i in ids]


def _returned(rows: Iterable[tuple]) -> list[Any]:
    pk = Contact._meta.pk
    return [pk.to_python(row[0]) for row in rows]


def _tag_add(agent: Agent, params: dict, ids: list, at: datetime) -> _Result:
    (tag,) = tags_get_or_create(agent=agent, names=[params["tag"]])
    stamp = connection.ops.adapt_datetimefield_value(at)
    with connection.cursor() as cursor:
        cursor.execute(sql.tag_links_add(len(ids)), [tag.pk, stamp, agent.pk, *_db_ids(ids)])
        gained = _returned(cursor.fetchall())
    Contact.objects.filter(pk__in=gained).update(updated_at=at)
    return gained, lambda _pk: {"tags_added": [tag.name]}


def _tag_remove(agent: Agent, params: dict, ids: list, at: datetime) -> _Result:
    tag = (
        Tag.objects.alias(lname=Lower("name"))
        .filter(agent=agent, lname=params["tag"].lower())
        .first()
    )
    if tag is None:  # no contact has a tag the agent does not have
        return [], lambda _pk: None
    mine = list(Contact.objects.filter(agent=agent, pk__in=ids).values_list("pk", flat=True))
    if not mine:
        return [], lambda _pk: None
    with connection.cursor() as cursor:
        cursor.execute(sql.tag_links_remove(len(mine)), [tag.pk, *_db_ids(mine)])
        lost = _returned(cursor.fetchall())
    Contact.objects.filter(pk__in=lost).update(updated_at=at)
    return lost, lambda _pk: {"tags_removed": [tag.name]}


class _AttributeSet(Func):
    """`attributes` with one key set to a JSON value, or removed (value None)."""

    output_field = JSONField()

    def __init__(self, key: str, value: Any) -> None:
        self.key, self.value = key, value
        super().__init__(F("attributes"))

    def as_sql(self, compiler, connection, **extra):  # SQLite
        column, params = compiler.compile(self.source_expressions[0])
        path = f'$."{self.key}"'
        if self.value is None:
            return f"json_remove({column}, %s)", [*params, path]
        return f"json_set({column}, %s, json(%s))", [*params, path, json.dumps(self.value)]

    def as_postgresql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        if self.value is None:
            return f"({column} - %s)", [*params, self.key]
        return (
            f"({column} || jsonb_build_object(%s::text, %s::jsonb))",
            [*params, self.key, json.dumps(self.value)],
        )


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python; a boolean attribute turning into a number is still a change.
    return a == b and type(a) is type(b)


def _attribute_set(agent: Agent, params: dict, ids: list, at: datetime) -> _Result:
    key, value = params["key"], params["value"]
    # Locked: a contact edited meanwhile waits, so `before` in the audit is what was replaced.
    rows = (
        Contact.objects.select_for_update()
        .filter(agent=agent, pk__in=ids)
        .values_list("pk", "attributes")
    )
    before: dict[Any, Any] = {}
    for pk, attributes in rows:
        attributes = attributes or {}
        if value is None:
            if key in attributes:
                before[pk] = attributes[key]
        elif not _same(attributes.get(key), value):
            before[pk] = attributes.get(key)
    changed = list(before)
    if changed:
        Contact.objects.filter(pk__in=changed).update(
            attributes=_AttributeSet(key, value), updated_at=at
        )
    return changed, lambda pk: {f"attributes.{key}": [before[pk], value]}


def _set_deleted(agent: Agent, ids: list, at: datetime, *, deleted: bool) -> _Result:
    changed = list(
        Contact.objects.select_for_update()
        .filter(agent=agent, pk__in=ids, deleted_at__isnull=deleted)
        .values_list("pk", flat=True)
    )
    if changed:
        Contact.objects.filter(pk__in=changed).update(
            deleted_at=at if deleted else None, updated_at=at
        )
    return changed, lambda _pk: None


_APPLIERS: dict[str, Callable[[Agent, dict, list, datetime], _Result]] = {
    "tag": _tag_add,
    "untag": _tag_remove,
    "set_attribute": _attribute_set,
    "delete": lambda agent, params, ids, at: _set_deleted(agent, ids, at, deleted=True),
    "restore": lambda agent, params, ids, at: _set_deleted(agent, ids, at, deleted=False),
}


# --- Every matching contact: handed to the app that runs background jobs ------------------------


@dataclass(frozen=True)
class BackgroundRequest:
    """A bulk action on every contact of a view, as the bulk bar asks for it."""

    agent: Agent
    user: Any
    action: BulkAction
    query: str
    estimate: int
    estimate_exact: bool = True
