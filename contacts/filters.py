"""The one contact query language, shared by the dashboard table, the API list and exports.

`parse_contact_query` reads request parameters (search, tags, identity, date ranges,
attribute comparisons typed by the attribute schema, deleted view, ordering) and refuses
bad ones with a message per parameter. `filter_contacts` applies them; `sort_spec` says
how to order; `keyset_page` pages by (sort key, id) so page 10,000 costs what page 1 costs.

Every sort key is a non-null expression that matches an index (see Contact.Meta), so a
sorted page is an index range scan from the cursor position.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    CharField,
    DateTimeField,
    Exists,
    Expression,
    F,
    FloatField,
    Func,
    JSONField,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce, Lower
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from attributes.coercion import AttributeValueError, coerce_value
from attributes.models import KEY_PATTERN, AttributeDefinition
from contacts.models import SORT_EXPRESSIONS, ContactTag, Identity, Tag
from contacts.normalize import phone_digits
from core.errors import ValidationFailed
from core.keyset import InvalidCursor, cursor_moment, cursor_uuid
from core.keyset import decode_cursor as decode_keyset
from core.keyset import encode_cursor as encode_keyset

DEFAULT_ORDERING = "-created_at"
ATTRIBUTE_OPERATORS = ("eq", "gt", "gte", "lt", "lte", "contains")
DATE_RANGE_FIELDS = ("created", "updated", "last_seen")
# Dashboard "last seen" windows.
SEEN_WINDOWS = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
SEEN_CHOICES = (*SEEN_WINDOWS, "over90d", "never")
MAX_SEARCH = 200
_ATTR_KEY = re.compile(KEY_PATTERN)


@dataclass(frozen=True)
class AttributeFilter:
    definition: AttributeDefinition
    op: str
    value: Any


@dataclass
class ContactQuery:
    q: str = ""
    tags: list[str] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)
    ranges: dict[str, datetime] = field(default_factory=dict)  # "created_after" -> moment
    seen: str = ""
    attributes: list[AttributeFilter] = field(default_factory=list)
    deleted: bool = False
    ordering: str = DEFAULT_ORDERING

    @property
    def is_filtered(self) -> bool:
        return bool(
            self.q or self.tags or self.identities or self.ranges or self.seen or self.attributes
        )


# --- Parsing --------------------------------------------------------------------------------


def _getlist(params: Mapping[str, Any], name: str) -> list[str]:
    if hasattr(params, "getlist"):
        values = params.getlist(name)
    else:
        raw = params.get(name)
        values = raw if isinstance(raw, (list, tuple)) else [] if raw is None else [raw]
    return [str(v) for v in values]


def _parse_moment(text: str, *, end_of_day: bool) -> datetime | None:
    text = text.strip()
    # Django's parsers raise ValueError for well-formed impossible values (2024-13-45), and
    # the end of 9999-12-31 overflows: both are "not a date" to the caller.
    try:
        moment = parse_datetime(text.replace("Z", "+00:00")) if "T" in text or " " in text else None
        if moment is None:
            day = parse_date(text)
            if day is None:
                return None
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if end_of_day:
                moment += timedelta(days=1) - timedelta(microseconds=1)
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=UTC)
        # Comparable in UTC on every database (year 1 minus an offset does not exist).
        moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return moment


def parse_contact_query(
    params: Mapping[str, Any],
    *,
    definitions: Mapping[str, AttributeDefinition],
    default_ordering: str = DEFAULT_ORDERING,
) -> ContactQuery:
    """Read list parameters; ValidationFailed names every parameter that is wrong."""
    errors: dict[str, list[str]] = {}
    query = ContactQuery(ordering=default_ordering)

    query.q = " ".join((params.get("q") or "").split())[:MAX_SEARCH]
    query.tags = [t.strip() for t in _getlist(params, "tag") if t.strip()]

    for value in _getlist(params, "identity"):
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if part not in Identity.values:
                errors.setdefault("identity", []).append(
                    f"{part!r} is not an identity level; use {', '.join(Identity.values)}."
                )
            elif part not in query.identities:
                query.identities.append(part)

    for name in DATE_RANGE_FIELDS:
        for bound in ("after", "before"):
            key = f"{name}_{bound}"
            raw = params.get(key)
            if raw in (None, ""):
                continue
            moment = _parse_moment(str(raw), end_of_day=bound == "before")
            if moment is None:
                errors.setdefault(key, []).append(
                    f"{raw!r} is not a date or datetime; use ISO 8601 such as 2024-03-31."
                )
            else:
                query.ranges[key] = moment

    seen = (params.get("seen") or "").strip()
    if seen:
        if seen in SEEN_CHOICES:
            query.seen = seen
        else:
            errors.setdefault("seen", []).append(f"Use one of {', '.join(SEEN_CHOICES)}.")

    for key in params:
        if not str(key).startswith("attr."):
            continue
        attr_key, op = str(key)[5:], "eq"
        if "__" in attr_key:
            attr_key, op = attr_key.rsplit("__", 1)
        if not _ATTR_KEY.match(attr_key):
            errors.setdefault(str(key), []).append("Use attr.<key> or attr.<key>__<operator>.")
            continue
        definition = definitions.get(attr_key)
        if definition is None:
            errors.setdefault(str(key), []).append(f"No attribute with key {attr_key!r}.")
            continue
        if op not in ATTRIBUTE_OPERATORS:
            errors.setdefault(str(key), []).append(
                f"Unknown operator {op!r}; use {', '.join(ATTRIBUTE_OPERATORS[1:])}."
            )
            continue
        for raw in _getlist(params, str(key)):
            try:
                query.attributes.append(_attribute_filter(definition, op, raw))
            except (AttributeValueError, ValueError) as exc:
                errors.setdefault(str(key), []).append(str(exc))

    deleted = str(params.get("deleted") or "").strip().lower()
    if deleted in ("true", "1", "yes"):
        query.deleted = True
    elif deleted not in ("", "false", "0", "no"):
        errors.setdefault("deleted", []).append("Use deleted=true or deleted=false.")

    ordering = (params.get("ordering") or "").strip()
    if ordering:
        try:
            _sort_for(ordering, definitions)
            query.ordering = ordering
        except ValueError as exc:
            errors.setdefault("ordering", []).append(str(exc))

    if errors:
        raise ValidationFailed(errors)
    return query


def _attribute_filter(definition: AttributeDefinition, op: str, raw: str) -> AttributeFilter:
    type_ = definition.type
    if op == "contains":
        if type_ not in ("text", "url", "select"):
            raise ValueError(f"contains works on text attributes; {definition.key} is {type_}.")
        if not raw.strip():
            raise ValueError("Give some text to look for.")
        return AttributeFilter(definition, op, raw.strip().lower())
    if op in ("gt", "gte", "lt", "lte") and type_ in ("boolean", "select", "url"):
        raise ValueError(f"{op} does not apply to {type_} attributes.")
    if type_ == "text" and op in ("gt", "gte", "lt", "lte"):
        raise ValueError(f"{op} does not apply to text attributes; use contains.")
    value = coerce_value(type_, raw, key=definition.key, options=definition.options)
    if value is None:
        raise ValueError("Give a value to compare with.")
    if type_ in ("text", "url"):
        value = value.lower()
    return AttributeFilter(definition, op, value)


# --- Expressions ------------------------------------------------------------------------------


class Compare(Func):
    """`lhs <op> rhs` as a boolean expression usable in filter() (row values included)."""

    output_field = BooleanField()
    arity = None
    OPERATORS = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

    def __init__(self, lhs: list[Expression], op: str, rhs: list[Expression]) -> None:
        if len(lhs) != len(rhs):
            raise ValueError("both sides need as many expressions")
        self.width = len(lhs)
        self.sql_operator = self.OPERATORS[op]
        super().__init__(*lhs, *rhs)

    def as_sql(self, compiler, connection, **extra_context):
        parts = [compiler.compile(e) for e in self.get_source_expressions()]
        sqls = [sql for sql, _ in parts]
        params = [p for _, ps in parts for p in ps]
        left, right = sqls[: self.width], sqls[self.width :]
        if self.width == 1:
            return f"({left[0]} {self.sql_operator} {right[0]})", params
        return f"(({', '.join(left)}) {self.sql_operator} ({', '.join(right)}))", params


def _sqlite_json_value(key: str, output_field) -> Func:
    return Func(
        F("attributes"), Value(f'$."{key}"'), function="JSON_EXTRACT", output_field=output_field
    )


# Sentinels that sort below every real value of the type (SQLite), so a missing value is a
# value too and keyset pages never skip contacts without the attribute.
_SQLITE_MISSING = {"number": -1e300, "boolean": -1}


def attribute_expression(definition: AttributeDefinition) -> Expression:
    """The stored value of an attribute as a comparable, sortable, never-null expression.

    PostgreSQL compares jsonb values natively (numbers as numbers, ISO dates as text) and a
    missing key becomes JSON null, which sorts below everything. Per-attribute expression
    indexes use this exact expression.
    """
    key = definition.key
    if connection.vendor == "postgresql":
        return Coalesce(
            KeyTransform(key, "attributes"),
            Cast(Value("null"), JSONField()),
            output_field=JSONField(),
        )
    if definition.type == "number":
        return Coalesce(_sqlite_json_value(key, FloatField()), Value(_SQLITE_MISSING["number"]))
    if definition.type == "boolean":
        return Coalesce(_sqlite_json_value(key, FloatField()), Value(_SQLITE_MISSING["boolean"]))
    return Coalesce(_sqlite_json_value(key, CharField()), Value(""), output_field=CharField())


def _attribute_literal(definition: AttributeDefinition, value: Any) -> Expression:
    if connection.vendor == "postgresql":
        return Value(value, output_field=JSONField())
    if definition.type in ("number", "boolean"):
        return Value(float(value), output_field=FloatField())
    return Value(value, output_field=CharField())


def _filter_attribute(qs: QuerySet, flt: AttributeFilter) -> QuerySet:
    definition, op, value = flt.definition, flt.op, flt.value
    key = definition.key
    if op == "contains" or (op == "eq" and definition.type in ("text", "url")):
        # Text matches ignore case; contains is a substring match.
        alias = f"_attr_text_{key}"
        lookup = alias if op == "eq" else f"{alias}__contains"
        return qs.alias(**{alias: Lower(KeyTextTransform(key, "attributes"))}).filter(
            **{lookup: value}
        )
    if connection.vendor == "postgresql":
        # The sort key itself (missing = JSON null), so the attribute's sort index, where
        # one was built, also answers the filter and its count.
        stored = attribute_expression(definition)
        if op in ("lt", "lte"):
            # JSON null sorts below every value: a contact without the attribute is not
            # "less than" anything.
            qs = qs.filter(Compare([stored], "gt", [Cast(Value("null"), JSONField())]))
    else:
        numeric = definition.type in ("number", "boolean")
        stored = _sqlite_json_value(key, FloatField() if numeric else CharField())
    return qs.filter(Compare([stored], op, [_attribute_literal(definition, value)]))


# --- Filtering -----------------------------------------------------------------------------


def filter_contacts(qs: QuerySet, query: ContactQuery, *, agent) -> QuerySet:
    """Apply a parsed query to a queryset of `agent`'s contacts."""
    qs = qs.filter(deleted_at__isnull=not query.deleted)
    if query.q:
        qs = _search(qs, query.q, agent=agent)
    if query.tags:
        # Resolve tag ids first (one small query) and filter by literal ids: the planner then
        # reads how common the tag is from contacttag's statistics. Behind a subquery it
        # assumes an average tag and, for a popular one, fetches every tagged contact before
        # sorting (1.7 s for a tag on 58,000 of a million contacts) instead of walking the
        # sort index until a page is full (a few ms).
        wanted = {name.lower() for name in query.tags}
        found: dict[str, list[int]] = {}
        for tag_name, pk in (
            Tag.objects.alias(lname=Lower("name"))
            .filter(agent=agent, lname__in=wanted)
            .values_list("name", "pk")
        ):
            found.setdefault(tag_name.lower(), []).append(pk)
        for name in query.tags:
            tag_ids = found.get(name.lower())
            if not tag_ids:
                return qs.none()
            qs = qs.filter(
                Exists(ContactTag.objects.filter(contact=OuterRef("pk"), tag_id__in=tag_ids))
            )
    if query.identities:
        qs = qs.filter(identity__in=query.identities)
    for key, moment in query.ranges.items():
        name, bound = key.rsplit("_", 1)
        qs = qs.filter(**{f"{name}_at__{'gte' if bound == 'after' else 'lte'}": moment})
    if query.seen:
        now = timezone.now()
        if query.seen == "never":
            qs = qs.filter(last_seen_at__isnull=True)
        elif query.seen == "over90d":
            qs = qs.filter(last_seen_at__lt=now - SEEN_WINDOWS["90d"])
        else:
            qs = qs.filter(last_seen_at__gte=now - SEEN_WINDOWS[query.seen])
    for flt in query.attributes:
        qs = _filter_attribute(qs, flt)
    return qs


def _search(qs: QuerySet, q: str, *, agent) -> QuerySet:
    """Substring search over name, email, external id and phone digits, and tag names.

    search_text is lower-cased by the database; a trigram index answers LIKE '%…%' on it.
    """
    needle = q.lower()
    match = Q(search_text__contains=needle)
    digits = phone_digits(q)
    if len(digits) >= 3 and digits != needle:
        match |= Q(search_text__contains=digits)
    # Tags are few per agent: resolve matching tag ids first, and only then widen the match.
    tag_ids = list(
        Tag.objects.filter(agent=agent, name__icontains=q).values_list("pk", flat=True)[:50]
    )
    if tag_ids:
        match |= Q(Exists(ContactTag.objects.filter(contact=OuterRef("pk"), tag_id__in=tag_ids)))
    return qs.filter(match)


# --- Ordering and keyset pagination ------------------------------------------------------------


@dataclass(frozen=True)
class SortSpec:
    ordering: str  # as given, e.g. "-last_seen_at" or "attr.plan"
    expression: Expression
    descending: bool
    kind: str  # "datetime", "text", "json", "number"


_DATETIME_FIELDS = {"created_at", "updated_at", "last_seen_at", "first_seen_at"}


def _sort_for(ordering: str, definitions: Mapping[str, AttributeDefinition]) -> SortSpec:
    descending = ordering.startswith("-")
    name = ordering.lstrip("-")
    if name.startswith("attr."):
        key = name[5:]
        definition = definitions.get(key)
        if definition is None:
            raise ValueError(f"No attribute with key {key!r} to sort by.")
        kind = (
            "json"
            if connection.vendor == "postgresql"
            else ("number" if definition.type in ("number", "boolean") else "text")
        )
        return SortSpec(ordering, attribute_expression(definition), descending, kind)
    if name not in SORT_EXPRESSIONS:
        raise ValueError(
            f"Cannot sort by {name!r}; use one of {', '.join(SORT_EXPRESSIONS)} or attr.<key>."
        )
    kind = "datetime" if name in _DATETIME_FIELDS else "text"
    return SortSpec(ordering, SORT_EXPRESSIONS[name], descending, kind)


def sort_spec(query: ContactQuery, definitions: Mapping[str, AttributeDefinition]) -> SortSpec:
    return _sort_for(query.ordering, definitions)


def order_contacts(qs: QuerySet, spec: SortSpec) -> QuerySet:
    key = spec.expression
    if spec.descending:
        return qs.alias(_sort=key).order_by(F("_sort").desc(), F("id").desc())
    return qs.alias(_sort=key).order_by(F("_sort").asc(), F("id").asc())


@dataclass
class Page:
    items: list
    next_cursor: str | None
    previous_cursor: str | None


def encode_cursor(spec: SortSpec, value: Any, pk: Any, direction: str) -> str:
    """The cursor naming the position just after (next) or before (prev) a row."""
    return encode_keyset({"o": spec.ordering, "v": value, "i": pk, "d": direction})


def decode_cursor(cursor: str, spec: SortSpec) -> tuple[Any, uuid.UUID, str]:
    """(sort value, id, direction) from a cursor; InvalidCursor if it is not ours or stale."""
    payload = decode_keyset(cursor, keys=("o", "v", "i", "d"))
    value, direction = payload["v"], payload["d"]
    if payload["o"] != spec.ordering or direction not in ("next", "prev"):
        raise InvalidCursor("The cursor belongs to another ordering; start from the first page.")
    pk = cursor_uuid(payload["i"])
    # A cursor comes back from the client: its value must be of the sort key's type before
    # it reaches SQL (PostgreSQL refuses text compared with numbers, and NUL in any string).
    try:
        if "\\u0000" in json.dumps(value, allow_nan=False):
            raise InvalidCursor
    except ValueError:
        raise InvalidCursor from None
    if spec.kind == "datetime":
        value = cursor_moment(value)
    elif spec.kind == "text" and not isinstance(value, str):
        raise InvalidCursor
    elif spec.kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidCursor
        try:
            float(value)
        except OverflowError:
            raise InvalidCursor from None
    return value, pk, direction


def _literal(spec: SortSpec, value: Any) -> Expression:
    if spec.kind == "json":
        return Value(value, output_field=JSONField())
    if spec.kind == "number":
        return Value(float(value), output_field=FloatField())
    if spec.kind == "datetime":
        return Value(value, output_field=DateTimeField())
    return Value(value, output_field=CharField())


def keyset_page(qs: QuerySet, spec: SortSpec, *, cursor: str | None, size: int) -> Page:
    """One page of `qs` in `spec` order starting after (or before) the cursor position.

    The position is a row value (sort key, id), compared in SQL as a tuple, which an index
    on (agent, sort key, id) answers with a range scan whatever the depth.
    """
    direction = "next"
    reverse = False
    if cursor:
        value, contact_id, direction = decode_cursor(cursor, spec)
        reverse = direction == "prev"
        forward_op = "lt" if spec.descending else "gt"
        op = {"gt": "lt", "lt": "gt"}[forward_op] if reverse else forward_op
        qs = qs.alias(_sort=spec.expression).filter(
            Compare([F("_sort"), F("id")], op, [_literal(spec, value), Value(contact_id)])
        )
    flipped = SortSpec(spec.ordering, spec.expression, spec.descending != reverse, spec.kind)
    rows = list(order_contacts(qs, flipped).annotate(_sort_value=spec.expression)[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    if reverse:
        rows.reverse()
    if not rows:
        return Page(items=[], next_cursor=None, previous_cursor=None)
    first, last = rows[0], rows[-1]
    more_after = has_more if not reverse else True
    more_before = bool(cursor) if not reverse else has_more
    return Page(
        items=rows,
        next_cursor=encode_cursor(spec, last._sort_value, last.pk, "next") if more_after else None,
        previous_cursor=encode_cursor(spec, first._sort_value, first.pk, "prev")
        if more_before
        else None,
    )
