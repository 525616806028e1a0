"""The workspaces app's hand-written SQL: what every widget call reads first (the agent a
call names, its identity secrets), where building the ORM query costs more than running it."""

from __future__ import annotations

from core.rows import columns
from workspaces.models import Agent, IdentitySecret

AGENT_BY_PUBLIC_ID = f"SELECT {columns(Agent)} FROM {Agent._meta.db_table} WHERE public_id = %s"
IDENTITY_SECRETS = (
    f"SELECT {columns(IdentitySecret)} FROM {IdentitySecret._meta.db_table}"
    " WHERE agent_id = %s"
    " ORDER BY created_at DESC, id DESC"
)
