"""The agent a widget call names, and its identity secrets, kept in memory for a few seconds.

Every widget call (every page view of every visitor) first looks up its agent, and every
signed identify then reads the agent's secrets. Those two statements cost more than the rest
of a returning visitor's identify, so each process keeps them for
`WIDGET_AGENT_CACHE_SECONDS`:

- A change made through this process (agent settings, identify settings, a new or rotated
  secret) forgets the entry at once.
- Another process sees a settings change within those seconds.
- A token signed with a secret newer than the ones kept here (just rotated through another
  process) is checked once more against the database before it is refused
  (`identity.services`).
- Expiry times are kept, not a verdict, so a secret leaving its grace period stops
  verifying at that exact moment.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from workspaces.models import Agent
from workspaces.selectors import agent_by_public_id, identity_secret_rows, secrets_in_force

# A bound on memory: beyond this many agents in one process, start over.
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    agent: Agent
    secrets: tuple[tuple[str, datetime | None], ...]
    until: float


_entries: dict[str, _Entry] = {}


def cached_agent(*, public_id: str) -> Agent | None:
    """The agent with this public id (a copy, so callers may change it freely), or None."""
    entry = _fresh_entry(public_id)
    return None if entry is None else copy.copy(entry.agent)


def cached_identity_secrets(*, agent: Agent, reload: bool = False) -> list[str]:
    """The agent's secrets that verify now, current first; `reload` reads the database."""
    entry = _load(agent.public_id) if reload else _fresh_entry(agent.public_id)
    if entry is None:
        return []
    return secrets_in_force(entry.secrets, at=timezone.now())


def forget(agent: Agent) -> None:
    """Drop what this process keeps about `agent` (call after changing it or its secrets),
    now and once more when the transaction commits, in case a concurrent request of this
    process read the old rows in between."""
    public_id = agent.public_id
    _entries.pop(public_id, None)
    transaction.on_commit(lambda: _entries.pop(public_id, None))


def clear() -> None:
    _entries.clear()


def _fresh_entry(public_id: str) -> _Entry | None:
    entry = _entries.get(public_id)
    if entry is not None and entry.until > time.monotonic():
        return entry
    return _load(public_id)


def _load(public_id: str) -> _Entry | None:
    agent = agent_by_public_id(public_id=public_id)
    if agent is None:
        _entries.pop(public_id, None)
        return None
    entry = _Entry(
        agent=agent,
        secrets=tuple(identity_secret_rows(agent=agent)),
        until=time.monotonic() + settings.WIDGET_AGENT_CACHE_SECONDS,
    )
    if settings.WIDGET_AGENT_CACHE_SECONDS > 0:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[public_id] = entry
    return entry
