"""Exports on SQLite: one SELECT writes each contact's whole CSV or JSON line.

Building each row in Python (Django's converters, `csv.writer`, a dict per contact for
orjson) tops out near 15,000 rows/s; SQLite's own string and JSON functions write the same
lines several times faster, and the rows stream from the cursor in constant memory. The
output is the one `transfers.exports.stream` writes in Python and `transfers.exports.copy`
on PostgreSQL: the same columns, the same formula guard, the same timestamps (ISO 8601 in
UTC with `Z`), tags ordered without regard to case, Stripe accounts in creation order as
YAML whose scalars are JSON strings, and CSV quoted only where a cell needs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import connections
from django.db.models import QuerySet

from transfers.exports.copy import FIELDS, MOMENTS
from transfers.sql import CONTACT_TAG, STRIPE, TAG

# A Python function SQLite calls to order tags as Python does (str.casefold; SQLite's own
# lower() folds ASCII only). Registered on every SQLite connection (transfers.apps).
CASEFOLD = "rapport_casefold"


def register_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    """`connection_created` receiver: the functions the export's SQL calls."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            CASEFOLD, 1, lambda text: None if text is None else text.casefold(), deterministic=True
        )


def _neutral(sql: str) -> str:
    """transfers.csv_io.neutralize: a leading apostrophe for what a spreadsheet would run."""
    return (
        f"(CASE WHEN substr(ltrim({sql}, ''''), 1, 1) IN ('=', '+', '-', '@', char(9), char(13))"
        f" THEN '''' || {sql} ELSE {sql} END)"
    )


def _moment(column: str) -> str:
    """core.times.iso of a stored moment (UTC, as Django stores it: 'YYYY-MM-DD HH:MM:SS'
    and '.ffffff' unless the microseconds are 0): a "T" and a "Z". Other shapes (fewer
    digits, zero microseconds written out) take the long way."""
    fraction = f"substr(substr({column}, 21, 6) || '000000', 1, 6)"
    return (
        f"(CASE WHEN length({column}) = 19 OR (length({column}) = 26"
        f" AND substr({column}, 21) <> '000000') THEN replace({column}, ' ', 'T') || 'Z'"
        f" ELSE substr({column}, 1, 10) || 'T' || substr({column}, 12, 8)"
        f" || (CASE WHEN substr({column}, 20, 1) = '.' AND {fraction} <> '000000'"
        f" THEN '.' || {fraction} ELSE '' END) || 'Z' END)"
    )


def _uuid(column: str) -> str:
    # Django keeps a UUID on SQLite as 32 hex digits.
    return (
        f"(substr({column}, 1, 8) || '-' || substr({column}, 9, 4) || '-' || "
        f"substr({column}, 13, 4) || '-' || substr({column}, 17, 4) || '-' || "
        f"substr({column}, 21))"
    )


def _csv_cell(sql: str) -> str:
    """A cell as csv.writer writes it (QUOTE_MINIMAL): quoted when it holds a quote, a comma
    or a line break, nothing for NULL. `sql` is evaluated several times: a column."""
    return (
        f"(CASE WHEN instr({sql}, '\"') OR instr({sql}, ',') OR instr({sql}, char(10))"
        f" OR instr({sql}, char(13)) THEN '\"' || replace({sql}, '\"', '\"\"') || '\"'"
        f" ELSE coalesce({sql}, '') END)"
    )


def _attributes_csv(keys: list[str]) -> str:
    """The attributes' cells of a CSV line, comma-joined, as `stream._cell` and csv.writer
    write them: true or false, a number as stored (a negative one guarded), text guarded and
    quoted where needed. The stored JSON is read once per contact (json_each) and each key's
    cell picked from its entries."""
    negative = "(CASE WHEN j.atom < 0 THEN '''' ELSE '' END)"
    cell = (
        "(CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"
        f" WHEN 'integer' THEN {negative} || j.atom"
        # Other numbers as stored (as PostgreSQL's ->> gives them): SQLite would print the
        # REAL to 15 digits only.
        f" WHEN 'real' THEN {negative} || (q.attributes -> j.fullkey)"
        f" WHEN 'text' THEN {_csv_cell(_neutral('j.atom'))}"
        " WHEN 'null' THEN NULL ELSE j.value END)"
    )
    picks = " || ',' || ".join(
        f"coalesce(max(CASE WHEN j.key = '{key}' THEN {cell} END), '')" for key in keys
    )
    return f"(SELECT {picks} FROM json_each(q.attributes) j)"


def _tags(aggregate: str) -> str:
    return (
        f"(SELECT {aggregate} FROM (SELECT tg.name FROM {CONTACT_TAG} ct"
        f" JOIN {TAG} tg ON tg.id = ct.tag_id WHERE ct.contact_id = q.id"
        f" ORDER BY {CASEFOLD}(tg.name)) tg)"
    )


def _stripe(aggregate: str) -> str:
    return (
        f"(SELECT {aggregate} FROM (SELECT sa.label, sa.stripe_id, sa.stripe_email"
        f" FROM {STRIPE} sa WHERE sa.contact_id = q.id ORDER BY sa.created_at, sa.id) sa)"
    )


_STRIPE_YAML = (
    "group_concat('- label: ' || json_quote(sa.label) || char(10) || '  stripe_id: ' ||"
    " json_quote(sa.stripe_id) || char(10) || '  stripe_email: ' || json_quote(sa.stripe_email),"
    " char(10))"
)
_STRIPE_JSON = (
    "json_group_array(json_object('label', sa.label, 'stripe_id', sa.stripe_id,"
    " 'stripe_email', sa.stripe_email))"
)
# Lines come out as UTF-8 bytes (CAST … AS BLOB), never decoded into Python text.
ROWS_PER_CHUNK = 1000
_TAG_LIST = "group_concat(tg.name, ', ')"
_CORE_TEXT = ("external_id", "name", "email", "phone", "avatar_url", "company")


def _csv_statement(source: str, keys: list[str]) -> str:
    """Each contact's CSV line. The inner SELECT works each cell out once, formula guard
    included; the outer one quotes and joins them, looking at a cell several times. LIMIT on
    both keeps SQLite from folding the inner query into the outer one, which would work a
    cell out again at each look."""
    cells = [  # (expression, may need quotes)
        (_uuid("q.id"), False),
        *((_neutral(f"q.{c}"), True) for c in _CORE_TEXT),
        ("q.identity", False),
        *((_moment(f"q.{c}"), False) for c in MOMENTS),
        # The guard inside the subquery reads the aggregate once, however often it names it.
        (_tags(_neutral(_TAG_LIST)), True),
        *([(_attributes_csv(keys), False)] if keys else []),
        (_stripe(_STRIPE_YAML), True),
    ]
    inner = ", ".join(f"{sql} AS c{n}" for n, (sql, _) in enumerate(cells))
    line = " || ',' || ".join(
        _csv_cell(f"c.c{n}") if quoted else f"coalesce(c.c{n}, '')"
        for n, (_, quoted) in enumerate(cells)
    )
    return (
        f"SELECT CAST({line} AS BLOB) FROM (SELECT {inner} FROM ({source}) q LIMIT -1) c LIMIT -1"
    )


def _json_statement(source: str, hidden: list[str]) -> tuple[str, list[str]]:
    """Each contact's JSON (the API's contact JSON), keys in the Python writer's order."""
    attributes = "json(q.attributes)"
    if hidden:  # values of archived attributes are left out
        attributes = f"json_remove(q.attributes, {', '.join(['%s'] * len(hidden))})"
    pairs = [
        ("id", _uuid("q.id")),
        *((c, f"q.{c}") for c in _CORE_TEXT),
        ("identity", "q.identity"),
        ("verified_at", _moment("q.verified_at")),
        ("attributes", attributes),
        # json(): a subquery's value reaches json_object as text, not as JSON.
        ("tags", f"json({_tags('json_group_array(tg.name)')})"),
        ("stripe_accounts", f"json({_stripe(_STRIPE_JSON)})"),
        *((c, _moment(f"q.{c}")) for c in MOMENTS if c != "verified_at"),
    ]
    body = ", ".join(f"'{key}', {value}" for key, value in pairs)
    sql = f"SELECT CAST(json_object({body}) AS BLOB) FROM ({source}) q"
    return sql, [f'$."{k}"' for k in hidden]


def statement(qs: QuerySet, *, kind: str, keys: list[str], hidden: list[str]) -> tuple[str, list]:
    """The SELECT of `qs`'s lines ("csv" or "json") in id order, and its parameters."""
    source, source_params = qs.order_by("id").values_list(*FIELDS).query.sql_with_params()
    if kind == "csv":
        return _csv_statement(source, keys), list(source_params)
    sql, params = _json_statement(source, hidden)
    # The SELECT list's parameters come before the source's in the text.
    return sql, [*params, *source_params]


def sqlite_export(
    qs: QuerySet, *, kind: str, keys: list[str], hidden: list[str]
) -> Iterator[bytes]:
    """The contacts of `qs` in id order (creation order: UUIDv7), one line each ("csv" or
    "json"), a chunk per 1,000 contacts."""
    with connections[qs.db].cursor() as cursor:
        cursor.execute(*statement(qs, kind=kind, keys=keys, hidden=hidden))
        while rows := cursor.fetchmany(ROWS_PER_CHUNK):
            yield b"\n".join([line for (line,) in rows]) + b"\n"
