"""SQL expressions the contact filters and sorts are built from: attribute values as
comparable, sortable, never-null expressions (the exact expression per-attribute sort
indexes are built on), row-value comparison, and the substring search."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import (
    CharField,
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
from django.db.models.lookups import Contains, Exact, Lookup

from attributes.models import KEY_PATTERN, AttributeDefinition
from contacts.models import Contact, ContactTag, Tag
from contacts.normalize import phone_digits
from contacts.search_index import FTS_ROWIDS, fts_narrows, fts_query, fts_supported

ATTRIBUTE_KEY = re.compile(KEY_PATTERN)


class _Row(Func):
    """A row value `(a, b, …)`."""

    template = "(%(expressions)s)"
    arity = None


class Compare(Lookup):
    """`lhs <op> rhs` as a condition usable in filter() (row values included).

    A lookup rather than a boolean expression: filtering by an expression on a database
    without a boolean type (SQLite) compares it with 1, `(key > ?) = 1`, which no index
    answers; a lookup is written into WHERE as it is.
    """

    lookup_name = "compare"
    prepare_rhs = False
    OPERATORS = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

    def __init__(self, lhs: list[Expression], op: str, rhs: list[Expression]) -> None:
        if len(lhs) != len(rhs):
            raise ValueError("both sides need as many expressions")
        self.sql_operator = self.OPERATORS[op]
        row = (lambda parts: parts[0]) if len(lhs) == 1 else (lambda parts: _Row(*parts))
        super().__init__(row(lhs), row(rhs))

    @property
    def identity(self):
        return (*super().identity, self.sql_operator)

    def as_sql(self, compiler, connection):
        lhs_sql, lhs_params = compiler.compile(self.lhs)
        rhs_sql, rhs_params = compiler.compile(self.rhs)
        return f"({lhs_sql} {self.sql_operator} {rhs_sql})", (*lhs_params, *rhs_params)


def _sqlite_path(key: str) -> str:
    # Written into the SQL (below): keys are checked against the attribute key pattern.
    if not ATTRIBUTE_KEY.match(key):
        raise ValueError(f"not an attribute key: {key!r}")
    return f'$."{key}"'


def _sqlite_json_value(key: str, output_field) -> Func:
    """`JSON_EXTRACT(attributes, '$."key"')` with the path written into the SQL, not bound:
    SQLite only uses an expression index for the same expression, and a bound parameter
    is not the literal the index was built with."""
    return Func(
        F("attributes"),
        template=f"JSON_EXTRACT(%(expressions)s, '{_sqlite_path(key)}')",
        output_field=output_field,
    )


# Sentinels that sort below every real value of the type (SQLite), so a missing value is a
# value too and keyset pages never skip contacts without the attribute.
SQLITE_MISSING = {"number": -1e300, "boolean": -1}
# The same, as written into the sort key's SQL (see _sqlite_json_value).
_SQLITE_MISSING_SQL = {"number": "-1e300", "boolean": "-1", "text": "''"}


def _sqlite_sort_key(definition: AttributeDefinition) -> Func:
    kind = definition.type if definition.type in ("number", "boolean") else "text"
    output_field = CharField() if kind == "text" else FloatField()
    return Func(
        _sqlite_json_value(definition.key, output_field),
        template=f"COALESCE(%(expressions)s, {_SQLITE_MISSING_SQL[kind]})",
        output_field=output_field,
    )


class Inline(Func):
    """The wrapped expression with its parameters written into the SQL (SQLite), as a
    CREATE INDEX holds them: SQLite matches an expression index only to the identical
    expression, so `COALESCE(last_seen_at, ?)` never reads the index on
    `COALESCE(last_seen_at, '1970-01-01 00:00:00')`. Only for expressions built here from
    constants (sort keys), never from user input."""

    template = "%(expressions)s"
    arity = 1

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = self.as_sql(compiler, connection, **extra_context)
        if not params:
            return sql, params
        editor = connection.SchemaEditorClass(connection)
        return sql % tuple(editor.quote_value(p) for p in params), ()


def indexed(expression: Expression) -> Expression:
    """A sort key as its index holds it (see Inline); unchanged on PostgreSQL."""
    if connection.vendor == "sqlite" and not isinstance(expression, F):
        return Inline(expression)
    return expression


def attribute_expression(definition: AttributeDefinition) -> Expression:
    """The stored value of an attribute as a comparable, sortable, never-null expression.

    PostgreSQL compares jsonb values natively (numbers as numbers, ISO dates as text) and a
    missing key becomes JSON null, which sorts below everything. SQLite reads the value
    with JSON_EXTRACT and puts a sentinel below every real value for a missing one.
    Per-attribute expression indexes use this exact expression.
    """
    key = definition.key
    if connection.vendor == "postgresql":
        return Coalesce(
            KeyTransform(key, "attributes"),
            Cast(Value("null"), JSONField()),
            output_field=JSONField(),
        )
    return _sqlite_sort_key(definition)


def _sqlite_missing_literal(definition: AttributeDefinition) -> Expression:
    if definition.type in ("number", "boolean"):
        return Value(float(SQLITE_MISSING[definition.type]), output_field=FloatField())
    return Value("", output_field=CharField())


def _attribute_literal(definition: AttributeDefinition, value: Any) -> Expression:
    if connection.vendor == "postgresql":
        return Value(value, output_field=JSONField())
    if definition.type in ("number", "boolean"):
        return Value(float(value), output_field=FloatField())
    return Value(value, output_field=CharField())


@dataclass(frozen=True)
class Range:
    """The values a comparison keeps: from `low` to `high` (None: unbounded), each end
    included or not. Values are in the stored form of what they are compared with."""

    low: Any = None
    low_inclusive: bool = True
    high: Any = None
    high_inclusive: bool = True

    @property
    def is_point(self) -> bool:
        """Exactly one value (an equality)."""
        return (
            self.low is not None
            and self.low == self.high
            and self.low_inclusive
            and self.high_inclusive
        )


def attribute_condition(definition: AttributeDefinition, op: str, operand: Any) -> Q:
    """The predicate "the contact's value of `definition` compares with `operand` by `op`"
    (eq, ne, contains, not_contains, exists, or a Range for numbers and dates; text
    compares ignoring case). `ne` and `not_contains` keep contacts without the attribute
    (they are not "Pro"); `exists` is true for any value, false for none."""
    key = definition.key
    postgres = connection.vendor == "postgresql"
    json_null = Cast(Value("null"), JSONField())
    if op == "exists":
        if postgres:
            # The sort key (missing = JSON null, the lowest jsonb value): the attribute's
            # sort index, where one was built, answers "has any value" as a range.
            stored = attribute_expression(definition)
            return Q(Compare([stored], "gt" if operand else "eq", [json_null]))
        has = Q(attributes__has_key=key)
        return has if operand else ~has
    text_match = op in ("contains", "not_contains") or (
        op in ("eq", "ne") and definition.type in ("text", "url")
    )
    if text_match:
        # Text matches ignore case; contains is a substring match. Never null, so that the
        # negations keep contacts without the attribute.
        text = Coalesce(
            Lower(KeyTextTransform(key, "attributes")), Value(""), output_field=CharField()
        )
        if op in ("contains", "not_contains"):
            match = Q(Contains(text, operand))
        else:
            match = Q(Exact(text, Value(operand, output_field=CharField())))
        return ~match if op in ("ne", "not_contains") else match
    if op == "ne":
        # The never-null sort key: a contact without the attribute is "not" any value.
        value = operand.low if isinstance(operand, Range) else operand
        stored = attribute_expression(definition)
        return ~Q(Compare([stored], "eq", [_attribute_literal(definition, value)]))
    # The sort key itself, so the attribute's sort index also answers the filter. A
    # contact without the attribute holds the lowest key (JSON null, SQLite's sentinel),
    # which no value equals and an open lower end excludes below.
    stored = attribute_expression(definition)
    if not postgres and not isinstance(operand, Range) and operand == "":
        # "" is SQLite's missing-text sentinel: compare the bare value instead.
        stored = _sqlite_json_value(key, CharField())
    if not isinstance(operand, Range):
        return Q(Compare([stored], "eq", [_attribute_literal(definition, operand)]))
    span = operand
    if (
        span.low is not None
        and span.low == span.high
        and span.low_inclusive
        and span.high_inclusive
    ):
        return Q(Compare([stored], "eq", [_attribute_literal(definition, span.low)]))
    q = Q()
    if span.low is not None:
        op_low = "gte" if span.low_inclusive else "gt"
        q &= Q(Compare([stored], op_low, [_attribute_literal(definition, span.low)]))
    else:
        # The missing value sorts below every value: a contact without the attribute is
        # not "less than" anything.
        lowest = json_null if postgres else _sqlite_missing_literal(definition)
        q &= Q(Compare([stored], "gt", [lowest]))
    if span.high is not None:
        op_high = "lte" if span.high_inclusive else "lt"
        q &= Q(Compare([stored], op_high, [_attribute_literal(definition, span.high)]))
    return q


class SearchContains(Contains):
    """`search_text` (of the contact `F(…)` names) contains a substring: on PostgreSQL a
    LIKE its trigram index answers; on SQLite the same LIKE, narrowed first to the rows the
    FTS5 trigram index finds (contacts.search_index) when `narrow`, so a search reads its
    matches instead of scanning every contact."""

    narrow = True

    def as_sqlite(self, compiler, connection):
        sql, params = self.as_sql(compiler, connection)
        query = fts_query(self.rhs) if self.narrow and isinstance(self.rhs, str) else None
        alias = getattr(self.lhs, "alias", None)
        if query is None or alias is None or not fts_supported(connection):
            return sql, params
        rowid = f"{compiler.quote_name_unless_alias(alias)}.rowid"
        return f"({sql} AND {rowid} IN ({FTS_ROWIDS}))", (*params, query)


def search_text_contains(needle: str, *, contact: str = "") -> Q:
    """The contact (`contact` is the path to it, "" for contacts themselves) whose
    search_text contains `needle`: through the search index where it narrows the search
    (SQLite, see contacts.search_index.fts_narrows; PostgreSQL's planner decides alone)."""
    lookup = SearchContains(F(f"{contact}__search_text" if contact else "search_text"), needle)
    lookup.narrow = fts_narrows(connection, needle)
    return Q(lookup)


# "+1 (415) 555-0123", "415.555", "0044 20 7946": digits and the signs people write them with.
PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]+$")
# Contacts of an agent sharing one email that the exact-match lookup considers (the first
# page pins a handful; deleted or filtered-out ones among them are dropped).
EXACT_CANDIDATES = 1_000


def exact_matches(qs: QuerySet, q: str, *, agent, limit: int, deleted: bool = False) -> list:
    """Up to `limit` of `qs` whose email (any case) or external id is exactly the search
    text, in id order: what someone who pasted one is looking for, listed first. `qs` holds
    the agent's live contacts, or with `deleted` its deleted ones.

    The agent's lower(email) and external id indexes find the candidates first, and only
    those few are then looked for in `qs`: asked within `qs` at once, the planner answered
    its search condition first, from the trigram index (28 ms at ten million contacts for a
    pasted address, paid again by the page and its count). Neither query has an ORDER BY:
    with one, PostgreSQL walks the primary key of a million contacts looking for the match
    (0.35 s instead of 0.1 ms); the few rows are put in order here.
    """
    text = q.strip()
    if not text:
        return []
    by_email = Q(email_ci=text.lower()) & ~Q(email="")
    ids = (
        Contact.objects.filter(agent=agent, deleted_at__isnull=not deleted)
        .alias(email_ci=Lower("email"))
        .order_by()
        .values_list("pk", flat=True)
    )
    if connection.vendor == "sqlite":
        # SQLite answers the OR of two indexes by walking the agent: ask each one alone.
        found = {*ids.filter(by_email)[:EXACT_CANDIDATES]}
        found.update(ids.filter(external_id=text)[:EXACT_CANDIDATES])
    else:
        found = set(ids.filter(by_email | Q(external_id=text))[:EXACT_CANDIDATES])
    if not found:
        return []
    return sorted(qs.filter(pk__in=found).order_by()[:limit], key=lambda contact: contact.pk)


def search(qs: QuerySet, q: str, *, agent) -> QuerySet:
    """Substring search over name, email, external id and phone digits, and tag names.

    search_text is lower-cased by the database; a trigram index answers LIKE '%…%' on it
    (see SearchContains).
    """
    needle = q.lower()
    match = search_text_contains(needle)
    digits = phone_digits(q)
    # Only a query that is written like a phone number also matches by its digits: the
    # "251" inside judy.allen251@stark.industries must not find every phone with 251.
    if len(digits) >= 3 and digits != needle and PHONE_LIKE.match(q.strip()):
        match |= search_text_contains(digits)
    # Tags are few per agent: resolve matching tag ids first, and only then widen the match.
    tag_ids = list(
        Tag.objects.filter(agent=agent, name__icontains=q).values_list("pk", flat=True)[:50]
    )
    if tag_ids:
        match |= Q(Exists(ContactTag.objects.filter(contact=OuterRef("pk"), tag_id__in=tag_ids)))
    return qs.filter(match)
