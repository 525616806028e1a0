"""The REST API of imports (upload, status, start) and of streamed exports, end to end."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from attributes.models import AttributeDefinition
from attributes.services import attribute_create, attribute_set_archived
from contacts.models import Contact
from contacts.services import contact_soft_delete
from tests.helpers import CONTACT_FIELDS, error
from tests.transfers.conftest import killed_import, upload
from transfers.imports.engine import import_run
from transfers.models import ContactImport
from transfers.services import import_create, import_start
from transfers.tasks import import_task_rows
from workspaces.services import api_key_create

pytestmark = pytest.mark.django_db

URL = "/api/v1/imports/"
EXPORT = "/api/v1/contacts/export/"
CORE_COLUMNS = [
    "id", "external_id", "name", "email", "phone", "avatar_url", "company", "identity",
    "verified_at", "first_seen_at", "last_seen_at", "created_at", "updated_at", "deleted_at",
]  # fmt: skip
JOB_FIELDS = {
    "id", "status", "dry_run", "file", "mapping", "new_attributes", "progress", "counts",
    "error", "errors", "errors_truncated", "created_at", "started_at", "finished_at",
}  # fmt: skip
NO_COUNTS = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0, "skipped": 0}

CSV = """\
User ID,Full Name,E-mail,Plan,MRR
u1,Ada Lovelace,ada@example.com,Pro,99.5
u2,Grace Hopper,grace@example.com,Free,10
u3,Alan Turing,not-an-email,Pro,5
u4,Edsger Dijkstra,edsger@example.com,Free,lots
"""


# --- Clients and helpers ---------------------------------------------------------------------


def client_for(agent) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(agent=agent, name='test').raw}")


@pytest.fixture
def api(agent) -> Client:
    """A client with an API key of `agent` (multipart bodies unless told otherwise)."""
    return client_for(agent)


@pytest.fixture
def other_api(other_agent) -> Client:
    return client_for(other_agent)


def post_file(client: Client, content: str | bytes, name: str = "people.csv", **fields):
    """POST /imports/ as multipart/form-data; mapping and new_attributes go as JSON text."""
    data = {"file": upload(content, name)}
    for field, value in fields.items():
        data[field] = json.dumps(value) if isinstance(value, dict) else value
    return client.post(URL, data)


def start(client: Client, job_id: str, body: dict):
    return client.post(f"{URL}{job_id}/start/", body, content_type="application/json")


def run(client: Client, response) -> dict:
    """Run the job a 202 answer queued, then GET it."""
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    import_run(job_id)
    got = client.get(f"{URL}{job_id}/")
    assert got.status_code == 200
    return got.json()


def export(client: Client, query: str = "format=csv"):
    response = client.get(f"{EXPORT}?{query}")
    assert response.status_code == 200, response.content if not response.streaming else ""
    return response, b"".join(response.streaming_content)


def csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))


def jsonl(body: bytes) -> list[dict]:
    assert body.endswith(b"\n")
    return [json.loads(line) for line in body.decode().splitlines()]


def contact(agent, **lookup) -> Contact:
    return Contact.objects.get(agent=agent, **lookup)


def tags_of(c: Contact) -> list[str]:
    return sorted((t.name for t in c.tags.all()), key=str.casefold)


@pytest.fixture
def people(api, agent):
    """Contacts written through the contacts API, one with a formula-like name."""
    attribute_create(agent=agent, key="plan", type="select", options=["Free", "Pro"])
    attribute_create(agent=agent, key="mrr", type="number")
    attribute_create(agent=agent, key="beta", type="boolean")
    attribute_create(agent=agent, key="signup", type="date")
    bodies = [
        {
            "external_id": "u1",
            "name": '=HYPERLINK("http://x")',
            "email": "ada@example.com",
            "phone": "+14155550123",
            "company": "Analytical Engines",
            "attributes": {"plan": "Pro", "mrr": 42, "beta": True, "signup": "2024-01-02"},
            "tags": ["vip", "beta"],
            "stripe_accounts": [
                {"label": "Main", "stripe_id": "cus_A1", "stripe_email": "billing@example.com"}
            ],
        },
        {
            "external_id": "u2",
            "name": "Grace Hopper",
            "email": "grace@example.com",
            "attributes": {"plan": "Free", "mrr": 10.5, "beta": False},
            "tags": ["beta"],
        },
        {"name": "No External", "email": "plain@example.com", "phone": "+1 415 555 0199"},
    ]
    out = {}
    for body in bodies:
        response = api.post("/api/v1/contacts/", body, content_type="application/json")
        assert response.status_code == 201, response.json()
        out[body["email"]] = contact(agent, pk=response.json()["id"])
    return out


# --- Upload and status -----------------------------------------------------------------------


def test_an_uploaded_csv_is_accepted_as_a_queued_job_with_its_columns_mapped(api, agent, schema):
    response = post_file(api, CSV)

    assert response.status_code == 202
    body = response.json()
    assert set(body) == JOB_FIELDS
    job = ContactImport.objects.get(agent=agent)
    assert body["id"] == str(job.pk)
    assert body["status"] == "queued" == job.status
    assert body["dry_run"] is False
    assert body["file"] == {
        "name": "people.csv",
        "format": "csv",
        "size": len(CSV.encode()),
        "columns": ["User ID", "Full Name", "E-mail", "Plan", "MRR"],
    }
    assert body["mapping"] == {
        "User ID": "external_id",
        "Full Name": "name",
        "E-mail": "email",
        "Plan": "attr:plan",
        "MRR": "attr:mrr",
    }
    assert body["new_attributes"] == {}
    assert body["progress"] == {"total_rows": None, "processed_rows": 0, "percent": 0}
    assert body["counts"] == NO_COUNTS
    assert (body["error"], body["errors"], body["errors_truncated"]) == ("", [], False)
    assert datetime.fromisoformat(body["created_at"]) == job.created_at
    assert (body["started_at"], body["finished_at"]) == (None, None)
    assert not Contact.objects.exists()  # queued, not run


def test_a_finished_job_reports_counts_and_row_errors_and_its_good_rows_exist(
    api, agent, schema, writer
):
    body = run(api, post_file(api, CSV))

    assert body["status"] == "completed", body["error"]
    assert body["counts"] == {**NO_COUNTS, "created": 2, "failed": 2}
    assert body["progress"] == {"total_rows": 4, "processed_rows": 4, "percent": 100}
    assert body["started_at"] is not None
    assert body["finished_at"] is not None
    assert body["errors_truncated"] is False
    assert [(e["row"], e["kind"]) for e in body["errors"]] == [(4, "error"), (5, "error")]
    (email_problem,) = body["errors"][0]["problems"]
    assert set(email_problem) == {"column", "value", "message"}
    assert email_problem == {
        "column": "E-mail",
        "value": "not-an-email",
        "message": "'not-an-email' is not a valid email address.",
    }
    (number_problem,) = body["errors"][1]["problems"]
    assert number_problem == {
        "column": "MRR",
        "value": "lots",
        "message": "not a number (expected number, got 'lots')",
    }
    assert sorted(Contact.objects.filter(agent=agent).values_list("external_id", flat=True)) == [
        "u1",
        "u2",
    ]
    ada = contact(agent, external_id="u1")
    assert (ada.name, ada.email) == ("Ada Lovelace", "ada@example.com")
    assert ada.attributes == {"plan": "Pro", "mrr": 99.5}
    assert contact(agent, external_id="u2").attributes == {"plan": "Free", "mrr": 10}


def test_an_earlier_row_of_the_same_contact_is_reported_as_skipped(api, agent, writer):
    content = "User ID,Name\nu1,First Try\nu2,Other\nu1,Second Try\n"

    body = run(api, post_file(api, content))

    assert body["counts"] == {**NO_COUNTS, "created": 2, "skipped": 1}
    assert body["errors"] == [
        {
            "row": 2,
            "kind": "skipped",
            "problems": [
                {
                    "column": "",
                    "value": "",
                    "message": "Skipped: row 4 of the file has the same contact and wins.",
                }
            ],
        }
    ]
    assert contact(agent, external_id="u1").name == "Second Try"


def test_the_row_errors_shown_are_capped_and_flagged_as_truncated(api, agent, schema, monkeypatch):
    monkeypatch.setattr("transfers.api.MAX_ERRORS_SHOWN", 1)

    body = run(api, post_file(api, CSV))

    assert body["counts"]["failed"] == 2
    assert [e["row"] for e in body["errors"]] == [4]
    assert body["errors_truncated"] is True


def test_the_upload_queues_a_task_that_runs_the_job_once_the_transaction_commits(
    api, agent, schema, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_file(api, CSV)
        assert response.status_code == 202
        assert response.json()["status"] == "queued"
        assert not Contact.objects.exists()

    # One task enqueued (the other callbacks count the rows written, for /metrics).
    assert len([c for c in callbacks if c.__qualname__.startswith("_enqueue")]) == 1
    job = ContactImport.objects.get(agent=agent)
    assert job.status == "completed"
    body = api.get(f"{URL}{job.pk}/").json()
    assert body["status"] == "completed"
    assert body["counts"] == {**NO_COUNTS, "created": 2, "failed": 2}
    assert Contact.objects.filter(agent=agent).count() == 2


# --- Mapping -----------------------------------------------------------------------------------


def test_a_mapping_form_field_overrides_the_automatic_mapping(api, agent, schema, writer):
    content = "Kundennummer;Tarif;Umsatz;Email;Kontakt\nk-1;Pro;12;old@example.com;m@example.com\n"
    response = post_file(
        api,
        content,
        name="kunden.csv",
        mapping={
            "Kundennummer": "external_id",
            "Tarif": "attr:plan",
            "Umsatz": "attr:mrr",
            "Email": "ignore",
            "Kontakt": "email",
        },
    )

    assert response.json()["mapping"] == {
        "Kundennummer": "external_id",
        "Tarif": "attr:plan",
        "Umsatz": "attr:mrr",
        "Email": "ignore",
        "Kontakt": "email",
    }
    body = run(api, response)
    assert body["counts"] == {**NO_COUNTS, "created": 1}
    mueller = contact(agent, external_id="k-1")
    assert mueller.email == "m@example.com"
    assert mueller.attributes == {"plan": "Pro", "mrr": 12}


def test_new_attributes_and_a_new_target_create_an_attribute_of_that_type(api, agent, writer):
    response = post_file(
        api,
        "User ID,Seats\nu1,12\nu2,3.5\n",
        mapping={"Seats": "new:seats"},
        new_attributes={"seats": "number"},
    )

    assert response.json()["mapping"]["Seats"] == "new:seats"
    assert response.json()["new_attributes"] == {"seats": "number"}
    assert not AttributeDefinition.objects.filter(agent=agent).exists()  # not before it runs
    body = run(api, response)
    assert body["counts"] == {**NO_COUNTS, "created": 2}
    seats = AttributeDefinition.objects.get(agent=agent, key="seats")
    assert seats.type == "number"
    assert contact(agent, external_id="u1").attributes == {"seats": 12}
    assert contact(agent, external_id="u2").attributes == {"seats": 3.5}


def test_unknown_columns_create_makes_an_attribute_of_each_column_that_matches_nothing(
    api, agent, writer
):
    content = "Email,Favourite Colour,Visits\na@example.com,teal,3\nb@example.com,red,7\n"
    ignored = post_file(api, content).json()
    assert ignored["mapping"] == {
        "Email": "email",
        "Favourite Colour": "ignore",
        "Visits": "ignore",
    }

    response = post_file(api, content, unknown_columns="create")
    assert response.json()["mapping"] == {
        "Email": "email",
        "Favourite Colour": "new:favourite_colour",
        "Visits": "new:visits",
    }
    body = run(api, response)
    assert body["counts"] == {**NO_COUNTS, "created": 2}
    types = dict(AttributeDefinition.objects.filter(agent=agent).values_list("key", "type"))
    assert types == {"favourite_colour": "text", "visits": "number"}
    assert contact(agent, email="a@example.com").attributes == {
        "favourite_colour": "teal",
        "visits": 3,
    }


# --- Dry runs and starting again ---------------------------------------------------------------


@pytest.mark.parametrize(("sent", "dry_run"), [("true", True), ("false", False)])
def test_an_upload_with_dry_run_as_a_form_field_is_accepted(api, agent, schema, sent, dry_run):
    response = post_file(api, CSV, dry_run=sent)

    assert response.status_code == 202, response.json()
    assert response.json()["dry_run"] is dry_run
    body = run(api, response)
    assert (body["status"], body["dry_run"]) == ("completed", dry_run)
    assert body["counts"] == {**NO_COUNTS, "created": 2, "failed": 2}
    assert Contact.objects.filter(agent=agent).count() == (0 if dry_run else 2)


def test_a_dry_run_writes_nothing_and_start_then_imports_for_real_once(api, agent, schema, writer):
    # The dry run is queued as the dashboard queues it (the API's own dry_run=true: see above).
    job = import_create(agent=agent, upload=upload(CSV), actor_label="dashboard")
    import_start(job=job, dry_run=True)
    job_id = str(job.pk)
    import_run(job_id)

    dry = api.get(f"{URL}{job_id}/").json()
    assert (dry["status"], dry["dry_run"]) == ("completed", True)
    assert dry["counts"] == {**NO_COUNTS, "created": 2, "failed": 2}
    assert [e["row"] for e in dry["errors"]] == [4, 5]
    assert not Contact.objects.exists()

    again_dry = start(api, job_id, {"dry_run": True})
    assert again_dry.status_code == 202
    assert again_dry.json()["dry_run"] is True
    assert run(api, again_dry)["counts"] == {**NO_COUNTS, "created": 2, "failed": 2}
    assert not Contact.objects.exists()

    started = start(api, job_id, {"dry_run": False})
    assert started.status_code == 202
    assert started.json()["status"] == "queued"
    assert started.json()["dry_run"] is False
    assert started.json()["counts"] == NO_COUNTS
    assert started.json()["errors"] == []
    real = run(api, started)
    assert (real["status"], real["dry_run"]) == ("completed", False)
    assert real["counts"] == {**NO_COUNTS, "created": 2, "failed": 2}
    assert [e["row"] for e in real["errors"]] == [4, 5]
    assert sorted(Contact.objects.filter(agent=agent).values_list("email", flat=True)) == [
        "ada@example.com",
        "grace@example.com",
    ]

    for body in ({"dry_run": False}, {"dry_run": True}):
        refused = start(api, job_id, body)
        assert refused.status_code == 409
        assert error(refused)["code"] == "conflict"
        assert "already imported" in error(refused)["message"]
    job.refresh_from_db()
    assert (job.status, job.dry_run, job.created_count) == ("completed", False, 2)
    assert Contact.objects.filter(agent=agent).count() == 2


def test_starting_a_job_that_is_still_queued_answers_409(api, agent, schema):
    job_id = post_file(api, CSV).json()["id"]

    response = start(api, job_id, {"dry_run": True})

    assert response.status_code == 409
    assert error(response) == {
        "code": "conflict",
        "message": "The import is already queued or running.",
        "fields": {},
    }
    job = ContactImport.objects.get(pk=job_id)
    assert (job.status, job.dry_run) == ("queued", False)


def test_start_resumes_a_stalled_import_but_not_one_whose_worker_is_alive(
    api, agent, monkeypatch, settings
):
    job, dead = killed_import(agent, monkeypatch)
    stalled_since = job.heartbeat_at
    recently = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS - 30)
    ContactImport.objects.filter(pk=job.pk).update(heartbeat_at=recently)

    for body in ({"dry_run": False}, {"dry_run": True}):
        refused = start(api, str(job.pk), body)
        assert refused.status_code == 409
        assert error(refused) == {
            "code": "conflict",
            "message": "The import is already queued or running.",
            "fields": {},
        }
    after = ContactImport.objects.get(pk=job.pk)
    assert (after.status, after.run_token, after.processed_rows) == ("running", job.run_token, 2)
    assert [r.status for r in import_task_rows(import_id=job.pk)] == ["RUNNING"]

    ContactImport.objects.filter(pk=job.pk).update(heartbeat_at=stalled_since)
    response = start(api, str(job.pk), {"dry_run": False})

    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["dry_run"], body["error"]) == ("queued", False, "")
    assert body["progress"] == {"total_rows": 5, "processed_rows": 2, "percent": 40}
    assert body["counts"] == {**NO_COUNTS, "created": 2}
    dead.refresh_from_db()
    assert dead.status == "FAILED"  # the killed worker's task row does not stay RUNNING
    done = run(api, response)
    assert (done["status"], done["counts"]) == ("completed", {**NO_COUNTS, "created": 5})
    assert Contact.objects.filter(agent=agent).count() == 5


def test_start_with_dry_run_starts_a_stalled_import_over_as_a_dry_run(api, agent, monkeypatch):
    job, dead = killed_import(agent, monkeypatch)

    response = start(api, str(job.pk), {"dry_run": True})

    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["dry_run"], body["counts"]) == ("queued", True, NO_COUNTS)
    assert body["progress"]["processed_rows"] == 0
    dead.refresh_from_db()
    assert dead.status == "FAILED"
    done = run(api, response)
    assert (done["status"], done["counts"]) == (
        "completed",
        {**NO_COUNTS, "created": 3, "unchanged": 2},
    )
    assert Contact.objects.filter(agent=agent).count() == 2  # a dry run writes nothing


def test_start_refuses_a_body_that_is_not_a_boolean_dry_run(api, agent, schema):
    job = import_create(agent=agent, upload=upload(CSV), actor_label="dashboard")
    import_start(job=job, dry_run=True)
    import_run(job.pk)

    for body, field in (({"dry_run": "no"}, "dry_run"), ({"dry": False}, "dry")):
        response = start(api, str(job.pk), body)
        assert response.status_code == 400
        assert error(response)["code"] == "validation_error"
        assert field in error(response)["fields"]
    job.refresh_from_db()
    assert (job.status, job.dry_run) == ("completed", True)
    assert not Contact.objects.exists()


# --- Refused uploads -----------------------------------------------------------------------------


def test_an_upload_without_a_file_is_refused_naming_file(api, agent):
    response = api.post(URL, {})

    assert response.status_code == 400
    assert error(response)["code"] == "validation_error"
    assert list(error(response)["fields"]) == ["file"]
    assert not ContactImport.objects.exists()


def test_a_binary_file_is_refused_as_not_text(api, agent):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01"

    response = post_file(api, png, name="logo.png")

    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "validation_error"
    assert list(body["fields"]) == ["file"]
    assert "binary" in body["fields"]["file"][0]
    assert not ContactImport.objects.exists()


@pytest.mark.parametrize(
    ("content", "name", "where"),
    [
        (b"[" * 1000 + b"]" * 1000, "people.json", "Item 1"),
        (
            b'[{"email": "a@example.com"}, ' + b'{"a": ' * 1000 + b"1" + b"}" * 1000 + b"]",
            "people.json",
            "Item 2",
        ),
        (
            b'{"email": "a@example.com"}\n' + b'{"a": ' * 1000 + b"1" + b"}" * 1000 + b"\n",
            "people.jsonl",
            "Line 2",
        ),
    ],
    ids=["json-arrays", "json-objects", "jsonl-objects"],
)
def test_json_nested_deeper_than_a_contact_is_refused_naming_the_item(
    api, agent, content, name, where
):
    response = post_file(api, content, name=name)

    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "validation_error"
    assert body["fields"] == {
        "file": [
            f"{where} nests lists or objects more than 5 levels deep, which no contact needs (a "
            "contact is an object of values, lists of values and a list of Stripe accounts). "
            "Flatten it and upload the file again."
        ]
    }
    assert not ContactImport.objects.exists()
    assert not Contact.objects.exists()


def test_a_csv_that_is_not_utf8_is_refused_saying_to_save_it_as_utf8(api, agent):
    content = "name,email\nMüller,mueller@example.com\n".encode("latin-1")

    response = post_file(api, content)

    assert response.status_code == 400
    (message,) = error(response)["fields"]["file"]
    assert "not UTF-8" in message
    assert "0xfc" in message  # the ü of latin-1
    assert not ContactImport.objects.exists()
    assert not Contact.objects.exists()


def test_a_file_above_import_max_bytes_is_refused_with_413(api, agent, settings):
    settings.IMPORT_MAX_BYTES = 2048
    rows = "".join(f"u{n},person{n}@example.com\n" for n in range(200))
    content = "external_id,email\n" + rows
    assert len(content) > 2048

    response = post_file(api, content)

    assert response.status_code == 413
    assert error(response)["code"] == "payload_too_large"
    assert error(response)["message"] == (
        "The file is larger than 2 KB; split it into smaller files."
    )
    assert not ContactImport.objects.exists()
    assert not Contact.objects.exists()


def test_a_body_far_above_import_max_bytes_is_refused_before_it_is_read(api, agent, settings):
    settings.IMPORT_MAX_BYTES = 2048
    content = "email\n" + "x@example.com\n" * 10_000  # 140 kB: more than the envelope allows

    response = post_file(api, content)

    assert response.status_code == 413
    assert error(response)["code"] == "payload_too_large"
    assert "2,048 bytes" in error(response)["message"]
    assert not ContactImport.objects.exists()


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"mapping": {"Nope": "email"}}, "mapping"),
        ({"mapping": "{not json"}, "mapping"),
        ({"mapping": '["E-mail"]'}, "mapping"),
        ({"mapping": '{"E-mail": 1}'}, "mapping"),
        ({"new_attributes": "nope"}, "new_attributes"),
        ({"unknown_columns": "guess"}, "unknown_columns"),
        ({"format": "xml"}, "format"),
        ({"mode": "fast"}, "mode"),
    ],
    ids=[
        "mapping-of-a-missing-column",
        "mapping-not-json",
        "mapping-not-an-object",
        "mapping-not-strings",
        "new-attributes-not-json",
        "unknown-columns-choice",
        "format-choice",
        "unknown-field",
    ],
)
def test_a_bad_form_field_is_refused_with_400_naming_it(api, agent, schema, fields, named):
    response = post_file(api, CSV, **fields)

    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "validation_error"
    assert list(body["fields"]) == [named]
    assert body["message"].startswith(f"{named}: ")
    assert not ContactImport.objects.exists()


def test_a_mapping_of_a_missing_column_says_which_column(api, agent, schema):
    response = post_file(api, CSV, mapping={"Nope": "email"})

    assert error(response)["fields"] == {"mapping": ["The file has no column named 'Nope'."]}


def test_an_unknown_form_field_is_named_as_unknown(api, agent, schema):
    response = post_file(api, CSV, mode="fast")

    assert error(response)["fields"] == {"mode": ["Unknown field."]}


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"mapping": {"E-mail": "attr:nope"}}, "no attribute with key 'nope'"),
        ({"mapping": {"E-mail": "new:score"}}, "choose a type for the new attribute 'score'"),
        ({"mapping": {"E-mail": "name"}}, "both mapped to the same field"),
        ({"mapping": {"E-mail": "shoe_size"}}, "unknown target 'shoe_size'"),
    ],
    ids=["unknown-attribute", "new-without-type", "two-columns-one-field", "unknown-target"],
)
def test_a_mapping_that_cannot_run_is_refused_with_400_saying_why(api, agent, schema, fields, says):
    response = post_file(api, CSV, **fields)

    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "validation_error"
    assert list(body["fields"]) == ["mapping"]
    assert says in body["fields"]["mapping"][0]
    assert not Contact.objects.exists()
    assert not AttributeDefinition.objects.filter(agent=agent, key="score").exists()


def test_a_mapping_that_cannot_run_leaves_no_job_and_no_stored_file(api, agent, schema, settings):
    response = post_file(api, CSV, mapping={"E-mail": "attr:nope"})

    assert response.status_code == 400
    assert not ContactImport.objects.exists()
    media = Path(settings.MEDIA_ROOT)
    assert not [p for p in media.rglob("*") if p.is_file()]


# --- Access ------------------------------------------------------------------------------------


def test_another_agents_key_gets_404_for_this_agents_import(api, other_api, agent, schema):
    job_id = run(api, post_file(api, CSV))["id"]

    for response in (
        other_api.get(f"{URL}{job_id}/"),
        start(other_api, job_id, {"dry_run": True}),
    ):
        assert response.status_code == 404
        assert error(response)["code"] == "not_found"
        assert job_id not in response.content.decode()
    job = ContactImport.objects.get(pk=job_id)
    assert (job.status, job.dry_run, job.created_count) == ("completed", False, 2)
    assert api.get(f"{URL}{job_id}/").status_code == 200


def test_an_unknown_import_id_is_404(api, agent):
    unknown = uuid.uuid4()

    for response in (api.get(f"{URL}{unknown}/"), start(api, str(unknown), {"dry_run": True})):
        assert response.status_code == 404
        assert error(response)["code"] == "not_found"


def test_imports_and_exports_without_a_valid_key_are_401(agent, schema):
    job = import_create(agent=agent, upload=upload(CSV), actor_label="dashboard")

    for client in (Client(), Client(HTTP_AUTHORIZATION="Bearer rk_nope")):
        for response in (
            client.post(URL, {"file": upload(CSV)}),
            client.get(f"{URL}{job.pk}/"),
            start(client, str(job.pk), {"dry_run": True}),
            client.get(f"{EXPORT}?format=csv"),
        ):
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
            assert error(response)["code"] == "unauthorized"
    assert ContactImport.objects.get().status == "uploaded"
    assert not Contact.objects.exists()


# --- Exports -----------------------------------------------------------------------------------


def test_a_csv_export_has_core_columns_tags_live_attributes_and_stripe_accounts(api, agent, people):
    response, body = export(api)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="contacts-')
    assert response["Content-Disposition"].endswith('.csv"')
    header = next(csv.reader(io.StringIO(body.decode())))
    assert header == [*CORE_COLUMNS, "tags", "plan", "mrr", "beta", "signup", "stripe_accounts"]
    rows = csv_rows(body)
    assert [r["email"] for r in rows] == [
        "ada@example.com",
        "grace@example.com",
        "plain@example.com",
    ]
    ada = rows[0]
    stored = people["ada@example.com"]
    assert ada["id"] == str(stored.pk)
    assert ada["external_id"] == "u1"
    assert ada["company"] == "Analytical Engines"
    assert ada["identity"] == "verified"
    assert datetime.fromisoformat(ada["created_at"]) == stored.created_at
    assert ada["deleted_at"] == ""
    assert ada["tags"] == "beta, vip"
    assert (ada["plan"], ada["mrr"], ada["beta"], ada["signup"]) == (
        "Pro",
        "42",
        "true",
        "2024-01-02",
    )
    assert ada["stripe_accounts"] == (
        '- label: "Main"\n  stripe_id: "cus_A1"\n  stripe_email: "billing@example.com"'
    )
    grace = rows[1]
    assert (grace["mrr"], grace["beta"], grace["signup"], grace["stripe_accounts"]) == (
        "10.5",
        "false",
        "",
        "",
    )
    assert (rows[2]["external_id"], rows[2]["tags"], rows[2]["plan"]) == ("", "", "")


def test_a_csv_export_puts_an_apostrophe_before_cells_a_spreadsheet_would_run(api, agent, people):
    _response, body = export(api)

    rows = csv_rows(body)
    assert rows[0]["name"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["phone"] == "'+14155550123"
    assert rows[2]["phone"] == "'+14155550199"
    assert rows[1]["name"] == "Grace Hopper"
    # The stored values are untouched.
    assert people["ada@example.com"].name == '=HYPERLINK("http://x")'
    assert people["ada@example.com"].phone == "+14155550123"


def test_a_json_lines_export_has_one_contact_json_per_line(api, agent, people):
    response, body = export(api, "format=jsonl")

    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].endswith('.jsonl"')
    lines = jsonl(body)
    assert len(lines) == 3
    for line in lines:
        assert set(line) == CONTACT_FIELDS
    ada = lines[0]
    stored = people["ada@example.com"]
    assert ada["id"] == str(stored.pk)
    assert (ada["external_id"], ada["name"], ada["email"], ada["phone"]) == (
        "u1",
        '=HYPERLINK("http://x")',  # JSON is data, not a spreadsheet: as stored
        "ada@example.com",
        "+14155550123",
    )
    assert ada["company"] == "Analytical Engines"
    assert ada["avatar_url"] == ""
    assert ada["identity"] == "verified"
    assert ada["verified_at"] == ada["created_at"]
    assert ada["attributes"] == {"plan": "Pro", "mrr": 42, "beta": True, "signup": "2024-01-02"}
    assert ada["tags"] == ["beta", "vip"]
    assert ada["stripe_accounts"] == [
        {"label": "Main", "stripe_id": "cus_A1", "stripe_email": "billing@example.com"}
    ]
    assert (ada["first_seen_at"], ada["last_seen_at"], ada["deleted_at"]) == (None, None, None)
    assert datetime.fromisoformat(ada["updated_at"]) == stored.updated_at
    assert lines[2]["external_id"] is None
    assert lines[2]["attributes"] == {}
    assert lines[2]["tags"] == lines[2]["stripe_accounts"] == []


def test_a_json_export_is_an_array_of_the_same_contacts(api, agent, people):
    response, body = export(api, "format=json")

    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].endswith('.json"')
    items = json.loads(body)
    assert isinstance(items, list)
    _response, lines_body = export(api, "format=jsonl")
    assert items == jsonl(lines_body)
    assert [i["email"] for i in items] == [
        "ada@example.com",
        "grace@example.com",
        "plain@example.com",
    ]


def test_an_empty_export_is_a_header_an_empty_array_or_nothing(api, agent):
    assert export(api)[1].decode().splitlines() == [
        ",".join([*CORE_COLUMNS, "tags", "stripe_accounts"])
    ]
    assert json.loads(export(api, "format=json")[1]) == []
    assert export(api, "format=jsonl")[1] == b""


def test_the_list_filters_choose_what_is_exported(api, agent, people, api_actor):
    contact_soft_delete(contact=people["grace@example.com"], actor=api_actor)

    def emails(query: str) -> list[str]:
        return [r["email"] for r in csv_rows(export(api, query)[1])]

    assert emails("format=csv") == ["ada@example.com", "plain@example.com"]
    assert emails("format=csv&tag=vip") == ["ada@example.com"]
    assert emails("format=csv&tag=beta") == ["ada@example.com"]  # Grace is deleted
    assert emails("format=csv&deleted=true") == ["grace@example.com"]
    assert emails("format=csv&deleted=true&tag=beta") == ["grace@example.com"]
    assert emails("format=csv&q=plain") == ["plain@example.com"]
    assert emails("format=csv&attr.plan=Pro") == ["ada@example.com"]
    deleted = jsonl(export(api, "format=jsonl&deleted=true")[1])
    assert [d["email"] for d in deleted] == ["grace@example.com"]
    assert deleted[0]["deleted_at"] is not None


def test_archived_attributes_are_exported_only_when_asked_for(api, agent, people):
    plan = AttributeDefinition.objects.get(agent=agent, key="plan")
    attribute_set_archived(definition=plan, archived=True)

    _response, body = export(api)
    assert "plan" not in next(csv.reader(io.StringIO(body.decode())))
    assert "Pro" not in body.decode()
    ada = jsonl(export(api, "format=jsonl")[1])[0]
    assert ada["attributes"] == {"mrr": 42, "beta": True, "signup": "2024-01-02"}

    _response, body = export(api, "format=csv&include_archived_attributes=true")
    assert next(csv.reader(io.StringIO(body.decode())))[-6:] == [
        "tags", "plan", "mrr", "beta", "signup", "stripe_accounts",
    ]  # fmt: skip
    assert csv_rows(body)[0]["plan"] == "Pro"
    ada = jsonl(export(api, "format=jsonl&include_archived_attributes=true")[1])[0]
    assert ada["attributes"]["plan"] == "Pro"


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("format=xml", "format"),
        ("format=csv&include_archived_attributes=maybe", "include_archived_attributes"),
        ("format=csv&deleted=", "deleted"),
        ("format=csv&attr.nope=1", "attr.nope"),
    ],
)
def test_a_bad_export_parameter_is_refused_with_400_naming_it(api, agent, people, query, named):
    response = api.get(f"{EXPORT}?{query}")

    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "validation_error"
    assert list(body["fields"]) == [named]


def test_an_export_never_shows_another_agents_contacts(api, other_api, agent, people):
    other = other_api.post(
        "/api/v1/contacts/",
        {"external_id": "u1", "name": "Theirs", "email": "theirs@example.com"},
        content_type="application/json",
    )
    assert other.status_code == 201

    for fmt in ("csv", "json", "jsonl"):
        _response, body = export(api, f"format={fmt}")
        assert b"theirs@example.com" not in body
        assert other.json()["id"].encode() not in body
        _response, theirs = export(other_api, f"format={fmt}")
        assert b"theirs@example.com" in theirs
        for email in people:
            assert email.encode() not in theirs
    rows = csv_rows(export(other_api)[1])
    assert [r["name"] for r in rows] == ["Theirs"]
    assert next(csv.reader(io.StringIO(export(other_api)[1].decode())))[-2:] == [
        "tags",
        "stripe_accounts",
    ]  # the other agent has no attributes of its own


# --- Round trip -------------------------------------------------------------------------------


@pytest.fixture
def more_people(api, agent, people):
    """Values that are easy to lose on the way out and back in."""
    attribute_create(agent=agent, key="tier", type="text", secure=True)
    attribute_create(agent=agent, key="note", type="text")
    for body in (
        {"external_id": "p2", "name": "Negative", "attributes": {"mrr": -5, "note": 'a\n"b", c'}},
        {"external_id": "p3", "name": "Secure", "attributes": {"tier": "gold", "mrr": 0}},
        {"external_id": "007", "name": "Bond", "phone": "+44 20 7946 0958", "tags": ["-minus"]},
        {"external_id": "p4", "name": "@handle", "company": "+plus", "email": "h@example.com"},
    ):
        response = api.post("/api/v1/contacts/", body, content_type="application/json")
        assert response.status_code == 201, response.json()


def snapshot(agent) -> dict:
    return {
        c.pk: (
            c.external_id, c.name, c.email, c.phone, c.company, c.identity, c.attributes,
            c.updated_at, c.deleted_at, tags_of(c),
            list(c.stripe_accounts.values_list("label", "stripe_id", "stripe_email")),
        )
        for c in Contact.objects.filter(agent=agent)
    }  # fmt: skip


def test_an_exported_csv_imported_again_for_the_same_agent_changes_nothing(
    api, agent, more_people, writer
):
    before = snapshot(agent)
    _response, body = export(api)
    exported = {r["external_id"]: r for r in csv_rows(body)}
    assert exported["p2"]["mrr"] == "'-5"  # guarded cells, which the import reads back
    assert (exported["p4"]["name"], exported["p4"]["company"]) == ("'@handle", "'+plus")
    assert exported["007"]["tags"] == "'-minus"
    assert exported["p2"]["note"] == 'a\n"b", c'

    response = post_file(api, body, name="export.csv")
    assert response.status_code == 202, response.json()
    mapping = response.json()["mapping"]
    assert mapping["id"] == "id"
    assert mapping["external_id"] == "external_id"
    assert mapping["tags"] == "tags"
    assert mapping["mrr"] == "attr:mrr"
    assert mapping["tier"] == "attr:tier"
    assert mapping["stripe_accounts"] == "stripe_accounts"
    assert mapping["identity"] == mapping["created_at"] == mapping["deleted_at"] == "ignore"
    job = run(api, response)

    assert job["status"] == "completed", job["error"]
    assert job["errors"] == []
    assert len(before) == 7
    assert job["counts"] == {**NO_COUNTS, "unchanged": len(before)}
    assert snapshot(agent) == before
    assert Contact.objects.get(agent=agent, external_id="u1").name == '=HYPERLINK("http://x")'
    assert Contact.objects.get(agent=agent, external_id="007").phone == "+442079460958"


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_an_exported_json_file_imported_again_changes_nothing(api, agent, more_people, writer, fmt):
    before = snapshot(agent)
    _response, body = export(api, f"format={fmt}")

    job = run(api, post_file(api, body, name=f"export.{fmt}"))

    assert job["status"] == "completed", job["error"]
    assert job["file"]["format"] == fmt
    assert job["errors"] == []
    assert job["counts"] == {**NO_COUNTS, "unchanged": len(before)}
    assert snapshot(agent) == before


def test_a_value_starting_with_an_apostrophe_and_a_formula_sign_survives_a_csv_round_trip(
    api, agent, writer
):
    created = api.post(
        "/api/v1/contacts/",
        {"external_id": "q1", "name": "'=not a formula", "company": "'+1 club"},
        content_type="application/json",
    )
    assert created.status_code == 201
    _response, body = export(api)

    job = run(api, post_file(api, body, name="export.csv"))

    assert job["counts"] == {**NO_COUNTS, "unchanged": 1}
    quoted = contact(agent, external_id="q1")
    assert (quoted.name, quoted.company) == ("'=not a formula", "'+1 club")
