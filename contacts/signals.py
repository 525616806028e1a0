"""What contacts tell the apps built on them, inside the transaction of the change.

Contacts never import identity, helpdesk or transfers. Those apps own what hangs off a
contact (visitor sessions, conversations, import rows and files) and connect receivers
here in their `AppConfig.ready`, so a merge or an erasure does their part in the same
transaction, and a receiver's failure rolls the whole change back.

- `contact_merging(primary, secondary, actor)`: `secondary` is about to be folded into
  `primary` (whose fields already hold the merged values and identity). Move what belongs
  to `secondary`; return a dict of audit changes (e.g. {"conversations_moved": [None, 2]})
  or None. A receiver may set denormalized fields on `primary` (it is saved afterwards).
- `contact_erasing(contact, redactor)`: the person is being erased. Redact or delete every
  copy of their identifiers you store (`redactor` recognises them, see
  core.redaction); return a dict of counts for the erasure's record, or None.
- `contact_forgetting(contact)`: after every `contact_erasing` receiver ran, just before the
  contact row goes: delete what only links to it (visitor sessions).
- `contact_data_requested(contact)`: an access request (GDPR art. 15); return a dict of
  sections to add to the contact's data export.
- `contacts_changed(agent_id, entries, source)`: contacts were created or changed (one
  `ChangeEntry` per audit entry written, in the same transaction). `source` names the bulk
  operation that wrote them ("import:<id>", "bulk"), "" for a single write. Sent by
  `changes_announce`; inside `changes_batched(source)` the entries are collected and sent
  once when the block ends (an import batch is one announcement, not one per row).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.dispatch import Signal

contact_merging = Signal()
contact_erasing = Signal()
contact_forgetting = Signal()
contact_data_requested = Signal()
contacts_changed = Signal()


@dataclass(frozen=True)
class ChangeEntry:
    """One audited change: the contact's id, the audit action and its {field: [before, after]}.
    `contact` is the saved instance when the writer had it at hand (saves a read)."""

    contact_id: Any
    action: str
    changes: dict[str, Any] = field(default_factory=dict)
    contact: Any = None


@dataclass
class _Batch:
    source: str
    entries: dict[int, list[ChangeEntry]] = field(default_factory=dict)


_batch: ContextVar[_Batch | None] = ContextVar("contacts_changed_batch", default=None)


def changes_announce(*, agent_id: int, entries: Sequence[ChangeEntry], source: str = "") -> None:
    if not entries:
        return
    batch = _batch.get()
    if batch is not None:
        batch.entries.setdefault(agent_id, []).extend(entries)
        return
    contacts_changed.send(sender=ChangeEntry, agent_id=agent_id, entries=entries, source=source)


@contextmanager
def changes_batched(source: str) -> Iterator[None]:
    """Collect the announcements made inside the block and send them as one per agent at its
    end. Use it inside the transaction that writes them; nothing is sent if the block raises.

    Nested inside another, it acts like a savepoint: its entries join the outer block's
    when it ends normally and are dropped when it raises (a row of an import that failed
    after writing part of itself announces nothing)."""
    outer = _batch.get()
    batch = _Batch(outer.source if outer is not None else source)
    token = _batch.set(batch)
    try:
        yield
    finally:
        _batch.reset(token)
    if outer is not None:
        for agent_id, entries in batch.entries.items():
            outer.entries.setdefault(agent_id, []).extend(entries)
        return
    for agent_id, entries in batch.entries.items():
        contacts_changed.send(
            sender=ChangeEntry, agent_id=agent_id, entries=entries, source=batch.source
        )


def collected(responses: list[tuple[Any, Any]]) -> dict[str, Any]:
    """The receivers' dict answers, merged in the order they were connected."""
    out: dict[str, Any] = {}
    for _receiver, answer in responses:
        if answer:
            out.update(answer)
    return out
