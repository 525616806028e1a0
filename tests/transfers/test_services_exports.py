"""Exports: each database's writer (PostgreSQL's COPY in either plan, SQLite's SQL) gives what
the Python writer gives."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection

from attributes.services import attribute_create, attribute_set_archived
from contacts.models import Contact
from contacts.services import contact_create, contact_soft_delete, contact_upsert
from core.actors import Actor
from transfers.exports import stream as exports

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(agent, other_agent):
    actor = Actor.system("test")
    attribute_create(agent=agent, key="plan", type="select", options=["Free", "Pro"])
    attribute_create(agent=agent, key="mrr", type="number")
    attribute_create(agent=agent, key="beta", type="boolean")
    attribute_create(agent=agent, key="note", type="text")
    old = attribute_create(agent=agent, key="old_score", type="number")
    contact_upsert(
        agent=agent,
        actor=actor,
        external_id="u1",
        data={
            "name": '=HYPERLINK("http://evil.test")',
            "email": "ada@example.com",
            "phone": "+14155550123",
            "attributes": {
                "plan": "Pro",
                "mrr": -12.5,
                "beta": True,
                "note": 'two\nlines, "q"',
                "old_score": 7,
            },
            "tags": ["vip", "Beta", "-minus"],
            "stripe_accounts": [
                {"label": 'Main: "EU"', "stripe_id": "cus_A1", "stripe_email": "b@example.com"},
                {"label": "", "stripe_id": "cus_A2", "stripe_email": ""},
            ],
        },
    )
    contact_create(agent=agent, actor=actor, data={"name": "Grace", "attributes": {"beta": False}})
    gone = contact_create(agent=agent, actor=actor, data={"name": "Gone", "company": "'@x"})
    contact_soft_delete(contact=gone.contact, actor=actor)
    contact_create(agent=other_agent, actor=actor, data={"name": "Not ours"})
    attribute_set_archived(definition=old, archived=True)
    return agent


def _python(qs, file_format, definitions) -> bytes:
    if file_format == "csv":
        return b"".join(exports.export_csv(qs, definitions))
    writer = exports.export_json if file_format == "json" else exports.export_jsonl
    return b"".join(writer(qs, {"old_score"}))


def _exported(agent, file_format, *, deleted=None) -> bytes:
    from attributes.selectors import attribute_definitions

    qs = Contact.objects.filter(agent=agent)
    if deleted is not None:
        qs = qs.filter(deleted_at__isnull=not deleted)
    definitions = attribute_definitions(agent=agent)
    return b"".join(
        exports.export_stream(
            qs, file_format=file_format, definitions=definitions, agent_id=agent.pk
        )
    )


def _python_export(agent, file_format) -> bytes:
    from attributes.selectors import attribute_definitions

    qs = Contact.objects.filter(agent=agent)
    return _python(qs, file_format, attribute_definitions(agent=agent))


@pytest.mark.parametrize("file_format", ["csv", "json", "jsonl"])
@pytest.mark.parametrize("merge_from_rows", [0, 10**9])
def test_the_database_writer_matches_the_python_writer_in_both_plans(
    people, file_format, merge_from_rows, monkeypatch
):
    from transfers.exports import copy as exports_pg

    monkeypatch.setattr(exports_pg, "MERGE_FROM_ROWS", merge_from_rows)  # PostgreSQL's plans

    database = _exported(people, file_format)
    python = _python_export(people, file_format)

    _assert_same_export(database, python, file_format)


def _assert_same_export(database: bytes, python: bytes, file_format: str) -> None:
    if file_format == "csv":
        assert list(csv.reader(io.StringIO(database.decode()))) == list(
            csv.reader(io.StringIO(python.decode()))
        )
        assert database == python
    elif file_format == "json":
        assert json.loads(database) == json.loads(python)
    else:
        assert [json.loads(x) for x in database.splitlines()] == [
            json.loads(x) for x in python.splitlines()
        ]


def test_a_csv_export_writes_every_value_as_the_importer_reads_it(people):
    rows = list(csv.DictReader(io.StringIO(_exported(people, "csv", deleted=False).decode())))

    assert [r["name"] for r in rows] == ['\'=HYPERLINK("http://evil.test")', "Grace"]
    ada, grace = rows
    assert ada["phone"] == "'+14155550123"
    assert ada["tags"] == "'-minus, Beta, vip"
    assert (ada["plan"], ada["mrr"], ada["beta"], ada["note"]) == (
        "Pro",
        "'-12.5",
        "true",
        'two\nlines, "q"',
    )
    assert ada["stripe_accounts"] == (
        '- label: "Main: \\"EU\\""\n  stripe_id: "cus_A1"\n  stripe_email: "b@example.com"\n'
        '- label: ""\n  stripe_id: "cus_A2"\n  stripe_email: ""'
    )
    assert grace["beta"] == "false"
    assert grace["tags"] == grace["stripe_accounts"] == grace["email"] == ""
    assert ada["created_at"].endswith("Z")
    assert "Not ours" not in _exported(people, "csv").decode()


def test_archived_attributes_are_left_out_of_every_format(people):
    assert "old_score" not in _exported(people, "csv").decode()
    for line in _exported(people, "jsonl").splitlines():
        assert "old_score" not in json.loads(line)["attributes"]
    assert [c["attributes"].get("plan") for c in json.loads(_exported(people, "json"))] == [
        "Pro",
        None,
        None,
    ]


@pytest.mark.parametrize(
    ("file_format", "expected"), [("json", b"[\n]\n"), ("jsonl", b""), ("csv", b"id,")]
)
def test_a_filter_that_matches_nothing_exports_nothing(people, file_format, expected):
    from attributes.selectors import attribute_definitions
    from contacts.query.filterset import ContactFilterSet

    definitions = attribute_definitions(agent=people)
    qs = ContactFilterSet({"tag": "no such tag"}, agent=people, definitions={}).validated().qs
    body = b"".join(
        exports.export_stream(
            qs, file_format=file_format, definitions=definitions, agent_id=people.pk
        )
    )

    assert body.startswith(expected)
    assert b"Grace" not in body
    if file_format == "csv":
        assert len(body.splitlines()) == 1


def test_an_empty_json_export_is_an_empty_array(agent):
    assert json.loads(_exported(agent, "json")) == []
    assert _exported(agent, "jsonl") == b""
    assert _exported(agent, "csv").decode().splitlines()[0].startswith("id,external_id,name")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("file_format", ["csv", "json", "jsonl"])
def test_a_large_export_made_in_two_halves_at_once_is_the_same_export(
    people, file_format, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("COPY TO STDOUT exports exist on PostgreSQL only")
    from transfers.exports import copy as exports_pg

    serial = _exported(people, file_format)
    monkeypatch.setattr(exports_pg, "PARALLEL_FROM_ROWS", 0)
    spooled = []
    original = exports_pg._SpoolThread.run

    def run(thread):
        original(thread)
        spooled.append(thread.spool.tell())

    monkeypatch.setattr(exports_pg._SpoolThread, "run", run)
    halves = _exported(people, file_format)

    assert len(spooled) == 1
    assert spooled[0] > 0  # the second half came through the thread

    assert halves == serial
    assert serial.count(b"Grace") == 1


def test_a_json_export_holds_exactly_the_api_contact_json(people):
    from django.db.models import Prefetch

    from contacts.models import Tag
    from contacts.serialization import contact_to_dict

    live = {"plan", "mrr", "beta", "note"}
    contacts = Contact.objects.filter(agent=people).prefetch_related(
        Prefetch("tags", queryset=Tag.objects.all())
    )
    expected = {str(c.pk): contact_to_dict(c, visible_keys=live) for c in contacts}

    exported = {c["id"]: c for c in json.loads(_exported(people, "json"))}

    assert exported == expected


@pytest.fixture
def awkward(agent):
    """Values where a hand-written writer goes wrong: quotes, commas, line breaks and a
    carriage return, formula signs behind apostrophes, non-ASCII case pairs among tags,
    control characters in Stripe labels, numbers of every shape, whole-second moments, raw
    stored values (a string in a number attribute, JSON null)."""
    from datetime import UTC, datetime

    actor = Actor.system("test")
    for key, kind in (("n", "number"), ("t", "text"), ("b", "boolean"), ("d", "date")):
        attribute_create(agent=agent, key=key, type=kind)
    shapes = [
        {"n": 0.30000000000000004, "t": "a\rb", "b": False, "d": "2026-02-03"},
        {"n": -7, "t": "''=x", "b": True},
        {"n": 123456789.125, "t": "'plain", "d": None},
        {"n": -0.5, "t": '@mention, "quoted"\nnext'},
        {"n": 10**14, "t": "\tTab"},
        {"t": "émile"},
    ]
    names = ["Zoë, Jr.", '"Quoted" name', "+33 nom", "-", "'", "Ölaf"]
    tags = [["éclair", "Ébène", "apple"], ['a"b', "Zed"], [], ["ß"], ["x"], ["=sum"]]
    for n, (attributes, name, tag_names) in enumerate(zip(shapes, names, tags, strict=True)):
        contact_upsert(
            agent=agent,
            actor=actor,
            external_id=f"=ext{n}" if n % 2 else f"ext{n}",
            data={
                "name": name,
                "company": "Acme\r\nLtd" if n == 0 else "",
                "attributes": attributes,
                "tags": tag_names,
                "stripe_accounts": [
                    {"label": 'ctl\x01\x1f\u2028é"\\', "stripe_id": f"cus_{n}", "stripe_email": ""},
                    {"label": "second", "stripe_id": f"cus_{n}b", "stripe_email": "s@x.test"},
                ]
                if n < 2
                else [],
            },
        )
    whole_second = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    Contact.objects.filter(agent=agent, external_id="ext2").update(
        created_at=whole_second, verified_at=whole_second
    )
    # What a raw writer or an older release may have stored: kept as they are and
    # written as Python writes them.
    Contact.objects.filter(agent=agent, external_id="ext4").update(
        attributes={"n": "12", "t": None, "b": "yes", "d": 20260101}
    )
    return agent


@pytest.mark.parametrize("file_format", ["csv", "json", "jsonl"])
def test_every_writer_writes_awkward_values_alike(awkward, file_format):
    database = _exported(awkward, file_format)
    python = _python_export(awkward, file_format)

    _assert_same_export(database, python, file_format)
    assert database.count(b"cus_0b") == 1


def test_a_csv_export_writes_awkward_cells_as_the_importer_reads_them(awkward):
    rows = {
        r["external_id"]: r for r in csv.DictReader(io.StringIO(_exported(awkward, "csv").decode()))
    }

    assert rows["ext0"]["t"] == "a\rb"
    assert rows["ext0"]["n"] == "0.30000000000000004"
    assert rows["ext0"]["tags"] == "apple, Ébène, éclair"
    assert rows["ext0"]["company"] == "Acme\r\nLtd"
    assert rows["'=ext1"]["t"] == "'''=x"
    assert rows["'=ext1"]["n"] == "'-7"
    assert rows["ext2"]["n"] == "123456789.125"
    assert rows["ext2"]["created_at"] == "2026-01-02T03:04:05Z"
    assert rows["ext4"]["n"] == "12"
    assert rows["ext4"]["t"] == ""
    assert rows["'=ext3"]["n"] == "'-0.5"
    assert rows["'=ext3"]["name"] == "'-"


@pytest.mark.parametrize("file_format", ["csv", "json", "jsonl"])
def test_an_erased_person_is_in_no_export(api, admin_client, agent, file_format):
    """Erased over the API, then exported over HTTP (API and dashboard), live and deleted
    views alike: none of the person's identifiers, tags or Stripe details come out."""
    actor = Actor.system("test")
    attribute_create(agent=agent, key="note", type="text")
    ada = contact_upsert(
        agent=agent,
        actor=actor,
        external_id="crm-ada-77",
        data={
            "name": "Ada Quinlovel",
            "email": "ada.quinlovel@example.com",
            "phone": "+14155550177",
            "company": "Analytical Engines",
            "attributes": {"note": "prefers ada.quinlovel@example.com"},
            "tags": ["quinlovel-vip"],
            "stripe_accounts": [
                {"label": "Quinlovel", "stripe_id": "cus_QUIN77", "stripe_email": "aq@example.com"}
            ],
        },
    ).contact
    contact_create(agent=agent, actor=actor, data={"name": "Grace Hopper"})

    def exported(client, url: str, deleted: str) -> str:
        response = client.get(url, {"format": file_format, "deleted": deleted})
        assert response.status_code == 200
        return b"".join(response.streaming_content).decode().lower()

    api_url, dashboard_url = "/api/v1/contacts/export/", f"/a/{agent.public_id}/contacts/export/"
    assert "quinlovel" in exported(api, api_url, "false")

    response = api.post(f"/api/v1/contacts/{ada.pk}/erase/")
    assert response.status_code in (200, 204), response.content

    for deleted in ("false", "true"):
        for client, url in ((api, api_url), (admin_client, dashboard_url)):
            text = exported(client, url, deleted)
            for secret in ("quinlovel", "crm-ada-77", "4155550177", "analytical", "cus_quin77"):
                assert secret not in text, (url, deleted, secret)
    assert "grace hopper" in exported(api, api_url, "false")
