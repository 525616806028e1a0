"""Conditions: one comparison of a contact field or custom attribute with a value. The
filter builder adds them, `match=all|any` combines them, segments store them, and the API
reads them, all in one syntax:

    attr.<key>=<value>          attr.<key>__<op>=<value>      a custom attribute
    <field>=<value>             <field>__<op>=<value>         a contact field (FIELDS)
    match=all (default) | any   every condition must hold, or at least one

Operators (OPERATORS_BY_KIND says which fit which kind of value): eq, ne, contains,
not_contains, gt, gte, lt, lte, between (`low,high`, both ends included), within (`N`:
in the last N days), older (`N`: more than N days ago) and exists (`true`: has any value,
`false`: is empty). A date alone means the whole day in UTC: "after 2024-01-31" starts on
February 1st, "on or before 2024-01-31" ends with January 31st.

Each condition is one SQL predicate on the same expressions the sort indexes are built on
(contacts.models.SORT_EXPRESSIONS, contacts.query.expressions.attribute_expression), so a
condition on a sorted column is an index range, and `match=any` is an OR of the same
predicates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import (
    CharField,
    DateTimeField,
    Exists,
    Expression,
    IntegerField,
    OuterRef,
    Q,
    Value,
)
from django.db.models.functions import Coalesce, Lower
from django.db.models.lookups import Contains, Exact
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from attributes.coercion import AttributeValueError, coerce_value
from attributes.models import KEY_PATTERN, AttributeDefinition
from contacts.models import NEVER, SORT_EXPRESSIONS, ContactTag
from contacts.normalize import FieldError, normalize_phone, phone_digits
from contacts.query.expressions import (
    Compare,
    Range,
    attribute_condition,
    indexed,
    search_text_contains,
)

TEXT_OPS = ("eq", "ne", "contains", "not_contains", "exists")
NUMBER_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "between")
DATE_OPS = ("eq", "gt", "gte", "lt", "lte", "between", "within", "older")
OPERATORS_BY_KIND: dict[str, tuple[str, ...]] = {
    # Attribute types.
    "text": TEXT_OPS,
    "url": TEXT_OPS,
    "select": TEXT_OPS,
    "number": (*NUMBER_OPS, "exists"),
    "date": (*DATE_OPS, "exists"),
    "datetime": (*DATE_OPS, "exists"),
    "boolean": ("eq", "exists"),
    # Contact fields that are not like any attribute type.
    "tag": ("eq", "ne", "exists"),
    "count": NUMBER_OPS,  # conversations: every contact has a number
    "moment": DATE_OPS,  # created, updated: every contact has one
    "seen": (*DATE_OPS, "exists"),  # last / first seen: empty until the first visit
}
OPERATORS = (
    "eq", "ne", "contains", "not_contains", "gt", "gte", "lt", "lte", "between", "within",
    "older", "exists",
)  # fmt: skip
DATED_KINDS = ("date", "datetime", "moment", "seen")
RANGE_OPS = ("gt", "gte", "lt", "lte", "between", "within", "older")

# The contact fields conditions apply to: label and kind. `tag` is the condition form of
# the tag filter (tag__eq, tag__ne, tag__exists); plain `tag=` stays the filter that
# requires every tag it names.
FIELDS: dict[str, tuple[str, str]] = {
    "name": ("Name", "text"),
    "email": ("Email", "text"),
    "phone": ("Phone", "text"),
    "company": ("Company", "text"),
    "external_id": ("External ID", "text"),
    "tag": ("Tag", "tag"),
    "conversation_count": ("Conversations", "count"),
    "created_at": ("Created", "moment"),
    "updated_at": ("Updated", "moment"),
    "last_seen_at": ("Last seen", "seen"),
    "first_seen_at": ("First seen", "seen"),
}
# Fields searched through contacts.search_text (a trigram index on PostgreSQL): a
# "contains" on them also asks search_text, which any match of the field implies, so the
# index can find the few matching rows instead of reading them all.
_IN_SEARCH_TEXT = ("name", "email", "external_id", "phone")
MAX_CONDITIONS = 50
MAX_VALUE = 1000
MAX_DAYS = 36_500
_ATTR_KEY = re.compile(KEY_PATTERN)

OPERATOR_LABELS = {
    "eq": "is",
    "ne": "is not",
    "contains": "contains",
    "not_contains": "does not contain",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "between": "between",
}
DATE_OPERATOR_LABELS = {
    "eq": "on",
    "gt": "after",
    "gte": "on or after",
    "lt": "before",
    "lte": "on or before",
    "between": "between",
    "within": "in the last … days",
    "older": "more than … days ago",
}
# The builder's two conditions that need no value: <param>__exists=true|false.
PRESENCE_CHOICES = {"exists": "has any value", "empty": "is empty"}


@dataclass(frozen=True)
class Target:
    """What a condition compares: a contact field or an attribute."""

    param: str  # "attr.plan" or "email": the parameter name without its operator
    label: str
    kind: str  # a key of OPERATORS_BY_KIND
    definition: AttributeDefinition | None = None

    @property
    def field(self) -> str:
        return "" if self.definition is not None else self.param

    def name_for(self, op: str) -> str:
        """The parameter spelling `op` on this target (eq of an attribute is plain)."""
        if op == "eq" and self.definition is not None:
            return self.param
        return f"{self.param}__{op}"


def field_target(field: str) -> Target:
    label, kind = FIELDS[field]
    return Target(field, label, kind)


def attribute_target(definition: AttributeDefinition) -> Target:
    return Target(
        f"attr.{definition.key}", definition.label or definition.key, definition.type, definition
    )


def is_condition_param(name: str) -> bool:
    """Whether a query parameter is a condition (or looks like one: `x__op`)."""
    if name.startswith("attr."):
        return True
    if "__" in name:
        return True
    return name in FIELDS and name != "tag"


def split_param(name: str) -> tuple[str, str]:
    """("attr.plan", "gte") from "attr.plan__gte"; the operator defaults to eq."""
    if "__" in name:
        base, op = name.rsplit("__", 1)
        return base, op
    return name, "eq"


def resolve(name: str, definitions: Mapping[str, AttributeDefinition]) -> tuple[Target, str]:
    """The target and operator a condition parameter names; ValueError saying what is wrong
    with the name otherwise."""
    base, op = split_param(name)
    if base.startswith("attr."):
        key = base[5:]
        if not _ATTR_KEY.match(key):
            raise ValueError("Use attr.<key> or attr.<key>__<operator>.")
        if key not in definitions:
            raise ValueError(f"No attribute with key {key!r}.")
        target = attribute_target(definitions[key])
    elif base in FIELDS and not (base == "tag" and "__" not in name):
        target = field_target(base)
    else:
        fields = ", ".join(FIELDS)
        raise ValueError(f"No field {base!r} to filter by; use one of {fields} or attr.<key>.")
    if op not in OPERATORS:
        raise ValueError(f"Unknown operator {op!r}; use {', '.join(OPERATORS[1:])}.")
    return target, op


# --- Values -------------------------------------------------------------------------------


def parse_moment(text: str, *, end_of_day: bool) -> datetime | None:
    """An aware datetime from ISO 8601 text; None when it is not one (or not in UTC's
    years 1-9999)."""
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


@dataclass(frozen=True)
class _Point:
    """A value to compare with: `start` alone for a number or an instant; for a whole day,
    the day's `start` and the `end` (exclusive) where the next day starts."""

    start: Any
    end: Any = None

    @property
    def is_span(self) -> bool:
        return self.end is not None


def _day_after(day: date) -> date | None:
    try:
        return day + timedelta(days=1)
    except OverflowError:
        return None


def _point(target: Target, raw: str) -> _Point:
    """One comparable value of the target's kind from text, or ValueError in words."""
    kind = target.kind
    if kind == "count":
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
            raise ValueError(f"{target.label} must be a whole number, such as 3.")
        return _Point(int(raw))
    if kind in ("moment", "seen"):
        moment = parse_moment(raw, end_of_day=False)
        if moment is None:
            raise ValueError(f"{raw!r} is not a date; use ISO 8601 such as 2024-03-31.")
        if "T" in raw or " " in raw.strip():
            return _Point(moment)
        following = _day_after(moment.date())
        end = (
            datetime(following.year, following.month, following.day, tzinfo=UTC)
            if following
            else None
        )
        return _Point(moment, end) if end else _Point(moment)
    definition = target.definition
    assert definition is not None
    value = coerce_value(kind, raw, key=definition.key, options=definition.options)
    if value is None:
        raise ValueError("Give a value to compare with.")
    if kind == "date":
        following = _day_after(date.fromisoformat(value))
        return _Point(value, following.isoformat() if following else None)
    if kind == "datetime" and "T" not in raw.strip() and " " not in raw.strip():
        # A date alone on a date-time attribute: the whole day, in UTC.
        day = date.fromisoformat(value[:10])
        following = _day_after(day)
        if following is not None:
            return _Point(value, f"{following.isoformat()}T00:00:00Z")
    return _Point(value)


def _days(raw: str) -> int:
    text = raw.strip().lower().removesuffix("d").strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text[:9]) <= MAX_DAYS:
        raise ValueError(f"Give a number of days from 1 to {MAX_DAYS:,}, such as 30.")
    return int(text)


def _range(target: Target, op: str, raw: str) -> Range:
    """The range of values a comparison keeps, both ends in the target's stored form."""
    if op in ("within", "older"):
        days = _days(raw)
        now = timezone.now()
        if target.kind == "date":
            today = now.date()
            cut = (today - timedelta(days=days)).isoformat()
            if op == "within":
                return Range(low=cut, high=today.isoformat())
            return Range(high=cut, high_inclusive=False)
        cut_moment = now - timedelta(days=days)
        cut_value: Any = cut_moment
        now_value: Any = now
        if target.kind == "datetime":
            cut_value = cut_moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            now_value = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        if op == "within":
            return Range(low=cut_value, high=now_value)
        return Range(high=cut_value, high_inclusive=False)
    if op == "between":
        parts = [p.strip() for p in raw.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ValueError("Give two values separated by a comma, such as 10,20.")
        low, high = _point(target, parts[0]), _point(target, parts[1])
        if low.start > high.start:
            raise ValueError("The first value must not be after the second.")
        if high.is_span:
            return Range(low=low.start, high=high.end, high_inclusive=False)
        return Range(low=low.start, high=high.start)
    point = _point(target, raw)
    if op == "gt":
        return (
            Range(low=point.end) if point.is_span else Range(low=point.start, low_inclusive=False)
        )
    if op == "gte":
        return Range(low=point.start)
    if op == "lt":
        return Range(high=point.start, high_inclusive=False)
    if op == "lte":
        if point.is_span:
            return Range(high=point.end, high_inclusive=False)
        return Range(high=point.start)
    # eq on a whole day is the day's range; otherwise one value.
    if point.is_span:
        return Range(low=point.start, high=point.end, high_inclusive=False)
    return Range(low=point.start, high=point.start)


def parse_operand(target: Target, op: str, raw: str, *, region: str = "US") -> Any:
    """What `<param>__<op>=raw` compares with, or ValueError saying why not, in words for
    the person who typed it."""
    kind = target.kind
    label = target.label
    if op not in OPERATORS_BY_KIND[kind]:
        word = {**DATE_OPERATOR_LABELS, **OPERATOR_LABELS, **PRESENCE_CHOICES}.get(op, op)
        what = (
            target.definition.get_type_display().lower()
            if target.definition is not None
            else {"tag": "tags", "count": "a number", "moment": "a date", "seen": "a date"}.get(
                kind, kind
            )
        )
        if op in ("contains", "not_contains"):
            noun = "attributes" if target.definition is not None else "fields"
            raise ValueError(f"{op.replace('_', ' ')} works on text {noun}; {label} is {what}.")
        raise ValueError(f"“{word}” does not apply to {label} ({what}).")
    raw = str(raw)
    if len(raw) > MAX_VALUE:
        raise ValueError(f"Give at most {MAX_VALUE:,} characters.")
    if op == "exists":
        flag = raw.strip().lower()
        if flag not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError("Use true (has any value) or false (is empty).")
        return flag in ("true", "1", "yes")
    text = raw.strip()
    if not text:
        raise ValueError("Give a value to compare with.")
    if op in ("contains", "not_contains"):
        if target.field == "phone":
            digits = phone_digits(text)
            if not digits:
                raise ValueError("Give some digits of the phone number.")
            return digits
        return text.lower()
    if kind == "tag":
        return text.lower()
    if target.definition is None and kind == "text":
        if target.field == "phone":
            try:
                return normalize_phone(text, region=region)
            except FieldError as exc:
                raise ValueError(str(exc)) from None
        return text if target.field == "external_id" else text.lower()
    if op in RANGE_OPS or kind in ("number", "count", *DATED_KINDS):
        return _range(target, op, text)
    value = coerce_value(kind, text, key=target.definition.key, options=target.definition.options)
    return value.lower() if kind in ("text", "url") else value


def operand_error(target: Target, exc: Exception) -> str:
    """A refused value as the person who typed it reads it."""
    if isinstance(exc, AttributeValueError) and target.definition is not None:
        return exc.for_people(target.label, target.definition.options)
    return str(exc)


# --- SQL ----------------------------------------------------------------------------------


def condition_q(target: Target, op: str, operand: Any, *, tag_ids: Mapping[str, list]) -> Q:
    """The predicate of one condition. `tag_ids` maps lower-cased tag names to the agent's
    tag ids (resolved once for every tag condition of a request)."""
    if target.definition is not None:
        return attribute_condition(target.definition, op, operand)
    field = target.field
    if field == "tag":
        if op == "exists":
            has = Q(Exists(ContactTag.objects.filter(contact=OuterRef("pk"))))
            return has if operand else ~has
        ids = tag_ids.get(operand, [])
        has = (
            Q(Exists(ContactTag.objects.filter(contact=OuterRef("pk"), tag_id__in=ids)))
            if ids
            else Q(pk__in=[])
        )
        return has if op == "eq" else ~has
    expression = indexed(SORT_EXPRESSIONS[field])
    if target.kind == "text":
        return _text_field_q(field, op, operand, expression)
    literal = _count_literal if target.kind == "count" else _moment_literal
    if op == "exists":  # last / first seen: "never" is the stand-in the index holds
        compare = Compare([expression], "gt" if operand else "eq", [literal(NEVER)])
        return Q(compare)
    if op == "ne":
        return ~_range_q(expression, operand, literal)
    q = _range_q(expression, operand, literal)
    if target.kind == "seen" and (operand.low is None or operand.low <= NEVER):
        # Never seen sorts as the epoch: it is not "before" anything.
        q &= Q(Compare([expression], "gt", [literal(NEVER)]))
    return q


def _count_literal(value: Any) -> Expression:
    return Value(int(value), output_field=IntegerField())


def _moment_literal(value: Any) -> Expression:
    return Value(value, output_field=DateTimeField())


def _range_q(expression: Expression, span: Range, literal) -> Q:
    if (
        span.low is not None
        and span.low == span.high
        and span.low_inclusive
        and span.high_inclusive
    ):
        return Q(Compare([expression], "eq", [literal(span.low)]))
    q = Q()
    if span.low is not None:
        q &= Q(Compare([expression], "gte" if span.low_inclusive else "gt", [literal(span.low)]))
    if span.high is not None:
        q &= Q(Compare([expression], "lte" if span.high_inclusive else "lt", [literal(span.high)]))
    return q


def _text_field_q(field: str, op: str, operand: Any, expression: Expression) -> Q:
    """Name, email, company and phone: the sort index's own expression (lower case, never
    null), so "is" and "has any value" are index lookups; external ids: the unique index."""
    blank = Value("", output_field=CharField())
    if field == "external_id":
        # The unique (agent, external_id) index: NULL is "no external id".
        if op == "exists":
            return Q(external_id__gt="") if operand else ~Q(external_id__gt="")
        if op in ("eq", "ne"):
            return Q(external_id=operand) if op == "eq" else ~Q(external_id=operand)
        expression = Lower(Coalesce("external_id", blank))
    elif op == "exists":
        return Q(Compare([expression], "gt" if operand else "eq", [blank]))
    elif op in ("eq", "ne"):
        match = Q(Exact(expression, Value(operand, output_field=CharField())))
        return match if op == "eq" else ~match
    match = Q(Contains(expression, operand))
    if op == "not_contains":
        return ~match
    if field in _IN_SEARCH_TEXT:
        match &= search_text_contains(operand)
    return match


def combine(conditions: list[Q], *, any_of: bool) -> Q:
    """All of the conditions, or any of them."""
    if not conditions:
        return Q()
    if any_of:
        return reduce(or_, conditions)
    return reduce(lambda a, b: a & b, conditions)


# --- Words --------------------------------------------------------------------------------


def describe(target: Target, op: str, raw: str) -> str:
    """ "Plan is Pro", "Signup after 2024-01-01", "MRR between 10 and 20", "Plan is empty"."""
    label = target.label
    if op == "exists":
        empty = str(raw).strip().lower() in ("false", "0", "no")
        if target.kind == "tag":
            return "No tags" if empty else "Has any tag"
        return f"{label} {PRESENCE_CHOICES['empty' if empty else 'exists']}"
    shown = str(raw)
    if target.kind == "boolean":
        shown = {"true": "Yes", "false": "No"}.get(shown.lower(), shown)
    if op == "between":
        low, _, high = shown.partition(",")
        return f"{label} between {low.strip()} and {high.strip()}"
    if op in ("within", "older"):
        days = shown.strip().lower().removesuffix("d").strip()
        unit = "day" if days == "1" else "days"
        return (
            f"{label} in the last {days} {unit}"
            if op == "within"
            else (f"{label} more than {days} {unit} ago")
        )
    dated = target.kind in DATED_KINDS
    word = (DATE_OPERATOR_LABELS if dated else OPERATOR_LABELS).get(op, op)
    return f"{label} {word} {shown}"
