"""The contacts import in a real browser (Debian's Chromium through Playwright).

An admin uploads a CSV, fixes one column's mapping, validates it with a dry run, imports it,
watches the progress bar reach 100% and downloads the rows that were not imported. The
background task really runs: a django_tasks_db worker loop in a thread of the test process,
against the test database (shared in-process on SQLite, a real server on PostgreSQL).
"""

from __future__ import annotations

import csv
import io
import os
import re
import threading
import time
import traceback

import pytest
from django.db import OperationalError, connections
from django.db.backends.signals import connection_created
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from playwright.sync_api import Page, expect

from attributes.services import attribute_create
from contacts.models import Contact
from tests.factories import AgentFactory, MembershipFactory, UserFactory, WorkspaceFactory
from transfers.models import ContactImport
from workspaces.models import Membership
from workspaces.services import identity_secret_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# See test_dashboard.py: Playwright's sync API keeps an event loop running in this thread.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PASSWORD = "correct horse battery"
# The CI machine has two cores: give the server, the worker and Chromium time to share them.
TIMEOUT = 60_000

HEADER = ["Customer ID", "Full name", "E-mail", "Plan code", "Notes"]
ROWS = [
    ["cus_001", "Ada Lovelace", "ada@example.com", "42", "First customer"],
    ["cus_002", "Grace Hopper", "grace@example.com", "99", ""],
    ["cus_003", "Typo Person", "not-an-email", "10", "bad address"],
    ["cus_004", "Alan Turing", "alan@example.com", "7.5", ""],
    ["cus_005", "Bad Number", "bad.number@example.com", "abc", ""],
    ["cus_006", "Katherine Johnson", "katherine@example.com", "1200", "Pro"],
]
GOOD = {"cus_001": 42, "cus_002": 99, "cus_004": 7.5, "cus_006": 1200}


def _csv_bytes() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(ROWS)
    return out.getvalue().encode("utf-8")


def _retry_while_locked(execute, sql, params, many, context):
    """Run a statement again while SQLite says "database table is locked".

    On SQLite the test database lives in memory in shared-cache mode, and the live server's
    request threads, the test and the worker thread each open a connection to it. Between
    connections of one shared cache a conflicting lock fails at once with SQLITE_LOCKED (the
    busy timeout does not apply), where processes sharing a database file would wait for each
    other. A statement that failed so did nothing: it is retried until the other side's
    transaction ends.
    """
    deadline = time.monotonic() + 30
    while True:
        try:
            return execute(sql, params, many, context)
        except OperationalError as exc:
            if "is locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _add_retry(connection) -> None:
    if connection.vendor == "sqlite" and _retry_while_locked not in connection.execute_wrappers:
        connection.execute_wrappers.append(_retry_while_locked)


def _on_connection_created(sender, connection, **kwargs) -> None:
    _add_retry(connection)


@pytest.fixture
def sqlite_lock_retries(db):
    """SQLite connections opened meanwhile, in any thread, wait out each other's locks."""
    connection_created.connect(_on_connection_created)
    _add_retry(connections["default"])
    yield
    connection_created.disconnect(_on_connection_created)
    wrappers = connections["default"].execute_wrappers
    if _retry_while_locked in wrappers:
        wrappers.remove(_retry_while_locked)


class TaskWorker:
    """django_tasks_db's worker loop in a daemon thread, started and stopped by the test."""

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.thread: threading.Thread | None = None
        self.errors: list[str] = []

    def start(self) -> None:
        assert self.thread is None, "the worker is already running"
        self.worker = Worker(
            queue_names=["default"],
            interval=0.1,
            batch=False,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id="browser-test",
            excluded_queue_names=[],
        )
        self.thread = threading.Thread(
            target=self._serve, args=(self.worker,), name="db-worker", daemon=True
        )
        self.thread.start()

    def _serve(self, worker: Worker) -> None:
        try:
            worker.run()
        except BaseException:  # reported by the fixture, not lost with the thread
            self.errors.append(traceback.format_exc())
        finally:
            connections.close_all()

    def stop(self) -> None:
        if self.thread is None:
            return
        self.worker.running = False
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the task worker did not stop"
        self.thread = self.worker = None


@pytest.fixture
def task_worker(sqlite_lock_retries):
    """The background worker; stopped and checked (with its own connections closed) after."""
    worker = TaskWorker()
    yield worker
    worker.stop()
    assert not worker.errors, "the task worker crashed:\n" + "\n".join(worker.errors)


@pytest.fixture
def account(db, settings, tmp_path) -> dict:
    """An agent with a number attribute `mrr`, and its workspace admin who signs in."""
    settings.MEDIA_ROOT = tmp_path / "media"
    # Small batches: the progress bar moves row by row instead of in one jump.
    settings.IMPORT_BATCH_ROWS = 2
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    agent = AgentFactory(workspace=workspace, name="Support")
    identity_secret_create(agent=agent)
    attribute_create(agent=agent, key="mrr", label="MRR", type="number")
    user = UserFactory(username="admin@acme.test", password=PASSWORD)
    MembershipFactory(user=user, workspace=workspace, role=Membership.Role.ADMIN)
    return {"agent": agent, "user": user}


def _sign_in(page: Page, live_server, account) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", account["user"].username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/a/{account['agent'].public_id}/contacts/")


def _watch_progress(page: Page) -> None:
    """Record every value the progress bar shows; htmx swaps it in without reloading."""
    page.evaluate(
        """() => {
          window.__progress = [];
          const note = () => {
            const bar = document.querySelector('#import-progress');
            if (bar) window.__progress.push(Number(bar.getAttribute('value')));
          };
          note();
          new MutationObserver(note).observe(document.body, {childList: true, subtree: true});
        }"""
    )


def test_upload_map_dry_run_import_and_download_the_failed_rows(
    live_server, page: Page, account, task_worker
):
    page.set_default_timeout(TIMEOUT)
    server_errors: list[str] = []
    page.on(
        "response",
        lambda r: server_errors.append(f"{r.status} {r.url}") if r.status >= 500 else None,
    )
    agent = account["agent"]
    _sign_in(page, live_server, account)

    # Upload.
    page.goto(f"{live_server.url}/a/{agent.public_id}/contacts/import/")
    page.set_input_files(
        "input[type=file]",
        files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": _csv_bytes()}],
    )
    page.get_by_role("button", name="Upload and map columns").click()
    expect(page).to_have_url(re.compile(r"/contacts/import/[0-9a-f-]{36}/$"))
    job = ContactImport.objects.get(agent=agent)
    assert job.filename == "people.csv"
    assert job.columns == HEADER
    job_box = page.locator("#import-job")
    expect(job_box).to_have_attribute("data-status", "uploaded")

    # The automatic mapping; "Plan code" is not recognised, so it is mapped by hand.
    def select(column: str):
        return page.locator(f'tr[data-column="{column}"] select[name^="map-"]')

    expect(page.locator("table.mapping-table tbody tr")).to_have_count(len(HEADER))
    expect(select("Customer ID")).to_have_value("external_id")
    expect(select("Full name")).to_have_value("name")
    expect(select("E-mail")).to_have_value("email")
    expect(select("Notes")).to_have_value("ignore")
    expect(select("Plan code")).to_have_value("ignore")
    expect(page.locator('tr[data-column="Plan code"]')).to_contain_text("42 · 99 · 10")
    select("Plan code").select_option("attr:mrr")
    expect(select("Plan code")).to_have_value("attr:mrr")

    # The dry run, run by the worker while the page polls.
    task_worker.start()
    page.get_by_role("button", name="Validate (dry run)").click()
    expect(job_box).to_have_attribute("data-status", "completed", timeout=TIMEOUT)
    summary = page.locator("[data-summary]")
    expect(summary).to_contain_text("Dry run finished: nothing was written")
    expect(summary.locator("dd[data-count=created]")).to_have_text("4")
    expect(summary.locator("dd[data-count=updated]")).to_have_text("0")
    expect(summary.locator("dd[data-count=failed]")).to_have_text("2")
    expect(summary.locator("dd[data-count=skipped]")).to_have_text("0")
    # The rows with problems, numbered as in the file (the header is row 1).
    issues = page.locator("table.issues-table tbody tr")
    expect(issues).to_have_count(2)
    expect(page.locator('tr[data-row="4"]')).to_contain_text("not a valid email")
    expect(page.locator('tr[data-row="4"]')).to_contain_text("not-an-email")
    expect(page.locator('tr[data-row="6"]')).to_contain_text("Plan code")
    expect(page.locator('tr[data-row="6"]')).to_contain_text("not a number")
    # The adjusted mapping was kept, and nothing was written.
    expect(select("Plan code")).to_have_value("attr:mrr")
    assert ContactImport.objects.get(pk=job.pk).mapping["Plan code"] == "attr:mrr"
    assert Contact.objects.filter(agent=agent).count() == 0

    # The import. The worker is paused first, so the page is seen queued at 0% and then
    # follows the job by polling until the bar is full.
    task_worker.stop()
    import_button = page.locator("button[name=action][value=import]")
    expect(import_button).to_have_text("Import 4 contacts (skip 2 with errors)")
    import_button.click()
    expect(job_box).to_have_attribute("data-status", "queued")
    expect(job_box).to_contain_text("Importing…")
    progress = page.locator("#import-progress")
    expect(progress).to_have_attribute("value", "0")
    assert Contact.objects.filter(agent=agent).count() == 0
    _watch_progress(page)
    task_worker.start()
    expect(progress).to_have_attribute("value", "100", timeout=TIMEOUT)
    expect(job_box).to_have_attribute("data-status", "completed")
    expect(summary).to_contain_text("Import finished")
    expect(summary.locator("dd[data-count=created]")).to_have_text("4")
    expect(summary.locator("dd[data-count=failed]")).to_have_text("2")
    expect(page.locator("#mapping-form")).to_have_count(0)
    seen = page.evaluate("window.__progress")  # still there: the page was never reloaded
    assert seen[0] == 0
    assert seen[-1] == 100
    assert seen == sorted(seen), seen

    contacts = {c.external_id: c for c in Contact.objects.filter(agent=agent)}
    assert set(contacts) == set(GOOD)
    for external_id, mrr in GOOD.items():
        assert contacts[external_id].attributes["mrr"] == mrr
        assert "notes" not in contacts[external_id].attributes
    assert contacts["cus_001"].name == "Ada Lovelace"
    assert contacts["cus_001"].email == "ada@example.com"

    # The failed rows: the file's own columns plus why each row was not imported.
    link = page.locator("a[data-failed-rows]")
    expect(link).to_have_text("Download the 2 rows not imported")
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename == "people-failed-rows.csv"
    with open(download.path(), encoding="utf-8", newline="") as file:
        failed = list(csv.reader(file))
    assert failed[0] == [*HEADER, "error"]
    assert [row[:-1] for row in failed[1:]] == [ROWS[2], ROWS[4]]
    assert "E-mail" in failed[1][-1]
    assert "not a valid email" in failed[1][-1]
    assert "Plan code" in failed[2][-1]
    assert "not a number" in failed[2][-1]

    task_worker.stop()
    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}
    assert DBTaskResult.objects.count() == 2
    assert not server_errors, server_errors
