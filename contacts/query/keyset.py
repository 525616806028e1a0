"""Ordering and keyset pagination of contacts: a page is the rows after (or before) a
(sort key, id) position, so page 10,000 costs what page 1 costs.

Every sort key is a non-null expression that matches an index (see Contact.Meta and
contacts.sort_indexes), so a sorted page is an index range scan from the cursor position."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import (
    CharField,
    Count,
    DateTimeField,
    Expression,
    F,
    FloatField,
    IntegerField,
    JSONField,
    QuerySet,
    Value,
    Window,
)
from django.db.models.functions import Cast

from attributes.models import AttributeDefinition
from contacts.models import NEVER, SORT_EXPRESSIONS
from contacts.query.expressions import SQLITE_MISSING, Compare, attribute_expression, indexed
from core.keyset import InvalidCursor, cursor_moment, cursor_uuid
from core.keyset import decode_cursor as decode_keyset
from core.keyset import encode_cursor as encode_keyset
from core.planning import plans_without

DEFAULT_ORDERING = "-created_at"
# A sort key every row has a value of (created_at, identity): nothing to move to the end.
NO_BLANK = object()


@dataclass(frozen=True)
class SortSpec:
    ordering: str  # as given, e.g. "-last_seen_at" or "attr.plan"
    expression: Expression
    descending: bool
    kind: str  # "datetime", "text", "json", "number" (an attribute), "integer" (a count)
    # The value the expression takes for "no value" (an empty name, never seen, no such
    # attribute), always the lowest of its kind; NO_BLANK when every row has a value.
    blank: Any = NO_BLANK

    @property
    def blanks_first_in_index(self) -> bool:
        """Ascending, blanks would lead: the pager moves them to the end (see keyset_page)."""
        return not self.descending and self.blank is not NO_BLANK


_DATETIME_FIELDS = {"created_at", "updated_at", "last_seen_at", "first_seen_at"}
# Counts compared as integers (a float literal would keep PostgreSQL off the integer index).
_INTEGER_FIELDS = {"conversation_count"}
# What an integer sort key can hold (PostgreSQL's integer); a cursor beyond it is not ours.
_INTEGER_RANGE = range(-(2**31), 2**31)
# What each core sort key is for a contact without that value (see SORT_EXPRESSIONS).
_BLANKS = {
    "name": "",
    "email": "",
    "company": "",
    "phone": "",
    "external_id": "",
    "last_seen_at": NEVER,
    "first_seen_at": NEVER,
}
# The attribute sort key of a contact without the attribute (attribute_expression).
_ATTRIBUTE_BLANKS = {"json": None, "number": SQLITE_MISSING["number"], "text": ""}


def sort_for(ordering: str, definitions: Mapping[str, AttributeDefinition]) -> SortSpec:
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
        blank = _ATTRIBUTE_BLANKS[kind]
        if kind == "number" and definition.type == "boolean":
            blank = SQLITE_MISSING["boolean"]
        return SortSpec(ordering, attribute_expression(definition), descending, kind, blank)
    if name not in SORT_EXPRESSIONS:
        raise ValueError(
            f"Cannot sort by {name!r}; use one of {', '.join(SORT_EXPRESSIONS)} or attr.<key>."
        )
    if name in _DATETIME_FIELDS:
        kind = "datetime"
    elif name in _INTEGER_FIELDS:
        kind = "integer"
    else:
        kind = "text"
    blank = _BLANKS.get(name, NO_BLANK)
    return SortSpec(ordering, indexed(SORT_EXPRESSIONS[name]), descending, kind, blank)


def order_contacts(qs: QuerySet, spec: SortSpec) -> QuerySet:
    """`qs` in the table's order: blanks last in both directions, ties broken by id."""
    key = spec.expression
    if spec.descending:
        return qs.alias(_sort=key).order_by(F("_sort").desc(), F("id").desc())
    if spec.blanks_first_in_index:
        is_blank = Compare([F("_sort")], "eq", [_literal(spec, spec.blank)])
        return qs.alias(_sort=key, _blank=is_blank).order_by("_blank", "_sort", "id")
    return qs.alias(_sort=key).order_by(F("_sort").asc(), F("id").asc())


@dataclass
class Page:
    items: list
    next_cursor: str | None
    previous_cursor: str | None
    # How many rows the query matches in all, when the page was asked to count them.
    matches: int | None = None


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
    elif spec.kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int) or value not in _INTEGER_RANGE:
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
        if value is None:  # JSON null, not SQL NULL: what a missing attribute sorts as
            return Cast(Value("null"), JSONField())
        return Value(value, output_field=JSONField())
    if spec.kind == "number":
        return Value(float(value), output_field=FloatField())
    if spec.kind == "integer":
        return Value(int(value), output_field=IntegerField())
    if spec.kind == "datetime":
        return Value(value, output_field=DateTimeField())
    return Value(value, output_field=CharField())


def keyset_page(
    qs: QuerySet, spec: SortSpec, *, cursor: str | None, size: int, count: bool = False
) -> Page:
    """One page of `qs` in `spec` order starting after (or before) the cursor position.

    The position is a row value (sort key, id), compared in SQL as a tuple, which an index
    on (agent, sort key, id) answers with a range scan whatever the depth.

    `count`: have the first page's query also count every row of `qs` (`Page.matches`), for
    a query whose plan reads every match anyway (a trigram search's bitmap scan, then a
    sort): one scan instead of a second one for the count. Only a first page read in one
    part counts; otherwise `matches` stays None.
    """
    if spec.blanks_first_in_index:
        return _blanks_last_page(qs, spec, cursor=cursor, size=size)
    if count and not cursor:
        return _counted_first_page(qs, spec, size=size)
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
    return _page(rows, spec, cursor=cursor, size=size, reverse=reverse)


# What a page that counts its matches is planned without (see _counted_first_page).
COUNTED_PAGE_WITHOUT = "indexscan"


def _counted_first_page(qs: QuerySet, spec: SortSpec, *, size: int) -> Page:
    """The first page, its query counting every row of `qs` as well (COUNT(*) OVER ()).

    On PostgreSQL index scans are left out of this one query (SET LOCAL): the window makes
    the planner prefer walking the sort index backwards and filtering every contact of the
    agent (3.2 s at a million for "garza") over the trigram bitmap and a top-N sort of the
    matches (37 ms), as a count must read every match either way.
    """
    ordered = order_contacts(qs, spec).annotate(
        _sort_value=spec.expression, _matches=Window(Count("*"))
    )[: size + 1]
    with plans_without(COUNTED_PAGE_WITHOUT, using=qs.db):
        rows = list(ordered)
    page = _page(rows, spec, cursor=None, size=size, reverse=False)
    page.matches = rows[0]._matches if rows else 0
    return page


def _page(rows: list, spec: SortSpec, *, cursor: str | None, size: int, reverse: bool) -> Page:
    """The page from up to size + 1 rows read in reading order (backwards for "prev"): one
    row more than the page tells that there is more beyond it."""
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


def _blanks_last_page(qs: QuerySet, spec: SortSpec, *, cursor: str | None, size: int) -> Page:
    """An ascending page with the contacts that have no value last, as people expect (Name
    ▲ must not open with pages of "Anonymous visitor").

    Blanks are the lowest sort key, so the index holds them first. The page is read in two
    index range scans instead of one: the rows with a value (sort key above the blank, in
    key order), then the blank rows (sort key equal to the blank, in id order). A cursor on
    a blank row continues among the blank rows; the same index answers both.
    """
    blank = _literal(spec, spec.blank)
    base = qs.alias(_sort=spec.expression)
    valued = base.filter(Compare([F("_sort")], "gt", [blank]))
    blanks = base.filter(Compare([F("_sort")], "eq", [blank]))
    at_blank = reverse = False
    if cursor:
        value, contact_id, direction = decode_cursor(cursor, spec)
        reverse = direction == "prev"
        at_blank = value == spec.blank or (spec.kind == "json" and value is None)
        op = "lt" if reverse else "gt"
        if at_blank:
            blanks = blanks.filter(Compare([F("id")], op, [Value(contact_id)]))
            valued = valued.none() if not reverse else valued
        else:
            valued = valued.filter(
                Compare([F("_sort"), F("id")], op, [_literal(spec, value), Value(contact_id)])
            )
            blanks = blanks if not reverse else blanks.none()
    # Reading backwards (a "previous" page) visits the two parts in the other order.
    parts = (
        [(blanks, ("-id",)), (valued, ("-_sort", "-id"))]
        if reverse
        else [
            (valued, ("_sort", "id")),
            (blanks, ("id",)),
        ]
    )
    rows: list = []
    for part, ordering in parts:
        if len(rows) > size:
            break
        rows += list(
            part.order_by(*ordering).annotate(_sort_value=spec.expression)[: size + 1 - len(rows)]
        )
    return _page(rows, spec, cursor=cursor, size=size, reverse=reverse)
