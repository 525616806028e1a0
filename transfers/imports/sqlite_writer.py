"""The SQLite fast path of the import engine: a batch is matched and compared in Python
against contacts read with a few set queries, then written with bulk statements.

Row by row through the services an import costs a dozen queries per row (about 160 rows/s
on SQLite). Here a batch costs a handful of reads (the contacts its rows may name, by
Rapport id, external id, email and phone, with IN lists cut under SQLite's variable limit;
the tags and Stripe accounts of the contacts it touches) and a few multi-row statements
per kind of write: new contacts, changed contacts, tags, tag links, Stripe accounts, audit
events.

It keeps the rules of the services (`ServiceWriter` is the reference; the import tests run
through both) and, more literally than the PostgreSQL `CopyWriter`, their order: the rows
of a batch are applied one after the other to the contacts held in memory, so each row
sees what the rows before it did, as it would row by row. A row

- finds its contact by Rapport id (a soft-deleted one too), else by external id (a
  soft-deleted match is restored and becomes verified, as an API upsert does), else the
  one live contact with its email, else with its phone (several: a new contact rather
  than a guess); otherwise it creates a verified contact;
- overwrites with the values it provides (blank cells were dropped by the mapping),
  merges attributes key by key, adds tags and Stripe accounts (never removes them), and
  sets an external id only where none was;
- whose values are all stored already is "unchanged": no write, no audit event;
- that creates or changes a contact writes one audit event with each field's before and
  after, and announces it (`changes_announce`, collected by the engine's
  `changes_batched`, so webhooks get the same drafts as from the services).

Rows are validated with the same `clean_contact_input` as the services, in the engine's
reading thread. SQLite lets one writer in at a time and the engine's transaction takes
the write lock at BEGIN (IMMEDIATE), so what the batch reads stays true until it commits.
Any database error in a batch rolls its savepoint back and the batch is written again row
by row with the services, so one bad row can never fail its neighbours.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from contacts import normalize
from contacts.cleaning import CleanInput, clean_contact_input
from contacts.ids import uuid7
from contacts.models import IDENTITY_RANK, AuditEvent, Contact, ContactTag, Identity, StripeAccount
from contacts.models import Tag as TagModel
from contacts.services import creation_changes
from contacts.signals import ChangeEntry, changes_announce, changes_batched
from core.errors import ConflictError, DomainError, ValidationFailed
from core.times import iso
from transfers.imports.sqlite_bulk import (
    CACHE_KIB,
    cache_kib,
    gc_paused,
    insert_rows,
    select_in,
    sql_lower,
    update_rows,
)
from transfers.imports.writers import Outcome, PreparedRow, ServiceWriter, problems_from_error

logger = logging.getLogger(__name__)

CONTACT = Contact._meta.db_table
TAG = TagModel._meta.db_table
CONTACT_TAG = ContactTag._meta.db_table
STRIPE = StripeAccount._meta.db_table
AUDIT = AuditEvent._meta.db_table

CORE = ("name", "email", "phone", "avatar_url", "company")
# What a row may compare and change, as read from the table.
READ_COLUMNS = (
    "id", "external_id", "fingerprint", *CORE, "attributes", "identity", "identity_source",
    "verified_at", "deleted_at",
)  # fmt: skip
INSERT_CONTACT = (
    f"INSERT INTO {CONTACT} (id, agent_id, external_id, fingerprint, name, email, phone, "
    "avatar_url, company, attributes, identity, identity_source, verified_at, first_seen_at, "
    "last_seen_at, conversation_count, created_at, updated_at, deleted_at)",
    "(?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, 0, ?, ?, NULL)",
)
INSERT_TAG = (f"INSERT OR IGNORE INTO {TAG} (agent_id, name, created_at)", "(?, ?, ?)")
INSERT_LINK = (
    f"INSERT OR IGNORE INTO {CONTACT_TAG} (contact_id, tag_id, created_at)",
    "(?, ?, ?)",
)
INSERT_STRIPE = (
    f"INSERT INTO {STRIPE} (contact_id, label, stripe_id, stripe_email, created_at)",
    "(?, ?, ?, ?, ?)",
)
INSERT_AUDIT = (
    f"INSERT INTO {AUDIT} (agent_id, contact_id, action, channel, actor_label, actor_user_id, "
    "changes, created_at)",
    "(?, ?, ?, ?, ?, ?, ?, ?)",
)

VERIFIED = Identity.VERIFIED.value
CREATED, UPDATED = AuditEvent.Action.CREATED.value, AuditEvent.Action.UPDATED.value
RESTORED = AuditEvent.Action.RESTORED.value
_CHANGE_EXTERNAL_ID = "The external id of a contact cannot change; merge contacts instead."


def _same(a: Any, b: Any) -> bool:
    # As the services compare attribute values: True == 1, but it is still a change.
    return a == b and type(a) is type(b)


class _Contact:
    """A contact as the batch sees it: read from the table, or created by one of its rows."""

    __slots__ = (
        "_attributes", "avatar_url", "company", "deleted_at", "dirty", "email", "external_id",
        "fingerprint", "hex", "id", "identity", "identity_source", "name", "new", "phone",
        "stripe", "tags", "verified_at",
    )  # fmt: skip

    def __init__(self, contact_id: uuid.UUID, values: Sequence[Any], *, new: bool) -> None:
        """`values`: READ_COLUMNS after the id (attributes as JSON text or a dict)."""
        self.id = contact_id
        self.hex = contact_id.hex  # the id as SQLite stores it
        (
            self.external_id, self.fingerprint, self.name, self.email, self.phone,
            self.avatar_url, self.company, self._attributes, self.identity,
            self.identity_source, self.verified_at, self.deleted_at,
        ) = values  # fmt: skip
        self.new = new
        self.dirty: set[str] = set()
        # Read when a row of the batch adds to them; a new contact has none.
        self.tags: list[str] | None = [] if new else None  # sorted as the services list them
        self.stripe: list[_Account] | None = [] if new else None  # in the model's order

    @property
    def attributes(self) -> dict[str, Any]:
        if isinstance(self._attributes, str):  # parsed when a row first compares them
            self._attributes = json.loads(self._attributes)
        return self._attributes

    @attributes.setter
    def attributes(self, value: dict[str, Any]) -> None:
        self._attributes = value


class _Account:
    """A Stripe account of a batch's contact; `pk` is None until it is inserted."""

    __slots__ = ("contact", "label", "pk", "stripe_email", "stripe_id")

    def __init__(self, pk: int | None, contact: _Contact, label: str, stripe_id: str, email: str):
        self.pk, self.contact = pk, contact
        self.label, self.stripe_id, self.stripe_email = label, stripe_id, email

    def as_dict(self) -> dict[str, str]:
        return {"label": self.label, "stripe_id": self.stripe_id, "stripe_email": self.stripe_email}


class _Index:
    """The batch's contacts by id and external id, and the live ones by email and phone,
    kept up to date as each row changes them. A contact is filed under its email or phone
    only when a row of the batch looks contacts up by that value (`emails`, `phones`)."""

    def __init__(self, emails: set[str], phones: set[str]) -> None:
        self.by_id: dict[uuid.UUID, _Contact] = {}  # those read from the table
        self.by_external_id: dict[str, _Contact] = {}
        self.by_email: dict[str, set[_Contact]] = {}
        self.by_phone: dict[str, set[_Contact]] = {}
        self.emails, self.phones = emails, phones

    def add(self, contact: _Contact) -> _Contact:
        """A contact read from the table (once, however many queries found it)."""
        known = self.by_id.get(contact.id)
        if known is not None:
            return known
        self.by_id[contact.id] = contact
        self.after_change(contact)
        return contact

    def _live(self, contact: _Contact, *, add: bool) -> None:
        for index, key, wanted in (
            (self.by_email, sql_lower(contact.email), self.emails),
            (self.by_phone, contact.phone, self.phones),
        ):
            if not key or key not in wanted:
                continue
            if add:
                index.setdefault(key, set()).add(contact)
            elif key in index:
                index[key].discard(contact)

    def before_change(self, contact: _Contact) -> None:
        if contact.deleted_at is None:
            self._live(contact, add=False)

    def after_change(self, contact: _Contact) -> None:
        """File a contact read, made or changed by a row (after `before_change`)."""
        if contact.external_id is not None:
            self.by_external_id[contact.external_id] = contact
        if contact.deleted_at is None:
            self._live(contact, add=True)

    def unique_match(self, clean: CleanInput) -> _Contact | None:
        """The one live contact with the row's email, else phone (as the services find it)."""
        email = clean.core.get("email")
        phone = clean.core.get("phone")
        for found in (
            self.by_email.get(email.lower()) if email else None,
            self.by_phone.get(phone) if phone else None,
        ):
            if not found:
                continue
            if len(found) == 1:
                return next(iter(found))
            return None  # several contacts share it: create rather than guess
        return None


@dataclass(slots=True)
class _Staged:
    """A row as the reading thread leaves it: its clean input for the path it will take,
    or the error that path reports."""

    match_id: uuid.UUID | None
    external_id: str | None  # the row's external id as normalized (None: none or invalid)
    upsert: bool  # no Rapport id: the external id finds or creates the contact
    clean: CleanInput | None
    error: DomainError | None


@dataclass(slots=True)
class _Step:
    """What one row did to its contact (filled in two passes)."""

    pos: int
    contact: _Contact
    clean: CleanInput
    created: bool
    changes: dict[str, Any]


class _Fallback(DatabaseError):
    """A batch this writer will not write itself: the services write it row by row."""


class SqliteWriter(ServiceWriter):
    """Writes a batch with set reads and bulk statements on SQLite; falls back to the
    services (the parent class, row by row) for a batch that meets any database error."""

    # -- cleaning (Python, the reading thread) -------------------------------------------------

    def _clean(self, data: dict[str, Any]) -> CleanInput:
        return clean_contact_input(
            data,
            actor=self.actor,
            definitions=self.definitions,
            phone_region=self.agent.default_phone_region,
        )

    def _upsert_input(self, data: dict[str, Any]) -> tuple[str | None, CleanInput | None, Any]:
        """As `contact_upsert` takes a row: the external id first, then the other values."""
        try:
            key = normalize.normalize_external_id(data["external_id"])
        except normalize.FieldError as exc:
            return None, None, ValidationFailed({"external_id": [str(exc)]})
        if key is None:
            return (
                None,
                None,
                ValidationFailed({"external_id": ["An external id is required to upsert."]}),
            )
        try:
            rest = {k: v for k, v in data.items() if k != "external_id"}
            return key, self._clean(rest), None
        except ValidationFailed as exc:
            return key, None, exc

    def clean(self, rows: list[PreparedRow]) -> list[_Staged]:
        with gc_paused():
            return self._clean_rows(rows)

    def _clean_rows(self, rows: list[PreparedRow]) -> list[_Staged]:
        staged = []
        for prepared in rows:
            row = prepared.row
            data = row.data
            if row.match_id is None and row.external_id is not None:
                key, clean, error = self._upsert_input(data)
                staged.append(_Staged(None, key, True, clean, error))
                continue
            clean = error = None
            try:
                clean = self._clean(data)
            except ValidationFailed as exc:
                error = exc
            key = clean.external_id if clean is not None else None
            if key is None and row.external_id is not None:
                try:
                    key = normalize.normalize_external_id(data["external_id"])
                except normalize.FieldError:
                    key = None
            staged.append(_Staged(row.match_id, key, False, clean, error))
        return staged

    # -- writing ---------------------------------------------------------------------------------

    def write(self, rows: list[PreparedRow], cleaned: Any = None) -> list[Outcome]:
        if not rows:
            return []
        staged = cleaned if cleaned is not None else self.clean(rows)
        try:
            # A savepoint for the rows and for their announcements alike; raw sqlite3 errors
            # become Django's so that the fallback below catches them.
            with (
                gc_paused(),
                transaction.atomic(),
                changes_batched(""),
                connection.wrap_database_errors,
            ):
                return self._write_staged(staged, rows)
        except DatabaseError:
            logger.warning("Import batch fell back to row-by-row writes", exc_info=True)
            return super().write(rows)

    def _write_staged(self, staged: list[_Staged], rows: list[PreparedRow]) -> list[Outcome]:
        connection.ensure_connection()
        raw: sqlite3.Connection = connection.connection
        if cache_kib(raw) < CACHE_KIB:
            raw.execute(f"PRAGMA cache_size = {-CACHE_KIB}")
        now = timezone.now()
        stamp = connection.ops.adapt_datetimefield_value(now)
        index = self._prefetch(raw, staged)
        outcomes: list[Outcome | None] = [None] * len(rows)
        steps: list[_Step] = []
        created: list[_Contact] = []
        for pos, item in enumerate(staged):
            try:
                step = self._apply(pos, item, rows[pos], index, stamp)
            except DomainError as exc:
                outcomes[pos] = Outcome(
                    "error", problems_from_error(exc, self.converter, rows[pos].source.values)
                )
                continue
            steps.append(step)
            if step.created:
                created.append(step.contact)
        links = self._tags(raw, steps, stamp)
        stripe_rows = self._stripe(raw, steps)

        audit_rows, entries = [], []
        agent_id, actor = self.agent.pk, self.actor
        who = (actor.channel.value, actor.label[:255], actor.user_id)
        # As CopyWriter writes them (orjson: a sixth of json.dumps' time); Django's encoder
        # for what orjson cannot say (an integer beyond 64 bits).
        default = DjangoJSONEncoder().default

        def dumps(changes: dict[str, Any]) -> str:
            try:
                return orjson.dumps(changes, default=default).decode()
            except TypeError:
                return json.dumps(changes, cls=DjangoJSONEncoder)

        for step in steps:
            contact, changes = step.contact, step.changes
            if step.created:
                action = CREATED
            elif changes:
                action = RESTORED if set(changes) == {"deleted_at"} else UPDATED
                if not contact.new:
                    contact.dirty.add("updated_at")
            else:
                outcomes[step.pos] = Outcome("unchanged")
                continue
            outcomes[step.pos] = Outcome(CREATED if step.created else UPDATED)
            audit_rows.append((agent_id, contact.hex, action, *who, dumps(changes), stamp))
            entries.append(ChangeEntry(contact.id, action, changes))

        self._write_contacts(raw, created, index, stamp)
        insert_rows(raw, *INSERT_LINK, links)
        self._write_stripe(raw, stripe_rows, stamp)
        insert_rows(raw, *INSERT_AUDIT, audit_rows)
        changes_announce(agent_id=self.agent.pk, entries=entries)
        return [o or Outcome("unchanged") for o in outcomes]

    # -- reading what the batch may touch ----------------------------------------------------

    def _prefetch(self, raw: sqlite3.Connection, staged: list[_Staged]) -> _Index:
        """Every contact a row of the batch may name, read with a few IN queries."""
        columns = ", ".join(READ_COLUMNS)
        where = f"FROM {CONTACT} WHERE agent_id = ? AND "
        agent = (self.agent.pk,)
        ids = [s.match_id.hex for s in staged if s.match_id is not None]
        external_ids = [s.external_id for s in staged if s.external_id is not None]
        # Email and phone only find contacts for rows without an external id.
        others = [s.clean for s in staged if s.clean is not None and s.external_id is None]
        emails = {c.core["email"].lower() for c in others if c.core.get("email")}
        phones = {c.core["phone"] for c in others if c.core.get("phone")}
        index = _Index(emails, phones)
        for condition, values in (
            ("id IN ({marks})", ids),
            ("external_id IN ({marks})", external_ids),
            ("deleted_at IS NULL AND email != '' AND lower(email) IN ({marks})", emails),
            ("deleted_at IS NULL AND phone IN ({marks})", phones),
        ):
            if values:
                for row in select_in(raw, columns, where + condition, values, before=agent):
                    index.add(_Contact(uuid.UUID(row[0]), row[1:], new=False))
        return index

    # -- one row -----------------------------------------------------------------------------

    def _apply(
        self, pos: int, item: _Staged, prepared: PreparedRow, index: _Index, stamp: str
    ) -> _Step:
        """Apply one row to the contacts in memory, as `ServiceWriter._write_one` would."""
        contact = None
        if item.match_id is not None:
            contact = index.by_id.get(item.match_id)
        upsert, key = item.upsert, item.external_id
        clean, error = item.clean, item.error
        if contact is None and item.match_id is not None and prepared.row.external_id:
            # A Rapport id that names no contact, beside an external id: an upsert by it.
            upsert = True
            key, clean, error = self._upsert_input(prepared.row.data)
        if error is not None:
            raise error
        assert clean is not None
        if contact is None and not upsert:
            contact = index.unique_match(clean)
        if contact is not None:
            return self._update(pos, contact, clean, index, stamp, verify=False)
        if upsert:
            found = index.by_external_id.get(key)
            if found is not None:
                return self._update(pos, found, clean, index, stamp, verify=True)
            return self._create(pos, clean, key, index, stamp)
        return self._create(pos, clean, clean.external_id, index, stamp)

    def _create(
        self, pos: int, clean: CleanInput, external_id: str | None, index: _Index, stamp: str
    ) -> _Step:
        core = clean.core.get
        attributes = {k: v for k, v in clean.attributes.items() if v is not None}
        contact = _Contact(
            uuid7(),
            (
                external_id, None, core("name", ""), core("email", ""), core("phone", ""),
                core("avatar_url", ""), core("company", ""), attributes, VERIFIED,
                self.actor.channel.value, stamp, None,
            ),
            new=True,
        )  # fmt: skip
        index.after_change(contact)
        changes = creation_changes(
            core=clean.core, external_id=external_id, attributes=attributes, identity=VERIFIED
        )
        return _Step(pos, contact, clean, created=True, changes=changes)

    def _update(
        self,
        pos: int,
        contact: _Contact,
        clean: CleanInput,
        index: _Index,
        stamp: str,
        *,
        verify: bool,
    ) -> _Step:
        """`_update_locked` of the services: the row's values over the contact's."""
        changes: dict[str, Any] = {}
        new_external_id = None
        if clean.has_external_id and clean.external_id != contact.external_id:
            if contact.external_id is not None:
                raise ValidationFailed({"external_id": [_CHANGE_EXTERNAL_ID]})
            holder = index.by_external_id.get(clean.external_id)
            if holder is not None and holder is not contact:
                raise ConflictError(
                    "Another contact of this agent already has this external id.",
                    fields={"external_id": ["Already used by another contact."]},
                )
            new_external_id = clean.external_id
            changes["external_id"] = [None, new_external_id]
        index.before_change(contact)
        dirty = contact.dirty
        if new_external_id is not None:
            contact.external_id = new_external_id
            dirty.add("external_id")
        for name, value in clean.core.items():
            before = getattr(contact, name)
            if before != value:
                setattr(contact, name, value)
                changes[name] = [before, value]
                dirty.add(name)
        if clean.attributes:
            attributes = contact.attributes
            merged = None
            for key, value in clean.attributes.items():
                before = attributes.get(key)
                if value is None:
                    if key in attributes:
                        merged = merged if merged is not None else dict(attributes)
                        del merged[key]
                        changes[f"attributes.{key}"] = [before, None]
                elif not _same(before, value):
                    merged = merged if merged is not None else dict(attributes)
                    merged[key] = value
                    changes[f"attributes.{key}"] = [before, value]
            if merged is not None:
                contact.attributes = merged
                dirty.add("attributes")
        if verify and IDENTITY_RANK[Identity.VERIFIED] > IDENTITY_RANK[contact.identity]:
            changes["identity"] = [contact.identity, VERIFIED]
            contact.identity = VERIFIED
            contact.identity_source = self.actor.channel.value
            contact.verified_at = stamp
            contact.fingerprint = None
            dirty.update(("identity", "identity_source", "verified_at", "fingerprint"))
        if contact.deleted_at is not None:
            deleted_at = connection.ops.convert_datetimefield_value(
                contact.deleted_at, None, connection
            )
            changes["deleted_at"] = [iso(deleted_at), None]
            contact.deleted_at = None
            dirty.add("deleted_at")
        index.after_change(contact)
        return _Step(pos, contact, clean, created=False, changes=changes)

    # -- tags and Stripe accounts ------------------------------------------------------------

    def _tags(self, raw: sqlite3.Connection, steps: list[_Step], stamp: str) -> list[tuple]:
        """Each step's tags added (created for the agent when new, as `tags_get_or_create`
        does); returns the links to insert."""
        tagged = [s for s in steps if s.clean.tags]
        if not tagged:
            return []
        wanted = list(dict.fromkeys(name for s in tagged for name in s.clean.tags))
        agent = (self.agent.pk,)
        lookup = f"FROM {TAG} WHERE agent_id = ? AND lower(name) IN ({{marks}})"
        folded = [sql_lower(name) for name in wanted]
        found = select_in(raw, "id, name", lookup, folded, before=agent)
        existing = {name.casefold(): (pk, name) for pk, name in found}
        missing = [n for n in wanted if n.casefold() not in existing]
        if missing:
            # OR IGNORE: two spellings of one new tag in the batch make the first one, as
            # the services would, row after row.
            insert_rows(raw, *INSERT_TAG, [(self.agent.pk, name, stamp) for name in missing])
            folded = [sql_lower(name) for name in missing]
            for pk, name in select_in(raw, "id, name", lookup, folded, before=agent):
                existing[name.casefold()] = (pk, name)
        known = [s.contact for s in tagged if s.contact.tags is None]
        if known:
            names: dict[uuid.UUID, list[str]] = {c.id: [] for c in known}
            sql = (
                f"FROM {CONTACT_TAG} ct JOIN {TAG} t ON t.id = ct.tag_id "
                "WHERE ct.contact_id IN ({marks})"
            )
            hex_ids = [c.hex for c in known]
            for contact_id, name in select_in(raw, "ct.contact_id, t.name", sql, hex_ids):
                names[uuid.UUID(contact_id)].append(name)
            for contact in known:
                contact.tags = sorted(names[contact.id], key=str.casefold)
        links = []
        for step in tagged:
            contact = step.contact
            tags = []
            for name in step.clean.tags:
                tag = existing.get(name.casefold())
                if tag is None:
                    raise _Fallback(f"Tag {name!r} could not be created.")
                tags.append(tag)
            before = contact.tags
            folded_before = {n.casefold() for n in before}
            new = [t for t in tags if t[1].casefold() not in folded_before]
            if not new:
                continue
            after = sorted([*before, *(name for _pk, name in new)], key=str.casefold)
            step.changes["tags"] = [before, after]
            contact.tags = after
            links += [(contact.hex, pk, stamp) for pk, _name in new]
        return links

    def _stripe(self, raw: sqlite3.Connection, steps: list[_Step]) -> list[_Account]:
        """Each step's Stripe accounts added, or updated by stripe_id (a blank label or email
        keeps the saved one, as `apply_stripe_accounts` merges); returns those to write."""
        linked = [s for s in steps if s.clean.stripe_accounts]
        if not linked:
            return []
        known = {s.contact.id: s.contact for s in linked if s.contact.stripe is None}
        if known:
            for contact in known.values():
                contact.stripe = []
            columns = "id, contact_id, label, stripe_id, stripe_email, created_at"
            sql = f"FROM {STRIPE} WHERE contact_id IN ({{marks}})"
            found = select_in(raw, columns, sql, [c.hex for c in known.values()])
            # As the model orders them (created_at, id); the stored text sorts as the time.
            found.sort(key=lambda row: (row[5], row[0]))
            for pk, hex_id, label, stripe_id, email, _created in found:
                contact = known[uuid.UUID(hex_id)]
                contact.stripe.append(_Account(pk, contact, label, stripe_id, email))
        touched: dict[int, _Account] = {}
        for step in linked:
            contact = step.contact
            current = {a.stripe_id: a for a in contact.stripe}
            before = [a.as_dict() for a in contact.stripe]
            for data in step.clean.stripe_accounts:
                account = current.get(data["stripe_id"])
                if account is None:
                    account = _Account(
                        None, contact, data["label"], data["stripe_id"], data["stripe_email"]
                    )
                    contact.stripe.append(account)
                    current[account.stripe_id] = account
                    touched[id(account)] = account
                    continue
                label = data["label"] or account.label
                email = data["stripe_email"] or account.stripe_email
                if (account.label, account.stripe_email) != (label, email):
                    account.label, account.stripe_email = label, email
                    touched[id(account)] = account
            after = [a.as_dict() for a in contact.stripe]
            if after != before:
                step.changes["stripe_accounts"] = [before, after]
        return list(touched.values())

    # -- writing -------------------------------------------------------------------------------

    def _write_contacts(
        self, raw: sqlite3.Connection, created: list[_Contact], index: _Index, stamp: str
    ) -> None:
        agent_id = self.agent.pk
        insert_rows(
            raw,
            *INSERT_CONTACT,
            [
                (
                    c.hex, agent_id, c.external_id, c.name, c.email, c.phone,
                    c.avatar_url, c.company, json.dumps(c.attributes), c.identity,
                    c.identity_source, c.verified_at, stamp, stamp,
                )
                for c in created
            ],
        )  # fmt: skip
        # Changed contacts, grouped by the columns they change: an UPDATE that leaves a
        # column out leaves its indexes alone.
        shapes: dict[tuple[str, ...], list[tuple]] = {}
        for contact in index.by_id.values():
            if contact.new or not contact.dirty:
                continue
            columns = tuple(sorted(contact.dirty))
            values = []
            for column in columns:
                if column == "updated_at":
                    values.append(stamp)
                elif column == "attributes":
                    values.append(json.dumps(contact.attributes))
                else:
                    values.append(getattr(contact, column))
            shapes.setdefault(columns, []).append((contact.hex, *values))
        for columns, rows in shapes.items():
            update_rows(raw, CONTACT, columns, rows)

    def _write_stripe(self, raw: sqlite3.Connection, accounts: list[_Account], stamp: str) -> None:
        inserts = [
            (a.contact.hex, a.label, a.stripe_id, a.stripe_email, stamp)
            for a in accounts
            if a.pk is None
        ]
        updates = [(a.pk, a.label, a.stripe_email) for a in accounts if a.pk is not None]
        insert_rows(raw, *INSERT_STRIPE, inserts)
        update_rows(raw, STRIPE, ("label", "stripe_email"), updates)
