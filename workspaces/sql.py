"""The workspaces app's hand-written SQL: what every widget call reads first (the agent a
call names, its identity secrets), where building the ORM query costs more than running it."""

from __future__ import annotations

from workspaces.models import Agent, IdentitySecret


def _columns(model) -> str:
    """Every column by name, never `*`: a prepared statement (DB_PREPARE_THRESHOLD) must keep
    its result type when a migration adds a column."""
    return ", ".join(f.column for f in model._meta.concrete_fields)


AGENT_BY_PUBLIC_ID = f"SELECT {_columns(Agent)} FROM {Agent._meta.db_table} WHERE public_id = %s"
IDENTITY_SECRETS = (
    f"SELECT {_columns(IdentitySecret)} FROM {IdentitySecret._meta.db_table}"
    " WHERE agent_id = %s"
    " ORDER BY created_at DESC, id DESC"
)
