"""SQL expressions the contact filters and sorts are built from: attribute values as
comparable, sortable, never-null expressions (the exact expression per-attribute sort
indexes are built on), row-value comparison, and the substring search."""

from __future__ import annotations

import re
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
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

from attributes.models import AttributeDefinition
from contacts.models import ContactTag, Tag
from contacts.normalize import phone_digits


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
SQLITE_MISSING = {"number": -1e300, "boolean": -1}


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
        return Coalesce(_sqlite_json_value(key, FloatField()), Value(SQLITE_MISSING["number"]))
    if definition.type == "boolean":
        return Coalesce(_sqlite_json_value(key, FloatField()), Value(SQLITE_MISSING["boolean"]))
    return Coalesce(_sqlite_json_value(key, CharField()), Value(""), output_field=CharField())


def _attribute_literal(definition: AttributeDefinition, value: Any) -> Expression:
    if connection.vendor == "postgresql":
        return Value(value, output_field=JSONField())
    if definition.type in ("number", "boolean"):
        return Value(float(value), output_field=FloatField())
    return Value(value, output_field=CharField())


def filter_attribute(
    qs: QuerySet, definition: AttributeDefinition, op: str, value: Any
) -> QuerySet:
    """Contacts whose value of `definition` compares with `value` by `op` (eq, ne, gt, gte,
    lt, lte, contains, exists; text compares ignoring case). `ne` keeps contacts without
    the attribute (they are not "Pro"); `exists` is true for any value, false for none."""
    key = definition.key
    if op == "exists":
        has = Q(attributes__has_key=key)
        return qs.filter(has) if value else qs.exclude(has)
    if op == "ne":
        matching = filter_attribute(qs.model.objects.all(), definition, "eq", value)
        return qs.exclude(pk__in=matching.filter(agent_id=definition.agent_id).values("pk"))
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


# "+1 (415) 555-0123", "415.555", "0044 20 7946": digits and the signs people write them with.
PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]+$")


def exact_matches(qs: QuerySet, q: str, *, limit: int) -> list:
    """Up to `limit` of `qs` whose email (any case) or external id is exactly the search
    text, in id order: what someone who pasted one is looking for, listed first.

    The lower(email) and external id indexes answer it. The query has no ORDER BY: with
    one, PostgreSQL walks the primary key of a million contacts looking for the match
    (0.35 s instead of 0.1 ms); the few rows are put in order here.
    """
    text = q.strip()
    if not text:
        return []
    found = qs.alias(email_ci=Lower("email")).filter(
        (Q(email_ci=text.lower()) & ~Q(email="")) | Q(external_id=text)
    )
    return sorted(found.order_by()[:limit], key=lambda contact: contact.pk)


def search(qs: QuerySet, q: str, *, agent) -> QuerySet:
    """Substring search over name, email, external id and phone digits, and tag names.

    search_text is lower-cased by the database; a trigram index answers LIKE '%…%' on it.
    """
    needle = q.lower()
    match = Q(search_text__contains=needle)
    digits = phone_digits(q)
    # Only a query that is written like a phone number also matches by its digits: the
    # "251" inside judy.allen251@stark.industries must not find every phone with 251.
    if len(digits) >= 3 and digits != needle and PHONE_LIKE.match(q.strip()):
        match |= Q(search_text__contains=digits)
    # Tags are few per agent: resolve matching tag ids first, and only then widen the match.
    tag_ids = list(
        Tag.objects.filter(agent=agent, name__icontains=q).values_list("pk", flat=True)[:50]
    )
    if tag_ids:
        match |= Q(Exists(ContactTag.objects.filter(contact=OuterRef("pk"), tag_id__in=tag_ids)))
    return qs.filter(match)
