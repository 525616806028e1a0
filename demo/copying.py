"""Binary COPY of generated demo rows into the contacts and help-desk tables."""

from __future__ import annotations

from typing import Any

import psycopg
from django.db import connection

from contacts.models import AuditEvent, Contact, ContactTag, StripeAccount
from demo import data as demo_data
from helpdesk.models import Conversation, Message


def tables() -> list[tuple[str, Any, tuple[str, ...]]]:
    """(batch attribute, model, columns) for every table the demo data fills."""

    return [
        ("contacts", Contact, demo_data.CONTACT_COLUMNS),
        ("contact_tags", ContactTag, demo_data.CONTACT_TAG_COLUMNS),
        ("stripe_accounts", StripeAccount, demo_data.STRIPE_COLUMNS),
        ("conversations", Conversation, demo_data.CONVERSATION_COLUMNS),
        ("messages", Message, demo_data.MESSAGE_COLUMNS),
        ("audit_events", AuditEvent, demo_data.AUDIT_COLUMNS),
    ]


def connection_params() -> dict[str, Any]:
    """Django's connection parameters as plain values (picklable for worker processes)."""
    params = connection.get_connection_params()
    return {k: v for k, v in params.items() if isinstance(v, (str, int, float))}


def connect(params: dict | None = None) -> psycopg.Connection:
    return psycopg.connect(**(params or connection_params()), autocommit=True)


def copy_types(model, columns) -> list[str]:
    """PostgreSQL type names of `columns`, as binary COPY needs them."""
    aliases = {"bigint": "int8", "integer": "int4", "smallint": "int2", "boolean": "bool"}
    by_column = {field.column: field for field in model._meta.concrete_fields}
    names = []
    for column in columns:
        field = by_column[column]
        db_type = (field.target_field if field.is_relation else field).db_type(connection)
        db_type = db_type.split("(")[0].strip()
        if db_type == "timestamp with time zone":
            db_type = "timestamptz"
        names.append(aliases.get(db_type, db_type))
    return names


def copy_batches(cursor: psycopg.Cursor, batches) -> dict[str, int]:
    """COPY every batch through `cursor` (the caller owns the transaction)."""
    layout = [
        (name, model, columns, copy_types(model, columns)) for name, model, columns in tables()
    ]
    totals = {name: 0 for name, _, _, _ in layout}
    for batch in batches:
        for name, model, columns, types in layout:
            rows = getattr(batch, name)
            if not rows:
                continue
            table = model._meta.db_table
            sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
            with cursor.copy(sql) as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
            totals[name] += len(rows)
    return totals
