"""Import and export in the dashboard: upload, the job page, mapping, dry run, import,
downloads, delete and the export view (admins only)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from contacts.models import Contact
from tests.factories import ContactFactory, TagFactory
from tests.helpers import HX, agent_url, list_url
from tests.transfers.conftest import upload
from transfers.imports.engine import import_run
from transfers.imports.files import report_name
from transfers.models import ContactImport, ImportRowIssue
from transfers.services import import_create, import_start
from transfers.views import MAX_EXPORT_IDS

pytestmark = pytest.mark.django_db

CSV = """\
External ID,Name,Email,Plan,Notes
u1,Ada Lovelace,ada@example.com,Pro,first
u2,Grace Hopper,grace@example.com,Free,second
u3,=1+2,not-an-email,Pro,third
"""


def make_job(agent, content: str | bytes = CSV, name: str = "people.csv") -> ContactImport:
    return import_create(agent=agent, upload=upload(content, name), actor_label="import by test")


def job_url(job: ContactImport, name: str = "transfers:import_job", agent=None) -> str:
    agent = agent or job.agent
    return reverse(name, kwargs={"agent_public_id": agent.public_id, "import_id": job.pk})


def action(client, job: ContactImport, name: str, **mapping: str):
    """Press a button of the job page; `mapping` overrides targets by column name."""
    data = {"action": name}
    if mapping:
        for index, column in enumerate(job.columns):
            data[f"map-{index}"] = mapping.get(column, job.mapping.get(column, "ignore"))
    return client.post(job_url(job, "transfers:import_action"), data)


def run(job: ContactImport) -> ContactImport:
    import_run(job.pk)
    job.refresh_from_db()
    return job


def dry_run(job: ContactImport) -> ContactImport:
    import_start(job=job, dry_run=True)
    return run(job)


def text(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode("utf-8")
    return response.content.decode()


def rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text(response))))


def mapping_rows(page: str) -> dict[str, dict[str, str]]:
    """{column: {"samples", "target"}} as the job page's mapping table shows them."""
    out = {}
    for column, body in re.findall(r'<tr data-column="([^"]*)">(.*?)</tr>', page, re.S):
        samples = re.search(r'<td class="muted">(.*?)</td>', body, re.S).group(1)
        target = re.search(r'<option value="([^"]*)" selected>', body)
        out[html.unescape(column)] = {
            "samples": html.unescape(samples),
            "target": target.group(1) if target else "",
        }
    return out


def counts(page: str) -> dict[str, int]:
    """The summary's counters as the job page shows them."""
    return {n: int(c) for n, c in re.findall(r'<dd data-count="(\w+)">(\d+)</dd>', page)}


def stored_files() -> list[Path]:
    return [p for p in Path(django_settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def field_errors(page: str) -> list[str]:
    return [html.unescape(e) for e in re.findall(r'<p class="field-error">(.*?)</p>', page)]


def reason(job: ContactImport, row: int) -> str:
    """Why row `row` of the file was not imported, as stored."""
    return ImportRowIssue.objects.get(job=job, row_number=row).message


def flashes(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<li class="flash[^"]*">(.*?)</li>', page)]


# --- Access -----------------------------------------------------------------------------------

JOB_VIEWS = [
    ("transfers:import_job", "get", "post"),
    ("transfers:import_action", "post", "get"),
    ("transfers:import_failed_rows", "get", "post"),
    ("transfers:import_report", "get", "post"),
]
AGENT_VIEWS = [
    ("transfers:import", "get", "put"),
    ("transfers:import", "post", "put"),
    ("transfers:export", "get", "put"),
    ("transfers:export", "post", "put"),
]


@pytest.mark.parametrize(("name", "method", "wrong"), JOB_VIEWS)
def test_job_views_reject_the_wrong_method(admin_client, agent, name, method, wrong):
    job = make_job(agent)
    response = getattr(admin_client, wrong)(job_url(job, name), {"action": "delete"})
    assert response.status_code == 405
    assert ContactImport.objects.filter(pk=job.pk).exists()


@pytest.mark.parametrize(("name", "method", "wrong"), AGENT_VIEWS)
def test_agent_views_reject_the_wrong_method(admin_client, agent, name, method, wrong):
    assert getattr(admin_client, wrong)(agent_url(name, agent)).status_code == 405


@pytest.mark.parametrize(("name", "method", "wrong"), JOB_VIEWS)
def test_job_views_send_anonymous_visitors_to_the_login_page(client, agent, name, method, wrong):
    job = make_job(agent)
    response = getattr(client, method)(job_url(job, name), {"action": "delete"})
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert ContactImport.objects.filter(pk=job.pk).exists()


@pytest.mark.parametrize(("name", "method", "wrong"), AGENT_VIEWS)
def test_agent_views_send_anonymous_visitors_to_the_login_page(client, agent, name, method, wrong):
    contact = ContactFactory(agent=agent)
    data = {"file": upload(CSV), "id": [str(contact.pk)]} if method == "post" else {}
    response = getattr(client, method)(agent_url(name, agent), data)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert not ContactImport.objects.exists()


@pytest.mark.parametrize(("name", "method", "wrong"), JOB_VIEWS)
def test_staff_members_cannot_reach_an_import(staff_client, agent, name, method, wrong):
    job = dry_run(make_job(agent))
    response = getattr(staff_client, method)(job_url(job, name), {"action": "delete"})
    assert response.status_code == 403
    assert b"Ada Lovelace" not in response.content
    assert ContactImport.objects.filter(pk=job.pk).exists()


@pytest.mark.parametrize(("name", "method", "wrong"), AGENT_VIEWS)
def test_staff_members_can_neither_upload_nor_export(staff_client, agent, name, method, wrong):
    contact = ContactFactory(agent=agent, name="Ada Lovelace")
    data = {"file": upload(CSV), "id": [str(contact.pk)]} if method == "post" else {}
    response = getattr(staff_client, method)(agent_url(name, agent), data)
    assert response.status_code == 403
    assert b"Ada Lovelace" not in response.content
    assert not ContactImport.objects.exists()


@pytest.mark.parametrize(("name", "method", "wrong"), JOB_VIEWS)
def test_another_workspaces_import_answers_404(
    admin_client, agent, other_agent, name, method, wrong
):
    theirs = dry_run(make_job(other_agent, name="theirs.csv"))
    for url in (job_url(theirs, name), job_url(theirs, name, agent=agent)):
        response = getattr(admin_client, method)(url, {"action": "delete"})
        assert response.status_code == 404
        assert b"theirs.csv" not in response.content
    assert ContactImport.objects.filter(pk=theirs.pk).exists()


@pytest.mark.parametrize(("name", "method", "wrong"), AGENT_VIEWS)
def test_another_workspaces_agent_answers_404(admin_client, other_agent, name, method, wrong):
    theirs = ContactFactory(agent=other_agent, name="Foreign Person")
    data = {"file": upload(CSV), "id": [str(theirs.pk)]} if method == "post" else {}
    response = getattr(admin_client, method)(agent_url(name, other_agent), data)
    assert response.status_code == 404
    assert b"Foreign Person" not in response.content
    assert not ContactImport.objects.exists()


# --- Upload ----------------------------------------------------------------------------------


def test_the_upload_page_shows_the_form_and_the_agents_recent_imports(
    admin_client, agent, other_agent, settings
):
    settings.IMPORT_MAX_BYTES = 64 * 1024 * 1024
    mine = make_job(agent, name="march.csv")
    make_job(other_agent, name="theirs.csv")
    response = admin_client.get(agent_url("transfers:import", agent))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in page
    assert 'type="file" name="file"' in page
    assert 'name="create_unknown"' in page
    assert "Upload and map columns" in page
    assert "Up to 64 MB and 1,048,576 rows" in page
    assert f'href="{job_url(mine)}">march.csv</a>' in page
    assert "Waiting for the column mapping" in page
    assert "theirs.csv" not in page
    assert f'href="{list_url(agent)}"' in page


def test_the_upload_page_says_when_there_are_no_imports_yet(admin_client, agent):
    page = admin_client.get(agent_url("transfers:import", agent)).content.decode()
    assert "No imports yet." in page


def test_uploading_a_csv_creates_a_mapped_job_and_opens_its_page(
    admin_client, admin_user, agent, schema
):
    response = admin_client.post(
        agent_url("transfers:import", agent), {"file": upload(CSV, "people.csv")}
    )
    job = ContactImport.objects.get(agent=agent)
    assert response.status_code == 302
    assert response.url == job_url(job)
    assert job.status == ContactImport.Status.UPLOADED
    assert (job.filename, job.file_format, job.delimiter) == ("people.csv", "csv", ",")
    assert job.columns == ["External ID", "Name", "Email", "Plan", "Notes"]
    assert job.mapping == {
        "External ID": "external_id",
        "Name": "name",
        "Email": "email",
        "Plan": "attr:plan",
        "Notes": "ignore",
    }
    assert job.created_by == admin_user
    assert job.actor_label == "import by admin@acme.test"
    assert job.size == len(CSV.encode())
    assert job.file.read().decode() == CSV
    assert not Contact.objects.exists()


def test_offering_new_attributes_maps_unknown_columns_to_new_ones(admin_client, agent):
    admin_client.post(
        agent_url("transfers:import", agent),
        {"file": upload("email,Favourite Colour\na@x.org,red\n"), "create_unknown": "on"},
    )
    job = ContactImport.objects.get(agent=agent)
    assert job.mapping == {"email": "email", "Favourite Colour": "new:favourite_colour"}
    assert job.new_attributes == {"favourite_colour": "text"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"\x00\x01\x02PK\x03\x04",
            "This is a binary file, not CSV or JSON text (for a spreadsheet, export it as CSV).",
        ),
        (
            "email,name\na@x.org,café\n".encode("latin-1"),
            "The file is not UTF-8 text (byte 0xe9 at position 22). Save it as UTF-8 "
            "(in Excel: “CSV UTF-8”) and upload it again.",
        ),
        ("email\n".encode("utf-16"), "The file is UTF-16 text."),
        (b"", "The submitted file is empty."),
        (b"  \n\n ", "The file is empty."),
        (b'email,name\na@x.org,"never closed\n', "Row 2: a quoted cell is never closed"),
    ],
    ids=["binary", "latin-1", "utf-16", "empty", "blank", "open-quote"],
)
def test_an_unreadable_file_is_refused_with_a_precise_message_and_nothing_stored(
    admin_client, agent, content, message
):
    response = admin_client.post(agent_url("transfers:import", agent), {"file": upload(content)})
    page = response.content.decode()
    assert response.status_code == 400
    assert message in field_errors(page)[0]
    assert 'type="file" name="file"' in page  # the form again, to pick another file
    assert not ContactImport.objects.exists()
    assert stored_files() == []


def test_a_json_file_nested_deeper_than_a_contact_is_refused_and_nothing_stored(
    admin_client, agent
):
    content = b'[{"email": "a@example.com"}, ' + b"[" * 1000 + b"]" * 1000 + b"]"

    response = admin_client.post(
        agent_url("transfers:import", agent), {"file": upload(content, "people.json")}
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert field_errors(page) == [
        "Item 2 nests lists or objects more than 5 levels deep, which no contact needs (a "
        "contact is an object of values, lists of values and a list of Stripe accounts). "
        "Flatten it and upload the file again."
    ]
    assert 'type="file" name="file"' in page
    assert not ContactImport.objects.exists()
    assert stored_files() == []


def test_a_file_above_the_size_limit_answers_413_and_stores_nothing(admin_client, agent, settings):
    settings.IMPORT_MAX_BYTES = 1024 * 1024
    content = "email\n" + "a@example.com\n" * (1024 * 1024 // 14 + 1)
    assert len(content) > settings.IMPORT_MAX_BYTES
    response = admin_client.post(agent_url("transfers:import", agent), {"file": upload(content)})
    page = response.content.decode()
    assert response.status_code == 413
    assert "The file is larger than 1 MB; split it into smaller files." in page
    assert "Up to 1 MB" in page
    assert not ContactImport.objects.exists()
    assert stored_files() == []


def test_a_small_file_with_an_overlong_cell_is_a_bad_request_not_too_large(admin_client, agent):
    content = 'email,name\na@x.org,"never closed ' + "x" * (130 * 1024) + "\n"
    assert len(content) < django_settings.IMPORT_MAX_BYTES
    response = admin_client.post(agent_url("transfers:import", agent), {"file": upload(content)})
    assert "a cell is larger than 128 KB" in response.content.decode()
    assert not ContactImport.objects.exists()
    assert response.status_code == 400


# --- The job page ----------------------------------------------------------------------------


def test_the_job_page_shows_each_column_with_examples_and_its_target(admin_client, agent, schema):
    job = make_job(agent)
    response = admin_client.get(job_url(job))
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" in page
    assert "<h1>people.csv</h1>" in page
    assert "CSV, comma-separated" in page
    assert "5 columns" in page
    assert mapping_rows(page) == {
        "External ID": {"samples": "u1 · u2 · u3", "target": "external_id"},
        "Name": {"samples": "Ada Lovelace · Grace Hopper · =1+2", "target": "name"},
        "Email": {
            "samples": "ada@example.com · grace@example.com · not-an-email",
            "target": "email",
        },
        "Plan": {"samples": "Pro · Free · Pro", "target": "attr:plan"},
        "Notes": {"samples": "first · second · third", "target": "ignore"},
    }
    assert '<option value="new:notes">New attribute “notes”</option>' in page
    assert 'name="type-4"' in page  # the type of the attribute "Notes" would create
    assert 'name="action" value="dry_run"' in page
    assert "Import now" in page
    assert 'hx-trigger="every 1s"' not in page
    assert "Delete import" in page
    assert response["Vary"].count("HX-Request") == 1


def test_an_htmx_request_gets_only_the_job_fragment(admin_client, agent, schema):
    job = make_job(agent)
    page = admin_client.get(job_url(job), **HX).content.decode()
    assert "<html" not in page
    assert page.lstrip().startswith('<div id="import-job"')
    assert page.rstrip().endswith("</div>")
    assert "Delete import" not in page  # the header stays outside the fragment
    assert set(mapping_rows(page)) == set(job.columns)


def test_a_history_restore_gets_the_full_job_page(admin_client, agent):
    job = make_job(agent)
    response = admin_client.get(
        job_url(job), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert b"<html" in response.content


@pytest.mark.parametrize("status", [ContactImport.Status.QUEUED, ContactImport.Status.RUNNING])
def test_the_fragment_polls_itself_while_the_job_is_queued_or_running(
    admin_client, agent, schema, status
):
    job = make_job(agent)
    action(admin_client, job, "dry_run")
    ContactImport.objects.filter(pk=job.pk).update(status=status, total_rows=3, processed_rows=1)
    page = admin_client.get(job_url(job), **HX).content.decode()
    head = page[: page.index(">")]
    assert f'data-status="{status}"' in head
    assert 'hx-trigger="every 1s"' in head
    assert f'hx-get="{job_url(job)}"' in head
    assert "Validating (dry run)…" in page
    assert "1 of 3 rows" in page
    assert 'id="mapping-form"' not in page  # no changes while it runs


def test_the_fragment_stops_polling_once_the_job_is_done(admin_client, agent, schema):
    job = make_job(agent)
    action(admin_client, job, "dry_run")
    assert 'hx-trigger="every 1s"' in admin_client.get(job_url(job), **HX).content.decode()
    run(job)
    page = admin_client.get(job_url(job), **HX).content.decode()
    assert 'data-status="completed"' in page
    assert "hx-trigger" not in page[: page.index(">")]
    assert 'hx-trigger="every 1s"' not in page


def test_column_names_and_cell_values_render_as_text(admin_client, agent):
    content = "email,<script>alert(1)</script>\n<b>x</b>,<img src=x onerror=alert(2)>\n"
    job = make_job(agent, content)
    dry_run(job)
    for page in (
        admin_client.get(job_url(job)).content.decode(),
        admin_client.get(job_url(job), **HX).content.decode(),
    ):
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<img src=x" not in page
        assert "&lt;img src=x onerror=alert(2)&gt;" in page
        assert "<b>x</b>" not in page  # the failed row's value in the issues table
        assert "&lt;b&gt;x&lt;/b&gt;" in page


def test_the_job_page_lists_the_rows_not_imported_with_their_reasons(admin_client, agent, schema):
    job = dry_run(make_job(agent))
    page = admin_client.get(job_url(job)).content.decode()
    assert "Rows not importable" in page
    row = re.search(r'<tr data-row="4">(.*?)</tr>', page, re.S).group(1)
    assert "Error" in row
    assert "<td>Email</td>" in row
    assert "not-an-email" in row
    assert "is not a valid email address." in row
    errors_only = admin_client.get(job_url(job), {"issues": "error"}, **HX).content.decode()
    assert 'data-row="4"' in errors_only
    skipped_only = admin_client.get(job_url(job), {"issues": "skipped"}, **HX).content.decode()
    assert 'data-row="4"' not in skipped_only


def test_the_job_page_runs_a_bounded_number_of_queries(
    admin_client, agent, schema, django_assert_max_num_queries
):
    lines = [f"u{i},Person {i},bad-{i},Pro,n" for i in range(150)]
    job = dry_run(make_job(agent, "External ID,Name,Email,Plan,Notes\n" + "\n".join(lines)))
    assert job.failed_count == 150
    with django_assert_max_num_queries(10):
        page = admin_client.get(job_url(job)).content.decode()
    assert page.count("<tr data-row=") == 100  # one page of issues
    assert "Next</a>" in page


# --- Mapping, dry run, import ----------------------------------------------------------------


def test_saving_the_mapping_changes_the_stored_targets(admin_client, agent, schema):
    job = make_job(agent)
    response = action(admin_client, job, "save", Notes="company", Plan="ignore")
    job.refresh_from_db()
    assert response.status_code == 302
    assert response.url == job_url(job)
    assert job.mapping["Notes"] == "company"
    assert job.mapping["Plan"] == "ignore"
    assert job.mapping["Email"] == "email"
    assert job.status == ContactImport.Status.UPLOADED
    page = admin_client.get(response.url).content.decode()
    assert mapping_rows(page)["Notes"]["target"] == "company"
    assert mapping_rows(page)["Plan"]["target"] == "ignore"


def test_mapping_a_column_to_a_new_attribute_keeps_its_chosen_type(admin_client, agent, schema):
    job = make_job(agent)
    admin_client.post(
        job_url(job, "transfers:import_action"),
        {
            "action": "save",
            **{f"map-{i}": job.mapping[c] for i, c in enumerate(job.columns)},
            "map-4": "new:notes",
            "type-4": "number",
        },
    )
    job.refresh_from_db()
    assert job.mapping["Notes"] == "new:notes"
    assert job.new_attributes["notes"] == "number"


def test_an_invalid_mapping_shows_why_and_changes_nothing(admin_client, agent, schema):
    job = make_job(agent)
    before = dict(job.mapping)
    response = action(admin_client, job, "dry_run", Name="email")
    job.refresh_from_db()
    assert response.status_code == 302
    assert job.mapping == before
    assert job.status == ContactImport.Status.UPLOADED  # nothing queued
    page = admin_client.get(response.url).content.decode()
    assert flashes(page) == ["Columns “Name” and “Email” are both mapped to the same field."]
    assert mapping_rows(page)["Name"]["target"] == "name"


def test_an_unknown_action_is_a_bad_request(admin_client, agent):
    job = make_job(agent)
    response = admin_client.post(job_url(job, "transfers:import_action"), {"action": "launch"})
    assert response.status_code == 400
    assert response.content == b"Unknown action."
    job.refresh_from_db()
    assert job.status == ContactImport.Status.UPLOADED


def test_a_dry_run_reports_what_would_happen_and_writes_nothing(admin_client, agent, schema):
    job = make_job(agent)
    response = action(admin_client, job, "dry_run")
    job.refresh_from_db()
    assert response.url == job_url(job)
    assert (job.status, job.dry_run) == (ContactImport.Status.QUEUED, True)
    queued = admin_client.get(job_url(job)).content.decode()
    assert "Validating (dry run)…" in queued
    assert "Reading the file…" in queued

    run(job)
    page = admin_client.get(job_url(job)).content.decode()
    assert "Dry run finished: nothing was written" in page
    assert "3 rows" in page
    assert "Would create" in page
    assert counts(page) == {"created": 2, "updated": 0, "unchanged": 0, "failed": 1, "skipped": 0}
    assert f'href="{job_url(job, "transfers:import_report")}"' in page
    assert "Import 2 contacts (skip 1 with errors)" in page
    assert 'id="mapping-form"' in page  # the mapping can still change before importing
    assert not Contact.objects.exists()


def test_importing_after_a_dry_run_writes_the_contacts_and_offers_the_failed_rows(
    admin_client, agent, schema
):
    job = make_job(agent)
    action(admin_client, job, "dry_run")
    run(job)
    response = action(admin_client, job, "import")
    job.refresh_from_db()
    assert (job.status, job.dry_run) == (ContactImport.Status.QUEUED, False)
    assert "Importing…" in admin_client.get(response.url).content.decode()

    run(job)
    assert job.status == ContactImport.Status.COMPLETED
    contacts = Contact.objects.filter(agent=agent).order_by("external_id")
    assert [(c.external_id, c.name, c.email, c.attributes) for c in contacts] == [
        ("u1", "Ada Lovelace", "ada@example.com", {"plan": "Pro"}),
        ("u2", "Grace Hopper", "grace@example.com", {"plan": "Free"}),
    ]
    page = admin_client.get(job_url(job)).content.decode()
    assert "Import finished" in page
    assert "Dry run finished" not in page
    assert counts(page) == {"created": 2, "updated": 0, "unchanged": 0, "failed": 1, "skipped": 0}
    failed_link = re.search(r"<a [^>]*data-failed-rows>([^<]*)</a>", page)
    assert f'href="{job_url(job, "transfers:import_failed_rows")}"' in failed_link.group(0)
    assert failed_link.group(1) == "Download the row not imported"
    assert f'href="{list_url(agent)}">See the contacts</a>' in page
    assert 'id="mapping-form"' not in page  # a finished import is not run again
    assert not job.file  # the uploaded file is gone, the failed rows stay


def test_importing_the_same_job_twice_is_refused(admin_client, agent, schema):
    job = make_job(agent)
    action(admin_client, job, "import")
    run(job)
    response = action(admin_client, job, "import")
    job.refresh_from_db()
    assert job.status == ContactImport.Status.COMPLETED
    assert Contact.objects.filter(agent=agent).count() == 2
    assert flashes(admin_client.get(response.url).content.decode()) == [
        "This file is already imported; upload it again to re-run it."
    ]


def test_the_import_button_runs_the_task_once_the_request_commits(
    admin_client, agent, schema, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    job = make_job(agent)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = action(admin_client, job, "import")
    # One task enqueued (the other callbacks count the rows written, for /metrics).
    assert len([c for c in callbacks if c.__qualname__.startswith("_enqueue")]) == 1
    job.refresh_from_db()
    assert job.status == ContactImport.Status.COMPLETED
    assert Contact.objects.filter(agent=agent).count() == 2
    assert "Import finished" in admin_client.get(response.url).content.decode()


def test_a_stalled_import_can_be_resumed_and_a_finished_one_cannot(
    admin_client, agent, schema, settings
):
    job = make_job(agent)
    import_start(job=job, dry_run=False)
    stale = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS + 60)
    ContactImport.objects.filter(pk=job.pk).update(
        status=ContactImport.Status.RUNNING, heartbeat_at=stale, processed_rows=1, total_rows=3
    )
    page = admin_client.get(job_url(job)).content.decode()
    assert stall_warnings(page) == [
        "No progress for 6 minutes: the worker may have stopped; the import resumes "
        "automatically when a worker starts. Everything up to row 1 is saved."
    ]
    assert "Resume after the 1 row done" in page
    action(admin_client, job, "resume")
    job.refresh_from_db()
    assert job.status == ContactImport.Status.QUEUED

    run(job)
    response = action(admin_client, job, "resume")
    job.refresh_from_db()
    assert job.status == ContactImport.Status.COMPLETED
    assert flashes(admin_client.get(response.url).content.decode()) == [
        "Only an interrupted import can be resumed."
    ]


def stall_warnings(page: str) -> list[str]:
    found = re.findall(r"<p class=\"form-errors\" data-(?:stalled|quiet)>(.*?)</p>", page, re.S)
    return [html.unescape(w).replace("\xa0", " ") for w in found]


def test_a_running_import_without_progress_for_minutes_says_the_worker_may_have_stopped(
    admin_client, agent, schema, settings
):
    job = make_job(agent)
    import_start(job=job, dry_run=False)
    quiet = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS // 2 + 40)
    ContactImport.objects.filter(pk=job.pk).update(
        status=ContactImport.Status.RUNNING, heartbeat_at=quiet, processed_rows=1, total_rows=3
    )

    page = admin_client.get(job_url(job), **HX).content.decode()

    assert stall_warnings(page) == [
        "No progress for 3 minutes: the worker may be busy with a large batch, or it may "
        "have stopped. A stopped import resumes automatically once it has made no progress "
        "for 5 minutes and a worker is running."
    ]
    assert 'value="resume"' not in page  # its worker may still be at work
    ContactImport.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    assert stall_warnings(admin_client.get(job_url(job), **HX).content.decode()) == []


def test_a_queued_import_no_worker_picks_up_says_so_and_can_be_queued_again(
    admin_client, agent, settings
):
    job = make_job(agent)
    import_start(job=job, dry_run=True)
    stale = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS + 60)
    ContactImport.objects.filter(pk=job.pk).update(heartbeat_at=stale)

    page = admin_client.get(job_url(job)).content.decode()

    assert "No background worker has picked this import up yet" in page
    assert "Queue it again" in page
    action(admin_client, job, "resume")
    job.refresh_from_db()
    assert job.status == ContactImport.Status.QUEUED
    assert job.heartbeat_at > stale
    assert "No background worker" not in admin_client.get(job_url(job)).content.decode()


# --- Downloads ---------------------------------------------------------------------------------

INVALID = "is not a valid email address."
ISSUES_CSV = """\
External ID,Name,Email,Notes
u1,Ada Lovelace,ada@example.com,first
u2,=HYPERLINK("http://evil.test"),not-an-email,+1 415
u3,Alan Turing,@alan,-x
u1,Ada King,ada@example.com,again
"""


def test_the_failed_rows_download_has_the_original_columns_and_each_reason(admin_client, agent):
    job = make_job(agent, ISSUES_CSV, "people.csv")
    action(admin_client, job, "import")
    run(job)
    assert (job.created_count, job.failed_count, job.skipped_count) == (1, 2, 1)
    response = admin_client.get(job_url(job, "transfers:import_failed_rows"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="people-failed-rows.csv"'
    assert response["Cache-Control"] == "no-store"
    assert rows(response) == [
        ["External ID", "Name", "Email", "Notes", "error"],
        ["u1", "Ada Lovelace", "ada@example.com", "first", reason(job, 2)],
        ["u2", '\'=HYPERLINK("http://evil.test")', "not-an-email", "'+1 415", reason(job, 3)],
        ["u3", "Alan Turing", "'@alan", "'-x", reason(job, 4)],
    ]
    assert reason(job, 2) == "Skipped: row 5 of the file has the same contact and wins."
    assert reason(job, 3) == "Email: 'not-an-email' is not a valid email address."
    assert reason(job, 4).startswith("Email: ")
    assert Contact.objects.get(agent=agent).name == "Ada King"  # the last row won


def test_the_failed_rows_download_guards_column_names_a_spreadsheet_would_run(admin_client, agent):
    formula = '=HYPERLINK("http://evil.test","Click")'
    content = (
        'email,"=HYPERLINK(""http://evil.test"",""Click"")",@cmd,-x,+y\nnot-an-email,a,b,c,d\n'
    )
    job = make_job(agent, content, "people.csv")
    assert job.columns == ["email", formula, "@cmd", "-x", "+y"]
    action(admin_client, job, "import")
    run(job)
    assert job.failed_count == 1

    download = text(admin_client.get(job_url(job, "transfers:import_failed_rows")))

    header, row = csv.reader(io.StringIO(download))
    assert header == ["email", "'" + formula, "'@cmd", "'-x", "'+y", "error"]
    assert row == ["not-an-email", "a", "b", "c", "d", reason(job, 2)]
    # Uploaded again (fixed), the file has the columns it had before.
    again = make_job(agent, download, "people-failed-rows.csv")
    assert again.columns == ["email", formula, "@cmd", "-x", "+y", "error"]


def test_the_failed_rows_of_a_job_without_issues_are_just_the_header(admin_client, agent):
    job = make_job(agent, "email,name\na@x.org,A\n")
    import_start(job=job, dry_run=False)
    run(job)
    assert rows(admin_client.get(job_url(job, "transfers:import_failed_rows"))) == [
        ["email", "name", "error"]
    ]


def test_the_dry_run_report_has_a_line_per_row(admin_client, agent, schema):
    job = make_job(agent, ISSUES_CSV, "people.csv")
    action(admin_client, job, "dry_run")
    run(job)
    response = admin_client.get(job_url(job, "transfers:import_report"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="people-dry-run.csv"' in response["Content-Disposition"]
    assert response["Cache-Control"] == "no-store"
    alan = ImportRowIssue.objects.get(job=job, row_number=4).problems[0]["message"]
    assert rows(response) == [
        ["row", "action", "contact", "column", "value", "reason"],
        ["2", "skip", "u1", "", "", "Skipped: row 5 of the file has the same contact and wins."],
        ["3", "error", "u2", "Email", "not-an-email", f"'not-an-email' {INVALID}"],
        ["4", "error", "u3", "Email", "'@alan", "'" + alan],
        ["5", "create", "u1", "", "", ""],
    ]
    assert "@alan" in alan
    assert not Contact.objects.exists()


def test_the_dry_run_report_neutralizes_formulas_in_every_cell(admin_client, agent):
    content = 'External ID,Email\n"=HYPERLINK(""http://evil.test"")",a@x.org\n'
    job = dry_run(make_job(agent, content))
    report = rows(admin_client.get(job_url(job, "transfers:import_report")))
    assert report[1][:3] == ["2", "create", '\'=HYPERLINK("http://evil.test")']


def test_there_is_no_report_before_a_dry_run_or_after_the_real_import(admin_client, agent):
    job = make_job(agent)
    url = job_url(job, "transfers:import_report")
    assert admin_client.get(url).status_code == 404
    action(admin_client, job, "dry_run")
    run(job)
    assert admin_client.get(url).status_code == 200
    action(admin_client, job, "import")
    run(job)
    assert admin_client.get(url).status_code == 404
    assert 'href="' + url not in admin_client.get(job_url(job)).content.decode()


# --- Delete ----------------------------------------------------------------------------------


def test_deleting_an_import_removes_the_job_its_rows_and_files_but_not_the_contacts(
    admin_client, agent, schema
):
    job = make_job(agent)
    action(admin_client, job, "dry_run")
    run(job)
    assert ImportRowIssue.objects.filter(job=job).count() == 1
    assert Path(job.file.path).exists()
    report = Path(django_settings.MEDIA_ROOT) / report_name(job)
    assert report.exists()
    action(admin_client, job, "import")
    run(job)
    kept = make_job(agent, name="other.csv")
    assert Contact.objects.filter(agent=agent).count() == 2

    response = action(admin_client, job, "delete")
    assert response.status_code == 302
    assert response.url == agent_url("transfers:import", agent)
    assert not ContactImport.objects.filter(pk=job.pk).exists()
    assert not ImportRowIssue.objects.filter(job_id=job.pk).exists()
    assert not report.exists()
    assert Contact.objects.filter(agent=agent).count() == 2
    assert ContactImport.objects.filter(pk=kept.pk).exists()
    page = admin_client.get(response.url).content.decode()
    assert flashes(page) == ["The import of people.csv is deleted."]
    assert "other.csv" in page
    assert admin_client.get(job_url(job)).status_code == 404


def test_deleting_an_uploaded_job_removes_its_stored_file(admin_client, agent):
    job = make_job(agent)
    path = Path(job.file.path)
    assert path.exists()
    action(admin_client, job, "delete")
    assert not path.exists()
    assert stored_files() == []


def test_a_running_import_cannot_be_deleted(admin_client, agent, schema):
    job = make_job(agent)
    action(admin_client, job, "import")
    page = admin_client.get(job_url(job)).content.decode()
    assert "Delete import" not in page
    response = action(admin_client, job, "delete")
    assert response.url == job_url(job)
    assert ContactImport.objects.filter(pk=job.pk, status=ContactImport.Status.QUEUED).exists()
    assert flashes(admin_client.get(response.url).content.decode()) == [
        "The import is running; wait for it to finish before deleting it."
    ]


# --- Export ----------------------------------------------------------------------------------


def exported_names(response_or_text) -> list[str]:
    body = response_or_text if isinstance(response_or_text, str) else text(response_or_text)
    table = list(csv.reader(io.StringIO(body)))
    index = table[0].index("name")
    return [row[index] for row in table[1:]]


@pytest.fixture
def people(agent, other_agent):
    vip = TagFactory(agent=agent, name="vip")
    ada = ContactFactory(agent=agent, name="Ada Lovelace", email="ada@math.org")
    ada.tags.add(vip)
    grace = ContactFactory(agent=agent, name="Grace Hopper", email="grace@navy.mil")
    alan = ContactFactory(agent=agent, name="Alan Turing", email="alan@bletchley.uk")
    alan.tags.add(vip)
    gone = ContactFactory(agent=agent, name="Ada Gone", email="gone@math.org")
    Contact.objects.filter(pk=gone.pk).update(deleted_at=gone.created_at)
    foreign = ContactFactory(agent=other_agent, name="Ada Foreign", email="ada@globex.test")
    return {"ada": ada, "grace": grace, "alan": alan, "gone": gone, "foreign": foreign}


def test_exporting_a_view_sends_only_the_contacts_matching_its_filters(admin_client, agent, people):
    url = agent_url("transfers:export", agent)
    response = admin_client.get(url, {"format": "csv", "q": "ada"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response["Content-Disposition"]
    assert re.fullmatch(
        rf'attachment; filename="contacts-{agent.public_id}-\d{{8}}-\d{{4}}\.csv"', disposition
    )
    assert response["Cache-Control"] == "no-store"
    assert exported_names(response) == ["Ada Lovelace"]
    tagged = admin_client.get(url, {"format": "csv", "tag": "vip"})
    assert exported_names(tagged) == ["Ada Lovelace", "Alan Turing"]
    everyone = admin_client.get(url)  # csv by default
    assert exported_names(everyone) == ["Ada Lovelace", "Grace Hopper", "Alan Turing"]
    deleted = admin_client.get(url, {"deleted": "true"})
    assert exported_names(deleted) == ["Ada Gone"]


def test_the_exported_csv_has_the_tags_and_attributes_columns(admin_client, agent, people):
    table = rows(admin_client.get(agent_url("transfers:export", agent), {"tag": "vip"}))
    header = table[0]
    assert header[:3] == ["id", "external_id", "name"]
    assert header[-2:] == ["tags", "stripe_accounts"]
    ada = dict(zip(header, table[1], strict=True))
    assert (ada["id"], ada["email"], ada["tags"]) == (str(people["ada"].pk), "ada@math.org", "vip")


def test_exporting_as_json_lines_gives_one_object_per_contact(admin_client, agent, people):
    response = admin_client.get(agent_url("transfers:export", agent), {"format": "jsonl", "q": "a"})
    assert response["Content-Type"] == "application/x-ndjson"
    lines = [line for line in text(response).splitlines() if line]
    assert sorted(json.loads(line)["name"] for line in lines) == [
        "Ada Lovelace",
        "Alan Turing",
        "Grace Hopper",
    ]


def test_exporting_the_selection_sends_exactly_the_selected_contacts(admin_client, agent, people):
    response = admin_client.post(
        agent_url("transfers:export", agent),
        {"format": "csv", "id": [str(people["alan"].pk), str(people["ada"].pk)]},
    )
    assert response.status_code == 200
    assert exported_names(response) == ["Ada Lovelace", "Alan Turing"]


def test_another_agents_contact_ids_are_never_exported(admin_client, agent, people):
    response = admin_client.post(
        agent_url("transfers:export", agent),
        {"format": "csv", "id": [str(people["foreign"].pk), str(people["grace"].pk), "nope"]},
    )
    body = text(response)
    assert exported_names(body) == ["Grace Hopper"]
    assert "Ada Foreign" not in body
    assert "ada@globex.test" not in body
    only_foreign = admin_client.post(
        agent_url("transfers:export", agent), {"format": "csv", "id": [str(people["foreign"].pk)]}
    )
    assert len(rows(only_foreign)) == 1  # the header only


def test_exporting_an_empty_selection_goes_back_to_the_table_with_a_message(
    admin_client, agent, people
):
    response = admin_client.post(
        agent_url("transfers:export", agent), {"format": "csv", "id": ["nope"]}
    )
    assert response.status_code == 302
    assert response.url == list_url(agent)
    assert "Select at least one contact to export." in flashes(
        admin_client.get(response.url).content.decode()
    )


def test_exporting_more_than_the_selection_limit_is_refused(admin_client, agent, people, settings):
    # Django's own field limit (1,000 by default) would answer 400 before the view runs.
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = MAX_EXPORT_IDS + 10
    ids = [str(people["ada"].pk)] * (MAX_EXPORT_IDS + 1)
    response = admin_client.post(agent_url("transfers:export", agent), {"format": "csv", "id": ids})
    assert response.status_code == 302
    assert "Select at most 1,000 contacts, or export a view." in flashes(
        admin_client.get(response.url).content.decode()
    )


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_unknown_export_format_is_a_bad_request(admin_client, agent, people, method):
    response = getattr(admin_client, method)(
        agent_url("transfers:export", agent), {"format": "xml", "id": [str(people["ada"].pk)]}
    )
    assert response.status_code == 400
    assert response.content == b"Choose format csv, json or jsonl."


def test_an_invalid_filter_is_a_bad_request_that_names_it(admin_client, agent, people):
    response = admin_client.get(agent_url("transfers:export", agent), {"identity": "bogus"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert "'bogus' is not an identity level" in response.content.decode()


def test_staff_members_cannot_export_a_view_or_a_selection(staff_client, agent, people):
    url = agent_url("transfers:export", agent)
    for response in (
        staff_client.get(url, {"format": "csv"}),
        staff_client.post(url, {"format": "csv", "id": [str(people["ada"].pk)]}),
    ):
        assert response.status_code == 403
        assert b"Ada Lovelace" not in response.content
        assert b"ada@math.org" not in response.content


def test_an_export_runs_a_bounded_number_of_queries(
    admin_client, agent, django_assert_max_num_queries
):
    vip = TagFactory(agent=agent, name="vip")
    for i in range(60):
        ContactFactory(agent=agent, name=f"Person {i}").tags.add(vip)
    with django_assert_max_num_queries(12):
        body = text(admin_client.get(agent_url("transfers:export", agent), {"tag": "vip"}))
    assert len(body.splitlines()) == 61


# --- The contacts table ----------------------------------------------------------------------


def test_admins_see_the_import_and_export_controls_on_the_table(admin_client, agent, people):
    page = admin_client.get(list_url(agent), {"q": "ada"}).content.decode()
    export = agent_url("transfers:export", agent)
    assert f'<a class="btn" href="{agent_url("transfers:import", agent)}">Import</a>' in page
    assert '<summary class="btn">Export</summary>' in page
    assert f'href="{export}?q=ada&amp;format=csv"' in page
    assert "Export selected:" in page
    assert f'formaction="{export}" name="format" value="csv"' in page


def test_staff_members_see_neither_import_nor_export_on_the_table(staff_client, agent, people):
    page = staff_client.get(list_url(agent)).content.decode()
    assert "Ada Lovelace" in page
    assert agent_url("transfers:import", agent) not in page
    assert agent_url("transfers:export", agent) not in page
    assert '<summary class="btn">Export</summary>' not in page
    assert "Export selected:" not in page
