"""The SQLite import writer (transfers.imports.sqlite_writer) beside the services it stands in
for: the same files through both leave the same contacts, tags, Stripe accounts, history,
counts, row issues and webhook drafts; IN lists and multi-row statements stay under the
connection's variable limit; a database error hands the batch to the services."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from attributes.services import attribute_create
from contacts.models import AuditEvent, Contact, StripeAccount, Tag
from contacts.services import contact_create, contact_soft_delete, contact_upsert
from tests.transfers.conftest import counts
from transfers.imports import sqlite_writer
from transfers.imports.engine import import_run, make_writer
from transfers.imports.sqlite_bulk import CACHE_KIB, cache_kib, select_in
from transfers.imports.sqlite_writer import SqliteWriter
from transfers.imports.writers import ServiceWriter
from transfers.models import ContactImport
from transfers.services import import_create, import_start
from webhooks.models import WebhookMessage
from webhooks.services import endpoint_create

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite writer"),
]


def run_import(agent, content: str, *, fast: bool, settings) -> ContactImport:
    settings.IMPORT_FAST_PATH = fast
    upload = SimpleUploadedFile("people.csv", content.encode())
    job = import_create(agent=agent, upload=upload, actor_label="import by test")
    import_start(job=job, dry_run=False)
    import_run(job.pk)
    job.refresh_from_db()
    assert job.status == "completed", job.error
    return job


@contextmanager
def variable_limit(limit: int) -> Iterator[sqlite3.Connection]:
    """The test connection with SQLite's variable limit set to `limit` (as a host may)."""
    connection.ensure_connection()
    raw = connection.connection
    before = raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    try:
        yield raw
    finally:
        raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)


@contextmanager
def statements(raw: sqlite3.Connection) -> Iterator[list[str]]:
    """The statements run on `raw`. SQLite also traces each trigger program a statement
    fires (the search index's) as that statement again, with the search table's own."""
    seen: list[str] = []
    raw.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        raw.set_trace_callback(None)


# --- the same as the services ----------------------------------------------------------------


def _schema(agent) -> None:
    attribute_create(agent=agent, key="plan", type="select", options=["Free", "Pro"])
    attribute_create(agent=agent, key="mrr", type="number")


def _existing(agent, api_actor, staff_actor) -> list[Contact]:
    """The contacts the scenario's file finds, made the same way in each agent."""

    def upsert(external_id: str, **data: Any) -> Contact:
        return contact_upsert(
            agent=agent, actor=api_actor, external_id=external_id, data=data
        ).contact

    def create(**data: Any) -> Contact:
        return contact_create(agent=agent, actor=api_actor, data=data).contact

    made = [
        upsert(
            "e0",
            name="Ada",
            email="ada@example.com",
            attributes={"plan": "Free"},
            tags=["VIP"],
            stripe_accounts=[{"stripe_id": "cus_A0", "label": "Main"}],
        ),
        upsert("e1", name="Bob"),
        upsert("e2", name="Cy"),
        upsert("e3", name="Di"),
        create(name="Solo", email="solo@example.com"),
        create(name="Twin A", email="twice@example.com"),
        create(name="Twin B", email="twice@example.com"),
        create(name="Phone", phone="+14155550100"),
        create(name="No Ext"),
        upsert("e9", name="Nine"),
        create(name="Ten"),
        upsert("e11", attributes={"mrr": 5}, tags=["beta"]),
        upsert("e12", tags=["beta"], stripe_accounts=[{"stripe_id": "cus_B12"}]),
    ]
    # Self-reported (as the widget leaves a contact): the upsert by external id verifies it.
    Contact.objects.filter(pk=made[1].pk).update(
        identity="self_reported", identity_source="widget", verified_at=None
    )
    contact_soft_delete(contact=made[2], actor=staff_actor)
    contact_soft_delete(contact=made[3], actor=staff_actor)
    return made


HEADER = "id,external_id,name,email,phone,plan,mrr,tags,stripe_id,stripe_label\n"
ROWS = [
    ',e0,Ada Lovelace,,,,,"vip, new",cus_A0,',  # VIP kept as it is spelled, "new" added
    ",e1,Bob,,,,,,,",  # only its identity rises
    ",e2,Cy,,,,,,,",  # only restored
    ",e3,Dora,,,,,,,",  # restored and renamed
    ",,Solo,SOLO@example.com,,Pro,,,,",  # the one contact with this email (any case)
    ",,Third,twice@example.com,,,,,,",  # two contacts have it: a new one
    ",,Phoned,,+1 415 555 0100,,,,,",  # by phone
    "{8},e8,Now Known,,,,,,,",  # by Rapport id, gains an external id
    "{9},other,Changed,,,,,,,",  # an external id never changes
    "{10},e0,Taken,,,,,,,",  # another contact has it
    ",e11,,,,,5,beta,,",  # everything stored already
    ",e12,,,,,,Beta,cus_B12,Billing",  # the account gets its label, the tag is there
    ",n1,,new1@example.com,,,,vip,,",  # new, with the agent's VIP tag
    ",,Same Person,new1@example.com,,,,,,",  # the contact the row before made, by email
    "{0},,By Id,,,,,,,",  # e0 again, by its Rapport id
    ",bad,Bad,not-an-email,,,,,,",
    ",n2,,,,Gold,,,,",  # not an option
    ',n3,,,,,,"Fresh, fresh",,',  # one new tag
    ",n4,,,,,,FRESH,,",  # the tag the row before made
    ",n5,Stripe,,,,,,cus_N5,Main",
    ",e2,Cy Again,,,,,,,",  # a later row of the same contact: wins, the earlier is skipped
]


def _file(made: list[Contact]) -> str:
    ids = [str(c.pk) for c in made]
    return HEADER + "".join(row.format(*ids) + "\n" for row in ROWS)


def _normalized(value: Any, keys: dict[str, int]) -> Any:
    """Ids as the contact's position, times as a mark: what may differ between agents."""
    if isinstance(value, dict):
        return {k: _normalized(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalized(v, keys) for v in value]
    if isinstance(value, str):
        if value in keys:
            return f"contact {keys[value]}"
        if value.startswith("import:"):
            return "import"
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return "<time>" if "T" in value else value
    return value


def snapshot(agent, job: ContactImport, since: datetime, after_message: int) -> dict[str, Any]:
    contacts = list(Contact.objects.filter(agent=agent).order_by("id"))
    keys = {str(c.pk): n for n, c in enumerate(contacts)}
    keys |= {c.pk.hex: n for n, c in enumerate(contacts)}
    rows = []
    for c in contacts:
        tags = sorted(t.name for t in c.tags.all())
        stripe = list(
            StripeAccount.objects.filter(contact=c).values_list(
                "label", "stripe_id", "stripe_email"
            )
        )
        rows.append(
            (
                c.external_id, c.fingerprint, c.name, c.email, c.phone, c.company, c.attributes,
                c.identity, c.identity_source, c.verified_at is not None,
                c.verified_at is not None and c.verified_at >= since, c.deleted_at is None,
                c.updated_at >= since, tags, stripe,
            )
        )  # fmt: skip
    events = [
        (keys[str(e.contact_id)], e.action, e.channel, e.actor_label, _normalized(e.changes, keys))
        for e in AuditEvent.objects.filter(agent=agent, created_at__gte=since).order_by("id")
    ]
    messages = [
        (m.event_type, _normalized(m.ordering_key, keys), _normalized(m.draft, keys))
        for m in WebhookMessage.objects.filter(agent=agent, pk__gt=after_message).order_by("pk")
        if m.event_type != "import.completed"
    ]
    issues = [(i.row_number, i.kind, i.problems) for i in job.issues.order_by("row_number")]
    return {
        "counts": counts(job),
        "contacts": rows,
        "events": events,
        "messages": messages,
        "issues": issues,
        "tags": sorted(Tag.objects.filter(agent=agent).values_list("name", flat=True)),
    }


@pytest.mark.parametrize("batch_rows", [10_000, 4])
def test_a_file_leaves_what_the_services_leave(
    agent, other_agent, api_actor, staff_actor, settings, batch_rows
):
    settings.IMPORT_BATCH_ROWS = batch_rows
    results = {}
    for fast, target in ((False, agent), (True, other_agent)):
        _schema(target)
        endpoint_create(agent=target, url="https://hooks.example.com/rapport", events=["*"])
        made = _existing(target, api_actor, staff_actor)
        since = timezone.now()
        last = WebhookMessage.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        job = run_import(target, _file(made), fast=fast, settings=settings)
        results[fast] = snapshot(target, job, since, last)

    services, fast = results[False], results[True]
    for part in services:
        assert fast[part] == services[part], part
    # What the rows above say they do, through both writers.
    assert services["counts"] == {
        "created": 5,
        "updated": 10,
        "unchanged": 1,
        "failed": 4,
        "skipped": 1,
    }
    assert [i[:2] for i in services["issues"]] == [
        (4, "skipped"),
        (10, "error"),
        (11, "error"),
        (17, "error"),
        (18, "error"),
    ]
    assert "contact.identified" in [m[0] for m in services["messages"]]
    assert {"Fresh", "new", "VIP"} <= set(services["tags"])


def test_a_deleted_contact_with_all_its_values_is_restored_and_only_restored(
    agent, api_actor, staff_actor, settings
):
    gone = contact_upsert(agent=agent, actor=api_actor, external_id="u1", data={"name": "Ada"})
    contact_soft_delete(contact=gone.contact, actor=staff_actor)
    kept = contact_create(agent=agent, actor=api_actor, data={"name": "Kept"}).contact
    contact_soft_delete(contact=kept, actor=staff_actor)

    job = run_import(
        agent, f"id,external_id,name\n,u1,Ada\n{kept.pk},,Kept\n", fast=True, settings=settings
    )

    assert counts(job)["updated"] == 2
    for contact in (gone.contact, kept):
        contact.refresh_from_db()
        assert contact.deleted_at is None
        event = AuditEvent.objects.filter(contact_id=contact.pk, channel="import").get()
        assert event.action == "restored"
        assert set(event.changes) == {"deleted_at"}
        assert event.changes["deleted_at"][1] is None


def test_a_deleted_self_reported_contact_found_by_external_id_is_restored_and_verified(
    agent, api_actor, staff_actor, settings
):
    gone = contact_upsert(agent=agent, actor=api_actor, external_id="u1", data={"name": "Ada"})
    Contact.objects.filter(pk=gone.contact.pk).update(
        identity="self_reported", identity_source="widget", verified_at=None, fingerprint="f" * 64
    )
    contact_soft_delete(contact=gone.contact, actor=staff_actor)

    job = run_import(agent, "external_id,name\nu1,Ada\n", fast=True, settings=settings)

    assert counts(job)["updated"] == 1
    ada = Contact.objects.get(pk=gone.contact.pk)
    assert ada.deleted_at is None
    assert (ada.identity, ada.identity_source, ada.fingerprint) == ("verified", "import", None)
    assert ada.verified_at is not None
    event = AuditEvent.objects.filter(contact_id=ada.pk, channel="import").get()
    assert event.action == "updated"
    assert event.changes["identity"] == ["self_reported", "verified"]
    assert event.changes["deleted_at"][1] is None


def test_importing_the_same_file_again_writes_no_history_and_no_contact_event(
    agent, api_actor, settings
):
    attribute_create(agent=agent, key="plan", type="select", options=["Free", "Pro"])
    endpoint_create(agent=agent, url="https://hooks.example.com/rapport", events=["*"])
    content = (
        "external_id,name,email,phone,plan,tags,stripe_id,stripe_label\n"
        'u1,Ada,ada@example.com,+14155550100,Pro,"vip, beta",cus_A1,Main\n'
        "u2,Grace,grace@example.com,,Free,vip,,\n"
        ",Solo,solo@example.com,,,,,\n"
    )
    first = run_import(agent, content, fast=True, settings=settings)
    assert counts(first)["created"] == 3
    touched = {c.pk: c.updated_at for c in Contact.objects.filter(agent=agent)}
    history = AuditEvent.objects.count()
    last = WebhookMessage.objects.order_by("-pk").values_list("pk", flat=True).first()

    again = run_import(agent, content, fast=True, settings=settings)

    assert counts(again) == {"created": 0, "updated": 0, "unchanged": 3, "failed": 0, "skipped": 0}
    assert AuditEvent.objects.count() == history
    assert {c.pk: c.updated_at for c in Contact.objects.filter(agent=agent)} == touched
    written = WebhookMessage.objects.filter(agent=agent, pk__gt=last)
    assert [m.event_type for m in written] == ["import.completed"]


# --- the variable limit ----------------------------------------------------------------------


@pytest.mark.parametrize("limit", [999, 32766])
def test_in_lists_longer_than_the_variable_limit_are_read_in_chunks(agent, api_actor, limit):
    made = [
        contact_upsert(agent=agent, actor=api_actor, external_id=f"u{n}", data={}).contact
        for n in range(3)
    ]
    wanted = [f"x{n}" for n in range(40_000)] + ["u0", "u2"]

    with variable_limit(limit) as raw, statements(raw) as seen:
        found = select_in(
            raw,
            "id, external_id",
            "FROM contacts_contact WHERE agent_id = ? AND external_id IN ({marks})",
            wanted,
            before=[agent.pk],
        )

    assert sorted(row[1] for row in found) == ["u0", "u2"]
    assert {row[0] for row in found} == {made[0].pk.hex, made[2].pk.hex}
    assert len(seen) == -(-len(wanted) // (limit - 1))


def test_a_batch_bigger_than_the_variable_limit_matches_and_writes_every_row(
    agent, settings, caplog
):
    attribute_create(agent=agent, key="mrr", type="number")
    rows = 1_200  # more contacts than one IN list, or one statement of them, may name
    first = "".join(f"u{n},Person {n},p{n}@example.com,{n},vip\n" for n in range(rows))
    second = "".join(
        f"u{n},Person {n},p{n}@example.com,{n + (n % 2)},{'new' if n % 3 == 0 else 'vip'}\n"
        for n in range(rows)
    )

    with (
        caplog.at_level(logging.WARNING, logger="transfers.imports.sqlite_writer"),
        variable_limit(999) as raw,
        statements(raw) as seen,
    ):
        created = run_import(
            agent, "external_id,name,email,mrr,tags\n" + first, fast=True, settings=settings
        )
        changed = run_import(
            agent, "external_id,name,email,mrr,tags\n" + second, fast=True, settings=settings
        )

    assert counts(created)["created"] == rows
    updated = rows // 2 + rows // 3 - rows // 6  # odd mrr, or a new tag
    assert counts(changed) == {
        "created": 0,
        "updated": updated,
        "unchanged": rows - updated,
        "failed": 0,
        "skipped": 0,
    }
    assert Contact.objects.filter(agent=agent).count() == rows
    assert Contact.objects.get(agent=agent, external_id="u7").attributes == {"mrr": 8}
    assert sorted(Contact.objects.get(agent=agent, external_id="u3").tags.values_list(
        "name", flat=True
    )) == ["new", "vip"]  # fmt: skip
    assert AuditEvent.objects.filter(agent=agent, channel="import").count() == rows + updated
    # Every statement stayed under the limit (SQLite refuses one over it, and the batch would
    # have fallen back to the services): IN lists of 998 ids beside the agent's, inserts of
    # 71 contacts of 14 values each.
    assert "fell back" not in caplog.text
    in_lists = [sql.count("'u") for sql in seen if "external_id IN (" in sql]
    assert max(in_lists) == 998
    inserts = {sql for sql in seen if sql.startswith("INSERT INTO contacts_contact ")}
    assert len(inserts) == -(-rows // 71)


# --- the fallback ----------------------------------------------------------------------------


def test_a_database_error_of_sqlite_itself_redoes_the_batch_with_the_services(
    agent, settings, monkeypatch, caplog
):
    head, template = sqlite_writer.INSERT_AUDIT
    monkeypatch.setattr(
        sqlite_writer, "INSERT_AUDIT", (head.replace("contacts_auditevent", "missing"), template)
    )
    content = "external_id,name,email\nu1,Ada,ada@example.com\nu2,Grace,not-an-email\n"

    with caplog.at_level(logging.WARNING, logger="transfers.imports.sqlite_writer"):
        job = run_import(agent, content, fast=True, settings=settings)

    assert counts(job) == {"created": 1, "updated": 0, "unchanged": 0, "failed": 1, "skipped": 0}
    assert "fell back to row-by-row" in caplog.text
    ada = Contact.objects.get(agent=agent)
    assert ada.external_id == "u1"
    assert list(AuditEvent.objects.filter(contact_id=ada.pk).values_list("action", flat=True)) == [
        "created"
    ]
    assert "not a valid email" in job.issues.get().message


def test_an_import_gives_its_connection_a_page_cache_for_the_contacts_indexes(agent, settings):
    connection.ensure_connection()
    raw = connection.connection
    before = raw.execute("PRAGMA cache_size").fetchone()[0]
    try:
        raw.execute("PRAGMA cache_size = -2000")
        run_import(agent, "email\na@example.com\n", fast=True, settings=settings)
        assert cache_kib(raw) == CACHE_KIB
        raw.execute(f"PRAGMA cache_size = {-2 * CACHE_KIB}")
        run_import(agent, "email\nb@example.com\n", fast=True, settings=settings)
        assert cache_kib(raw) == 2 * CACHE_KIB  # never lowered
    finally:
        raw.execute(f"PRAGMA cache_size = {before}")


def test_the_fast_path_on_sqlite_is_this_writer(agent, settings):
    job = import_create(
        agent=agent, upload=SimpleUploadedFile("p.csv", b"email\na@example.com\n"), actor_label="t"
    )
    made = {}
    for fast in (True, False):
        settings.IMPORT_FAST_PATH = fast
        made[fast] = make_writer(job=job, actor=None, definitions={}, converter=None)
    assert type(made[True]) is SqliteWriter
    assert type(made[False]) is ServiceWriter
