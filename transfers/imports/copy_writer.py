"""The PostgreSQL fast path of the import engine: COPY a batch into a staging table, then
write it with a handful of set-based statements instead of a dozen queries per row.

It keeps the rules of the row-by-row services (`ServiceWriter` is the reference, and the
test suite runs the same import tests through both):

- a row finds its contact by Rapport id, else external id (a soft-deleted match is
  restored and the contact becomes verified, as an API upsert does), else the one live
  contact with its email, else with its phone; otherwise it creates a verified contact;
- provided values overwrite, blank cells change nothing, attributes merge key by key,
  tags and Stripe accounts are added to (never removed); an external id is set only where
  none was, never changed;
- a row whose values are all already stored is "unchanged": no write, no audit event;
- every created or changed contact gets one audit event with each field's before/after.

Index maintenance, not parsing, is the cost of writing rows (see docs/PERFORMANCE.md): the
statements touch each contact row once, and unchanged rows not at all. Any unexpected
database error in a batch rolls the batch's savepoint back and redoes it row by row with
the services, so one bad row can never fail its neighbours.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from contacts.cleaning import clean_contact_input
from contacts.ids import uuid7
from contacts.models import Identity
from contacts.services import creation_changes
from contacts.signals import ChangeEntry, changes_announce, changes_batched
from core.errors import ValidationFailed
from transfers import sql
from transfers.imports.writers import Outcome, PreparedRow, ServiceWriter, problems_from_error

logger = logging.getLogger(__name__)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _escape(text: str) -> str:
    """A value for COPY's text format (backslash, tab, newline and CR are special)."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def _field(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, list):  # text[]: an array literal, then escaped for COPY
        items = ",".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in value)
        return _escape("{" + items + "}")
    return str(value)


def copy_line(row: tuple) -> str:
    return "\t".join(map(_field, row)) + "\n"


@dataclass
class Cleaned:
    """A batch as the reading thread leaves it: outcomes of rows that failed cleaning, the
    staging rows, their COPY text, and the audit line of each row should it create its
    contact (all but the timestamp)."""

    outcomes: list[Outcome | None]
    staged: list[tuple]
    stage_copy: bytes
    created_audit: dict[int, str] = field(default_factory=dict)


class CopyWriter(ServiceWriter):
    """Writes a batch with COPY and set-based SQL; falls back to the services (the parent
    class, row by row) for a batch that meets any database error."""

    # -- cleaning (Python) ------------------------------------------------------------------

    def clean(self, rows: list[PreparedRow]) -> Cleaned:
        """Validate and normalize every row in Python (the reading thread calls this)."""
        outcomes: list[Outcome | None] = [None] * len(rows)
        staged: list[tuple] = []
        lines: list[str] = []
        created_audit: dict[int, str] = {}
        audit_head = f"{self.agent.pk}\t"
        audit_tail = (
            f"\tcreated\t{self.actor.channel.value}\t{_escape(self.actor.label[:255])}\t\\N\t"
        )
        region = self.agent.default_phone_region
        for pos, prepared in enumerate(rows):
            try:
                clean = clean_contact_input(
                    prepared.row.data,
                    actor=self.actor,
                    definitions=self.definitions,
                    phone_region=region,
                )
            except ValidationFailed as exc:
                outcomes[pos] = Outcome(
                    "error", problems_from_error(exc, self.converter, prepared.source.values)
                )
                continue
            core = clean.core
            attributes = {k: v for k, v in clean.attributes.items() if v is not None}
            row = (
                pos,
                prepared.row.match_id,
                clean.external_id,
                core.get("name") or None,
                core.get("email") or None,
                core.get("phone") or None,
                core.get("avatar_url") or None,
                core.get("company") or None,
                _json(attributes) if attributes else None,
                clean.tags or None,
                _json(clean.stripe_accounts) if clean.stripe_accounts else None,
                uuid7(),
            )
            staged.append(row)
            lines.append(copy_line(row))
            changes = creation_changes(
                core=clean.core,
                external_id=clean.external_id,
                attributes=attributes,
                identity=Identity.VERIFIED,
            )
            if clean.tags:
                changes["tags"] = [[], sorted(clean.tags, key=str.casefold)]
            if clean.stripe_accounts:
                changes["stripe_accounts"] = [[], clean.stripe_accounts]
            created_audit[pos] = (
                audit_head + str(row[-1]) + audit_tail + _escape(orjson.dumps(changes).decode())
            )
        return Cleaned(outcomes, staged, "".join(lines).encode(), created_audit)

    # -- writing (SQL) ------------------------------------------------------------------------

    def write(self, rows: list[PreparedRow], cleaned: Any = None) -> list[Outcome]:
        if not rows:
            return []
        cleaned = cleaned if cleaned is not None else self.clean(rows)
        outcomes = list(cleaned.outcomes)
        if cleaned.staged:
            try:
                # A savepoint for the rows and for their announcements alike.
                with transaction.atomic(), changes_batched(""):
                    self._write_staged(cleaned, outcomes, rows)
            except DatabaseError:
                logger.warning("Import batch fell back to row-by-row writes", exc_info=True)
                outcomes = list(cleaned.outcomes)
                todo = [i for i, o in enumerate(cleaned.outcomes) if o is None]
                redone = super().write([rows[i] for i in todo])
                for i, outcome in zip(todo, redone, strict=True):
                    outcomes[i] = outcome
        return [o or Outcome("unchanged") for o in outcomes]

    def _write_staged(
        self, cleaned: Cleaned, outcomes: list[Outcome | None], rows: list[PreparedRow]
    ) -> None:
        staged = cleaned.staged
        now = timezone.now()
        params = {"agent": self.agent.pk, "now": now}
        changes: dict[Any, dict[str, Any]] = {}  # contact id -> audit changes
        actions: dict[Any, str] = {}  # contact id -> created / updated / restored
        pos_of: dict[Any, int] = {}
        staged_at = {row[0]: row for row in staged}
        with connection.cursor() as cursor:
            raw = cursor.cursor
            # A batch's commit need not wait for its WAL to reach the disk: should the server
            # crash, the batch and the job's progress (same transaction) are lost together,
            # and a resumed run writes the batch again.
            raw.execute("SET LOCAL synchronous_commit TO OFF")
            # The staging table lives as long as the connection (a dry run's rollback takes
            # it away); its statistics from the first batch serve the following ones.
            raw.execute(f"SELECT to_regclass('pg_temp.{sql.STAGE}') IS NULL")
            fresh = raw.fetchone()[0]
            if fresh:
                raw.execute(sql.CREATE_STAGE)
            else:
                raw.execute(f"TRUNCATE {sql.STAGE}")
            with raw.copy(sql.COPY_STAGE) as copy:
                copy.write(cleaned.stage_copy)
            if fresh:
                raw.execute(f"ANALYZE {sql.STAGE}")
            # Skip the statements this batch has no rows for (an import keyed by external
            # id, the usual case, needs neither the id nor the email and phone matching).
            has_ids = any(row[1] is not None for row in staged)
            has_external = any(row[2] is not None for row in staged)
            others = [row for row in staged if row[2] is None]
            if has_ids:
                self._match_ids(raw, params, outcomes, rows)
            if has_external:
                raw.execute(sql.MATCH_EXTERNAL_ID, params)
                raw.execute(
                    f"SELECT count(*) FROM {sql.STAGE} "
                    "WHERE contact_id IS NULL AND external_id IS NOT NULL"
                )
                pending = raw.fetchone()[0]
                for _attempt in range(3):
                    if not pending:
                        break
                    raw.execute(sql.INSERT_NEW, {**params, "with_external_id": True})
                    pending -= raw.rowcount
                    if pending:
                        # Rows a concurrent writer inserted first: match them, update them.
                        raw.execute(sql.MATCH_EXTERNAL_ID, params)
                        pending -= raw.rowcount
            if others:
                if any(row[4] for row in others):
                    raw.execute(sql.MATCH_EMAIL, params)
                if any(row[5] for row in others):
                    raw.execute(sql.MATCH_PHONE, params)
                raw.execute(sql.INSERT_NEW, {**params, "with_external_id": False})
            if not (has_ids or others):
                losers = []
            else:
                raw.execute(sql.SAME_CONTACT)
                losers = raw.fetchall()
            for pos, winner in losers:
                message = (
                    f"Skipped: row {rows[winner].source.number:,} of the file has the same "
                    "contact and wins."
                )
                outcomes[pos] = Outcome(
                    "skipped", [{"column": "", "value": "", "message": message}]
                )
            if losers:
                raw.execute(
                    f"DELETE FROM {sql.STAGE} WHERE pos = ANY(%s)", ([p for p, _ in losers],)
                )

            raw.execute(
                f"SELECT contact_id, pos, new_id, matched FROM {sql.STAGE}"
                " WHERE contact_id IS NOT NULL"
            )
            created: set[Any] = set()
            for contact_id, pos, _new_id, matched in raw.fetchall():
                pos_of[contact_id] = pos
                if matched == "new":
                    actions[contact_id] = "created"
                    created.add(contact_id)

            raw.execute(sql.UPDATE_MATCHED, params)
            for contact_id, _pos, change in raw.fetchall():
                # Django's connection hands jsonb over as text (JSONField parses it itself).
                change = orjson.loads(change) if isinstance(change, str) else change
                actions[contact_id] = "restored" if set(change) == {"deleted_at"} else "updated"
                changes[contact_id] = change

            tagged = [c for c, pos in pos_of.items() if staged_at[pos][9]]
            if tagged:
                # New contacts' tag changes are in their audit line already; the others'
                # need the names they had.
                before: dict[Any, list[str]] = {}
                known = [c for c in tagged if c not in created]
                if known:
                    raw.execute(sql.TAG_NAMES, (known,))
                    before = dict(raw.fetchall())
                raw.execute(sql.TAGS_CREATE, params)
                raw.execute(sql.TAGS_LINK, params)
                for contact_id, added in raw.fetchall():
                    if contact_id in created:
                        continue
                    had = before.get(contact_id, [])
                    entry = changes.setdefault(contact_id, {})
                    entry["tags"] = [
                        sorted(had, key=str.casefold),
                        sorted({*had, *added}, key=str.casefold),
                    ]
                    actions.setdefault(contact_id, "updated")

            stripe_ids = [c for c, pos in pos_of.items() if staged_at[pos][10]]
            if stripe_ids:
                self._stripe(raw, params, stripe_ids, changes, actions, created)

            # Contacts whose only change was a new tag or Stripe account.
            touched = [
                cid
                for cid, action in actions.items()
                if action == "updated" and set(changes[cid]) <= {"tags", "stripe_accounts"}
            ]
            if touched:
                raw.execute(sql.TOUCH_UPDATED, (now, touched))
            self._audit(raw, actions, changes, now, cleaned, pos_of)
        for contact_id, action in actions.items():
            pos = pos_of[contact_id]
            outcomes[pos] = Outcome("created" if action == "created" else "updated")

    def _match_ids(self, raw, params, outcomes, rows) -> None:
        """Rows naming a Rapport id: match them; refuse those that would change an external id."""
        raw.execute(sql.MATCH_ID, params)
        raw.execute(sql.ID_CONFLICTS, params)
        conflicts = raw.fetchall()
        for pos, external_id in conflicts:
            column = self.converter.column_for("external_id")
            message = (
                f"This contact's external id is {external_id!r}; external ids never change "
                "(merge the contacts instead)."
                if external_id
                else "Another contact already has this external id."
            )
            outcomes[pos] = Outcome(
                "error",
                [
                    {
                        "column": column or "external_id",
                        "value": str(rows[pos].source.values.get(column, ""))[:200],
                        "message": message,
                    }
                ],
            )
        if conflicts:
            raw.execute(
                f"DELETE FROM {sql.STAGE} WHERE pos = ANY(%s)", ([p for p, _ in conflicts],)
            )

    def _stripe(self, raw, params, contact_ids, changes, actions, created) -> None:
        raw.execute(sql.STRIPE_ACCOUNTS, {"ids": contact_ids})
        before: dict[Any, list] = {}
        for contact_id, label, stripe_id, email in raw.fetchall():
            before.setdefault(contact_id, []).append(
                {"label": label, "stripe_id": stripe_id, "stripe_email": email}
            )
        raw.execute(sql.STRIPE_UPSERT, params)
        changed = list({r[0] for r in raw.fetchall()})
        if not changed:
            return
        raw.execute(sql.STRIPE_ACCOUNTS, {"ids": changed})
        after: dict[Any, list] = {}
        for contact_id, label, stripe_id, email in raw.fetchall():
            after.setdefault(contact_id, []).append(
                {"label": label, "stripe_id": stripe_id, "stripe_email": email}
            )
        for contact_id in changed:
            if contact_id in created:
                continue  # in its audit line already
            entry = changes.setdefault(contact_id, {})
            entry["stripe_accounts"] = [before.get(contact_id, []), after.get(contact_id, [])]
            actions.setdefault(contact_id, "updated")

    def _audit(self, raw, actions, changes, now, cleaned: Cleaned, pos_of) -> None:
        if not actions:
            return
        moment = _escape(now.isoformat())
        label = _escape(self.actor.label[:255])
        lines = []
        for contact_id, action in actions.items():
            if action == "created":
                lines.append(f"{cleaned.created_audit[pos_of[contact_id]]}\t{moment}\n")
                continue
            change = _escape(orjson.dumps(changes.get(contact_id, {})).decode())
            lines.append(
                f"{self.agent.pk}\t{contact_id}\t{action}\t{self.actor.channel.value}\t"
                f"{label}\t\\N\t{change}\t{moment}\n"
            )
        with raw.copy(sql.COPY_AUDIT) as copy:
            copy.write("".join(lines).encode())
        changes_announce(
            agent_id=self.agent.pk,
            entries=[
                ChangeEntry(
                    contact_id, action, {} if action == "created" else changes.get(contact_id, {})
                )
                for contact_id, action in actions.items()
            ],
        )
