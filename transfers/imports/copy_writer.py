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
from core.errors import ValidationFailed
from transfers.imports.writers import Outcome, PreparedRow, ServiceWriter, problems_from_error

logger = logging.getLogger(__name__)

STAGE = "rapport_import_stage"
CORE = ("name", "email", "phone", "avatar_url", "company")

CREATE_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE} (
    pos integer PRIMARY KEY,
    given_id uuid,
    external_id text,
    name text, email text, phone text, avatar_url text, company text,
    attributes jsonb,
    tags text[],
    stripe jsonb,
    new_id uuid NOT NULL,
    contact_id uuid,
    matched text
) ON COMMIT DELETE ROWS
"""
COPY_STAGE = (
    f"COPY {STAGE} (pos, given_id, external_id, name, email, phone, avatar_url, company, "
    "attributes, tags, stripe, new_id) FROM STDIN"
)

# Rows whose Rapport id would change the contact's external id (never allowed), or give it
# one another contact already has.
ID_CONFLICTS = f"""
SELECT s.pos, c.external_id
FROM {STAGE} s JOIN contacts_contact c ON c.id = s.contact_id
WHERE s.matched = 'id' AND s.external_id IS NOT NULL
  AND c.external_id IS DISTINCT FROM s.external_id
  AND (c.external_id IS NOT NULL OR EXISTS (
        SELECT 1 FROM contacts_contact o
        WHERE o.agent_id = %(agent)s AND o.external_id = s.external_id))
"""

MATCH_ID = f"""
UPDATE {STAGE} s SET contact_id = c.id, matched = 'id'
FROM contacts_contact c
WHERE s.given_id IS NOT NULL AND c.id = s.given_id AND c.agent_id = %(agent)s
"""
MATCH_EXTERNAL_ID = f"""
UPDATE {STAGE} s SET contact_id = c.id, matched = 'ext'
FROM contacts_contact c
WHERE s.contact_id IS NULL AND s.external_id IS NOT NULL
  AND c.agent_id = %(agent)s AND c.external_id = s.external_id
"""
# Several live contacts with the row's email: the row creates a new one rather than guess
# (the services do the same); no contact with it: the phone is tried next.
MATCH_EMAIL = f"""
UPDATE {STAGE} s
SET contact_id = CASE WHEN m.n = 1 THEN m.id END,
    matched = CASE WHEN m.n = 1 THEN 'email' ELSE 'ambiguous' END
FROM (
    SELECT lower(c.email) AS lemail, count(*) AS n, (array_agg(c.id ORDER BY c.id))[1] AS id
    FROM contacts_contact c
    WHERE c.agent_id = %(agent)s AND c.deleted_at IS NULL
      AND lower(c.email) IN (
        SELECT lower(email) FROM {STAGE}
        WHERE contact_id IS NULL AND matched IS NULL AND external_id IS NULL
          AND email IS NOT NULL)
    GROUP BY 1
) m
WHERE s.contact_id IS NULL AND s.matched IS NULL AND s.external_id IS NULL
  AND lower(s.email) = m.lemail
"""
MATCH_PHONE = f"""
UPDATE {STAGE} s
SET contact_id = CASE WHEN m.n = 1 THEN m.id END,
    matched = CASE WHEN m.n = 1 THEN 'phone' ELSE 'ambiguous' END
FROM (
    SELECT c.phone, count(*) AS n, (array_agg(c.id ORDER BY c.id))[1] AS id
    FROM contacts_contact c
    WHERE c.agent_id = %(agent)s AND c.deleted_at IS NULL
      AND c.phone IN (
        SELECT phone FROM {STAGE}
        WHERE contact_id IS NULL AND matched IS NULL AND external_id IS NULL
          AND phone IS NOT NULL)
    GROUP BY 1
) m
WHERE s.contact_id IS NULL AND s.matched IS NULL AND s.external_id IS NULL
  AND s.phone = m.phone
"""

# New contacts: verified (an import is a trusted channel), keyed by the id made in Python so
# that each inserted row maps back to its file row. A concurrent writer that inserted the
# same external id first makes ON CONFLICT skip the row; it is then matched and updated.
INSERT_NEW = f"""
WITH ins AS (
    INSERT INTO contacts_contact (
        id, agent_id, external_id, fingerprint, name, email, phone, avatar_url, company,
        attributes, identity, identity_source, verified_at, first_seen_at, last_seen_at,
        conversation_count, created_at, updated_at, deleted_at)
    SELECT s.new_id, %(agent)s, s.external_id, NULL, coalesce(s.name, ''),
        coalesce(s.email, ''), coalesce(s.phone, ''), coalesce(s.avatar_url, ''),
        coalesce(s.company, ''), coalesce(s.attributes, '{{}}'::jsonb), 'verified', 'import',
        %(now)s, NULL, NULL, 0, %(now)s, %(now)s, NULL
    FROM {STAGE} s
    WHERE s.contact_id IS NULL AND (s.external_id IS NOT NULL) = %(with_external_id)s
    ORDER BY s.pos
    ON CONFLICT (agent_id, external_id) DO NOTHING
    RETURNING id
)
UPDATE {STAGE} s SET contact_id = ins.id, matched = 'new' FROM ins WHERE s.new_id = ins.id
"""

# One stage row per contact: when two rows of a batch reach the same contact by different
# keys (an id in one, its external id in another), the later row wins.
SAME_CONTACT = f"""
SELECT pos, winner FROM (
    SELECT pos, max(pos) OVER (PARTITION BY contact_id) AS winner
    FROM {STAGE} WHERE contact_id IS NOT NULL
) t WHERE pos <> winner
"""


def _field_change(name: str) -> str:
    return (
        f"'{name}', CASE WHEN o.{name} IS DISTINCT FROM o.n_{name} "
        f"THEN jsonb_build_array(o.{name}, o.n_{name}) END"
    )


# Existing contacts: compute the new values and their changes, write only the rows that
# change. `o` is the contact before the update (the statement's snapshot).
UPDATE_MATCHED = f"""
WITH o AS (
    SELECT c.id, s.pos, c.external_id, c.name, c.email, c.phone, c.avatar_url, c.company,
        c.attributes, c.identity, c.deleted_at,
        CASE WHEN c.external_id IS NULL THEN coalesce(s.external_id, c.external_id)
             ELSE c.external_id END AS n_external_id,
        coalesce(s.name, c.name) AS n_name,
        coalesce(s.email, c.email) AS n_email,
        coalesce(s.phone, c.phone) AS n_phone,
        coalesce(s.avatar_url, c.avatar_url) AS n_avatar_url,
        coalesce(s.company, c.company) AS n_company,
        c.attributes || coalesce(s.attributes, '{{}}'::jsonb) AS n_attributes,
        s.attributes AS s_attributes,
        CASE WHEN s.matched = 'ext' THEN 'verified' ELSE c.identity END AS n_identity,
        CASE WHEN s.matched IN ('ext', 'id') THEN NULL ELSE c.deleted_at END AS n_deleted_at
    FROM contacts_contact c JOIN {STAGE} s ON s.contact_id = c.id
    WHERE s.matched IN ('id', 'ext', 'email', 'phone')
    FOR UPDATE OF c
), changed AS (
    SELECT o.*,
        jsonb_strip_nulls(jsonb_build_object(
            {_field_change("external_id")},
            {", ".join(_field_change(n) for n in CORE)},
            {_field_change("identity")},
            'deleted_at', CASE WHEN o.deleted_at IS DISTINCT FROM o.n_deleted_at
                THEN jsonb_build_array(to_jsonb(o.deleted_at), NULL) END
        )) || coalesce((
            SELECT jsonb_object_agg('attributes.' || e.key,
                                    jsonb_build_array(o.attributes -> e.key, e.value))
            FROM jsonb_each(o.s_attributes) e
            WHERE o.attributes -> e.key IS DISTINCT FROM e.value
        ), '{{}}'::jsonb) AS changes
    FROM o
    WHERE (o.external_id, o.name, o.email, o.phone, o.avatar_url, o.company, o.attributes,
           o.identity, o.deleted_at)
        IS DISTINCT FROM
          (o.n_external_id, o.n_name, o.n_email, o.n_phone, o.n_avatar_url, o.n_company,
           o.n_attributes, o.n_identity, o.n_deleted_at)
), upd AS (
    UPDATE contacts_contact c SET
        external_id = ch.n_external_id, name = ch.n_name, email = ch.n_email,
        phone = ch.n_phone, avatar_url = ch.n_avatar_url, company = ch.n_company,
        attributes = ch.n_attributes, deleted_at = ch.n_deleted_at,
        identity = ch.n_identity,
        identity_source = CASE WHEN ch.n_identity <> ch.identity THEN 'import'
                               ELSE c.identity_source END,
        verified_at = CASE WHEN ch.n_identity <> ch.identity THEN %(now)s ELSE c.verified_at END,
        fingerprint = CASE WHEN ch.n_identity = 'verified' THEN NULL ELSE c.fingerprint END,
        updated_at = %(now)s
    FROM changed ch WHERE c.id = ch.id
    RETURNING c.id
)
SELECT ch.id, ch.pos, ch.changes FROM changed ch
"""

TAGS_CREATE = f"""
INSERT INTO contacts_tag (agent_id, name, created_at)
SELECT DISTINCT ON (lower(t)) %(agent)s, t, %(now)s
FROM {STAGE} s, unnest(s.tags) AS t
WHERE s.contact_id IS NOT NULL
ORDER BY lower(t), t
ON CONFLICT DO NOTHING
"""
# The tags each contact gains.
TAGS_LINK = f"""
WITH wanted AS (
    SELECT DISTINCT s.contact_id, tg.id AS tag_id
    FROM {STAGE} s, unnest(s.tags) AS t, contacts_tag tg
    WHERE s.contact_id IS NOT NULL AND tg.agent_id = %(agent)s AND lower(tg.name) = lower(t)
), ins AS (
    INSERT INTO contacts_contacttag (contact_id, tag_id, created_at)
    SELECT contact_id, tag_id, %(now)s FROM wanted
    ON CONFLICT DO NOTHING
    RETURNING contact_id, tag_id
)
SELECT i.contact_id, array_agg(tg.name)
FROM ins i JOIN contacts_tag tg ON tg.id = i.tag_id
GROUP BY i.contact_id
"""
TAG_NAMES = """
SELECT ct.contact_id, array_agg(tg.name) FROM contacts_contacttag ct
JOIN contacts_tag tg ON tg.id = ct.tag_id WHERE ct.contact_id = ANY(%s) GROUP BY ct.contact_id
"""
STRIPE_ACCOUNTS = """
SELECT contact_id, label, stripe_id, stripe_email FROM contacts_stripeaccount
WHERE contact_id = ANY(%(ids)s) ORDER BY contact_id, created_at, id
"""
# Accounts are added or updated by stripe_id; a blank label or email keeps the saved one.
STRIPE_UPSERT = f"""
INSERT INTO contacts_stripeaccount (contact_id, label, stripe_id, stripe_email, created_at)
SELECT DISTINCT ON (s.contact_id, a ->> 'stripe_id') s.contact_id, coalesce(a ->> 'label', ''),
    a ->> 'stripe_id', coalesce(a ->> 'stripe_email', ''), %(now)s
FROM {STAGE} s, jsonb_array_elements(s.stripe) AS a
WHERE s.contact_id IS NOT NULL AND s.stripe IS NOT NULL
ON CONFLICT (contact_id, stripe_id) DO UPDATE SET
    label = coalesce(nullif(EXCLUDED.label, ''), contacts_stripeaccount.label),
    stripe_email = coalesce(nullif(EXCLUDED.stripe_email, ''), contacts_stripeaccount.stripe_email)
WHERE (contacts_stripeaccount.label, contacts_stripeaccount.stripe_email) IS DISTINCT FROM
    (coalesce(nullif(EXCLUDED.label, ''), contacts_stripeaccount.label),
     coalesce(nullif(EXCLUDED.stripe_email, ''), contacts_stripeaccount.stripe_email))
RETURNING contact_id
"""
COPY_AUDIT = (
    "COPY contacts_auditevent (agent_id, contact_id, action, channel, actor_label, "
    "actor_user_id, changes, created_at) FROM STDIN"
)


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
                with transaction.atomic():
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
            raw.execute(f"SELECT to_regclass('pg_temp.{STAGE}') IS NULL")
            fresh = raw.fetchone()[0]
            if fresh:
                raw.execute(CREATE_STAGE)
            else:
                raw.execute(f"TRUNCATE {STAGE}")
            with raw.copy(COPY_STAGE) as copy:
                copy.write(cleaned.stage_copy)
            if fresh:
                raw.execute(f"ANALYZE {STAGE}")
            # Skip the statements this batch has no rows for (an import keyed by external
            # id, the usual case, needs neither the id nor the email and phone matching).
            has_ids = any(row[1] is not None for row in staged)
            has_external = any(row[2] is not None for row in staged)
            others = [row for row in staged if row[2] is None]
            if has_ids:
                self._match_ids(raw, params, outcomes, rows)
            if has_external:
                raw.execute(MATCH_EXTERNAL_ID, params)
                raw.execute(
                    f"SELECT count(*) FROM {STAGE} "
                    "WHERE contact_id IS NULL AND external_id IS NOT NULL"
                )
                pending = raw.fetchone()[0]
                for _attempt in range(3):
                    if not pending:
                        break
                    raw.execute(INSERT_NEW, {**params, "with_external_id": True})
                    pending -= raw.rowcount
                    if pending:
                        # Rows a concurrent writer inserted first: match them, update them.
                        raw.execute(MATCH_EXTERNAL_ID, params)
                        pending -= raw.rowcount
            if others:
                if any(row[4] for row in others):
                    raw.execute(MATCH_EMAIL, params)
                if any(row[5] for row in others):
                    raw.execute(MATCH_PHONE, params)
                raw.execute(INSERT_NEW, {**params, "with_external_id": False})
            if not (has_ids or others):
                losers = []
            else:
                raw.execute(SAME_CONTACT)
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
                raw.execute(f"DELETE FROM {STAGE} WHERE pos = ANY(%s)", ([p for p, _ in losers],))

            raw.execute(
                f"SELECT contact_id, pos, new_id, matched FROM {STAGE} WHERE contact_id IS NOT NULL"
            )
            created: set[Any] = set()
            for contact_id, pos, _new_id, matched in raw.fetchall():
                pos_of[contact_id] = pos
                if matched == "new":
                    actions[contact_id] = "created"
                    created.add(contact_id)

            raw.execute(UPDATE_MATCHED, params)
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
                    raw.execute(TAG_NAMES, (known,))
                    before = dict(raw.fetchall())
                raw.execute(TAGS_CREATE, params)
                raw.execute(TAGS_LINK, params)
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
                raw.execute(
                    "UPDATE contacts_contact SET updated_at = %s WHERE id = ANY(%s)",
                    (now, touched),
                )
            self._audit(raw, actions, changes, now, cleaned, pos_of)
        for contact_id, action in actions.items():
            pos = pos_of[contact_id]
            outcomes[pos] = Outcome("created" if action == "created" else "updated")

    def _match_ids(self, raw, params, outcomes, rows) -> None:
        """Rows naming a Rapport id: match them; refuse those that would change an external id."""
        raw.execute(MATCH_ID, params)
        raw.execute(ID_CONFLICTS, params)
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
            raw.execute(f"DELETE FROM {STAGE} WHERE pos = ANY(%s)", ([p for p, _ in conflicts],))

    def _stripe(self, raw, params, contact_ids, changes, actions, created) -> None:
        raw.execute(STRIPE_ACCOUNTS, {"ids": contact_ids})
        before: dict[Any, list] = {}
        for contact_id, label, stripe_id, email in raw.fetchall():
            before.setdefault(contact_id, []).append(
                {"label": label, "stripe_id": stripe_id, "stripe_email": email}
            )
        raw.execute(STRIPE_UPSERT, params)
        changed = list({r[0] for r in raw.fetchall()})
        if not changed:
            return
        raw.execute(STRIPE_ACCOUNTS, {"ids": changed})
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
        with raw.copy(COPY_AUDIT) as copy:
            copy.write("".join(lines).encode())
