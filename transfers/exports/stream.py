"""Streaming exports of contacts as CSV, JSON or JSON Lines, in constant memory.

The Python writers here define the files; the database writes them (PostgreSQL's COPY in
`transfers.exports.copy`, SQLite's own functions in `transfers.exports.sqlite`), and the
tests hold each database's output to the Python writers'.
CSV has one column per core field, `tags` (comma-separated), one column per live attribute
and `stripe_accounts` as YAML text; a cell that a spreadsheet would run as a
formula is neutralized with a leading apostrophe (the importer takes it off again).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from django.db import connection
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from attributes.models import AttributeDefinition
from contacts.models import StripeAccount
from contacts.serialization import tag_names_by_contact
from core.times import iso
from transfers.csv_io import csv_stream, neutralize
from transfers.exports.copy import pg_export
from transfers.exports.sqlite import sqlite_export

EXPORT_FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "json": ("application/json", "json"),
    "jsonl": ("application/x-ndjson", "jsonl"),
}
FIELDS = (
    "id", "external_id", "name", "email", "phone", "avatar_url", "company", "identity",
    "verified_at", "first_seen_at", "last_seen_at", "created_at", "updated_at", "deleted_at",
)  # fmt: skip
CHUNK = 2000


def _cell(value: Any) -> str:
    """An attribute value as CSV text: numbers and booleans as the importer reads them."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return neutralize(value)
    if isinstance(value, float) and value.is_integer():
        return neutralize(str(int(value)))
    return neutralize(str(value))


def _scalar(value: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar: safe for any text.
    return orjson.dumps(value).decode()


def stripe_yaml(accounts: list[dict[str, str]]) -> str:
    """Stripe accounts as a YAML list (what the importer's stripe_accounts column reads)."""
    return "\n".join(
        f"- label: {_scalar(a['label'])}\n  stripe_id: {_scalar(a['stripe_id'])}\n"
        f"  stripe_email: {_scalar(a['stripe_email'])}"
        for a in accounts
    )


def _chunks(qs: QuerySet, fields: tuple[str, ...]) -> Iterator[list[tuple]]:
    # Id order is creation order (UUIDv7), as on PostgreSQL.
    rows = qs.order_by("id").values_list(*fields).iterator(chunk_size=CHUNK)
    chunk: list[tuple] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _related(ids: list[Any]) -> tuple[dict[Any, list[str]], dict[Any, list[dict[str, str]]]]:
    tags = tag_names_by_contact(ids)
    accounts: dict[Any, list[dict[str, str]]] = {}
    for contact_id, label, stripe_id, email in (
        StripeAccount.objects.filter(contact_id__in=ids)
        .order_by("created_at", "id")
        .values_list("contact_id", "label", "stripe_id", "stripe_email")
    ):
        accounts.setdefault(contact_id, []).append(
            {"label": label, "stripe_id": stripe_id, "stripe_email": email}
        )
    return tags, accounts


def export_records(qs: QuerySet) -> Iterator[tuple[tuple, list[str], list[dict[str, str]]]]:
    """(row of FIELDS + attributes, tags, Stripe accounts) for each contact of `qs`."""
    for chunk in _chunks(qs, (*FIELDS, "attributes")):
        tags, accounts = _related([row[0] for row in chunk])
        for row in chunk:
            yield row, tags.get(row[0], []), accounts.get(row[0], [])


def csv_header(definitions: list[AttributeDefinition]) -> list[str]:
    return [*FIELDS, "tags", *(d.key for d in definitions), "stripe_accounts"]


def export_csv(qs: QuerySet, definitions: list[AttributeDefinition]) -> Iterator[bytes]:
    keys = [d.key for d in definitions]

    def rows() -> Iterator[list[Any]]:
        for row, tags, accounts in export_records(qs):
            (pk, external_id, name, email, phone, avatar, company, identity, *moments, attrs) = row
            attrs = attrs or {}
            yield [
                str(pk),
                neutralize(external_id or ""),
                neutralize(name),
                neutralize(email),
                neutralize(phone),
                neutralize(avatar),
                neutralize(company),
                identity,
                *(iso(m) or "" for m in moments),
                neutralize(", ".join(tags)),
                *(_cell(attrs.get(k)) for k in keys),
                stripe_yaml(accounts),
            ]

    return csv_stream(csv_header(definitions), rows())


def _record_dict(row: tuple, tags: list[str], accounts: list, hidden: set[str]) -> dict[str, Any]:
    """The contact JSON of SPEC 5 (as `contacts.serialization.contact_to_dict` writes it for
    a model instance) from an exported row."""
    (pk, external_id, name, email, phone, avatar, company, identity, verified, first_seen,
     last_seen, created, updated, deleted, attrs) = row  # fmt: skip
    return {
        "id": str(pk),
        "external_id": external_id,
        "name": name,
        "email": email,
        "phone": phone,
        "avatar_url": avatar,
        "company": company,
        "identity": identity,
        "verified_at": iso(verified),
        "attributes": {k: v for k, v in (attrs or {}).items() if k not in hidden},
        "tags": tags,
        "stripe_accounts": accounts,
        "first_seen_at": iso(first_seen),
        "last_seen_at": iso(last_seen),
        "created_at": iso(created),
        "updated_at": iso(updated),
        "deleted_at": iso(deleted),
    }


def export_jsonl(qs: QuerySet, hidden: set[str]) -> Iterator[bytes]:
    parts: list[bytes] = []
    for row, tags, accounts in export_records(qs):
        parts.append(orjson.dumps(_record_dict(row, tags, accounts, hidden)))
        if len(parts) >= 500:
            yield b"\n".join(parts) + b"\n"
            parts = []
    if parts:
        yield b"\n".join(parts) + b"\n"


def export_json(qs: QuerySet, hidden: set[str]) -> Iterator[bytes]:
    yield b"["
    first = True
    parts: list[bytes] = []
    for row, tags, accounts in export_records(qs):
        parts.append(orjson.dumps(_record_dict(row, tags, accounts, hidden)))
        if len(parts) >= 500:
            yield (b"\n" if first else b",\n") + b",\n".join(parts)
            first = False
            parts = []
    if parts:
        yield (b"\n" if first else b",\n") + b",\n".join(parts)
    yield b"\n]\n"


def _framed(lines: Iterator[bytes], file_format: str, header: list[str]) -> Iterator[bytes]:
    """A database writer's lines (CSV rows or JSON objects, each ending in a newline) as the
    file: the CSV header first, JSON Lines as they are, or a JSON array."""
    if file_format == "csv":
        yield from csv_stream(header, ())  # the header, as the Python writer writes it
        yield from lines
        return
    if file_format == "jsonl":
        yield from lines
        return
    yield b"["
    pending = b""
    first = True
    for chunk in lines:
        if pending:
            yield pending
        pending = (b"\n" if first else b"") + chunk.replace(b"\n", b",\n")
        first = False
    if pending:
        yield pending[:-2] + b"\n"
    yield b"]\n" if not first else b"\n]\n"


def export_stream(
    qs: QuerySet, *, file_format: str, definitions: list[AttributeDefinition], agent_id: int
) -> Iterator[bytes]:
    """The export of `qs` in `file_format` (csv, json, jsonl) with these attributes' values;
    the values of the agent's other (archived) attributes are left out. The database writes
    the lines (PostgreSQL's COPY, SQLite's string and JSON functions); the Python writers
    above say what they must be."""
    keys = [d.key for d in definitions]
    shown = set(keys)
    hidden = sorted(
        set(AttributeDefinition.objects.filter(agent_id=agent_id).values_list("key", flat=True))
        - shown
    )
    for key in (*keys, *hidden):  # attribute keys are slugs; checked again as they reach SQL
        if not key.replace("_", "").isalnum() or not key.isascii():
            raise ValueError(f"Unexpected attribute key {key!r}")
    kind = "csv" if file_format == "csv" else "json"
    if qs.query.is_empty():  # a filter that matches nothing for sure (an unknown tag)
        lines: Iterator[bytes] = iter(())
    elif connection.vendor == "postgresql":
        lines = pg_export(qs, kind=kind, keys=keys, hidden=hidden, agent_id=agent_id)
    else:
        lines = sqlite_export(qs, kind=kind, keys=keys, hidden=hidden)
    return _framed(lines, file_format, csv_header(definitions))


def export_filename(agent, file_format: str, now) -> str:
    return f"contacts-{agent.public_id}-{now:%Y%m%d-%H%M}.{EXPORT_FORMATS[file_format][1]}"


def export_response(
    qs: QuerySet, *, agent, file_format: str, definitions: list[AttributeDefinition]
) -> StreamingHttpResponse:
    """The streamed download of `qs` (dashboard and API alike); personal data: never cached."""
    response = StreamingHttpResponse(
        export_stream(qs, file_format=file_format, definitions=definitions, agent_id=agent.pk),
        content_type=EXPORT_FORMATS[file_format][0],
    )
    filename = export_filename(agent, file_format, timezone.now())
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
