"""Bulk actions in a real browser (Debian's Chromium through Playwright): a support lead
selects the page, then every contact the view matches, tags them all, watches the job's
progress above the table and reads what it did; and selects two rows to merge them.

The job really runs: django_tasks_db's worker loop in a thread of the test process (see
tests/transfers/test_browser_import.py), in small batches so the progress bar moves.
"""

from __future__ import annotations

import os
import re
import time

import pytest
from playwright.sync_api import Page, expect

from contacts.models import Contact, ContactTag
from tests.browser import (
    DESKTOP,
    PHONE,
    demo_workspace,
    page_overflow,
    readme_shot,
    require_axe,
    serious_axe_violations,
    sign_in,
)
from tests.transfers.test_browser_import import TaskWorker, sqlite_lock_retries  # noqa: F401
from transfers.bulk import runner
from transfers.models import BulkJob

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# The CI machine has two cores: give the server, the worker and Chromium time to share them.
TIMEOUT = 60_000


@pytest.fixture
def task_worker(sqlite_lock_retries):  # noqa: F811
    worker = TaskWorker()
    yield worker
    worker.stop()
    assert not worker.errors, "the task worker crashed:\n" + "\n".join(worker.errors)


@pytest.fixture
def demo(db, settings, monkeypatch) -> dict:
    # Small, slowed batches: the progress bar is seen moving between the polls.
    settings.BULK_BATCH_ROWS = 7
    apply = runner.bulk_apply

    def slowly(**kwargs):
        time.sleep(0.4)
        return apply(**kwargs)

    monkeypatch.setattr(runner, "bulk_apply", slowly)
    return demo_workspace()


def _checked(page: Page, name: str, problems: list[str]) -> None:
    overflow = page_overflow(page)
    if overflow:
        problems.append(f"{name}: the page scrolls sideways {overflow}")
    problems.extend(f"{name}: {v}" for v in serious_axe_violations(page))


def _watch_progress(page: Page) -> None:
    """Record every value the job's progress bar shows; htmx swaps it in every second."""
    page.evaluate(
        """() => {
          window.__progress = [];
          const note = () => {
            const bar = document.querySelector('#bulk-progress');
            if (bar) window.__progress.push(Number(bar.getAttribute('aria-valuenow')));
          };
          new MutationObserver(note).observe(document.body, {childList: true, subtree: true});
        }"""
    )


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_select_every_matching_contact_tag_them_all_and_watch_the_job(
    live_server, browser, demo, task_worker, viewport
):
    require_axe()
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    server_errors: list[str] = []
    page.on(
        "response",
        lambda r: server_errors.append(f"{r.status} {r.url}") if r.status >= 500 else None,
    )
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    problems: list[str] = []
    agent = demo["agent"]
    total = Contact.objects.filter(agent=agent, deleted_at=None).count()
    assert total > 50

    sign_in(page, live_server.url, demo["user"].username)
    page.goto(f"{live_server.url}/a/{agent.public_id}/contacts/")
    bar = page.locator("[data-bulk-bar]")
    expect(bar).to_be_hidden()

    # The whole page, then every contact of the view.
    page.get_by_label("Select all contacts on this page").check()
    expect(bar).to_be_visible()
    expect(bar.locator("[data-bulk-count]")).to_have_text("50 selected")
    expect(bar).to_contain_text("All 50 contacts on this page are selected.")
    choose = bar.get_by_role("button", name=f"Select all {total} contacts matching this view")
    expect(choose).to_be_visible()
    _checked(page, "bulk bar", problems)
    choose.click()
    expect(bar.locator("[data-bulk-count]")).to_have_text(f"{total} selected")
    expect(bar).to_contain_text(f"All {total} contacts matching this view are selected.")
    expect(bar.get_by_role("button", name="Clear selection")).to_be_focused()
    expect(bar.get_by_role("button", name="Merge…")).to_be_hidden()
    _checked(page, "every matching contact selected", problems)
    if viewport == DESKTOP:
        readme_shot(page, "bulk-select-all.png")

    # Tag them all; the job waits for the worker, then its bar fills up.
    bar.get_by_label("Tag to add or remove").fill("spring-sale")
    bar.get_by_role("button", name="Add tag").click()
    notice = page.locator("#bulk-job")
    expect(notice).to_have_attribute("data-status", "queued")
    expect(notice).to_contain_text("Add the tag “spring-sale”")
    expect(notice.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "0")
    _checked(page, "bulk job queued", problems)
    assert dialogs == [f"Add this tag to every contact matching this view ({total})?"]
    job = BulkJob.objects.get(agent=agent)
    assert (job.action, job.query, job.estimated_total) == ("tag", "", total)
    _watch_progress(page)
    task_worker.start()
    if viewport == DESKTOP:
        page.wait_for_function(
            """() => {
              const bar = document.querySelector('#bulk-progress');
              const value = bar ? Number(bar.getAttribute('aria-valuenow')) : 0;
              return value > 0 && value < 100;
            }""",
            timeout=TIMEOUT,
        )
        readme_shot(page, "bulk-progress.png")
    expect(notice).to_have_attribute("data-status", "completed", timeout=TIMEOUT)
    expect(notice.locator("[data-bulk-done]")).to_have_text(
        f"Tagged {total} contacts with “spring-sale”."
    )
    seen = page.evaluate("() => window.__progress")
    assert any(0 < value < 100 for value in seen), seen
    assert seen == sorted(seen)
    assert ContactTag.objects.filter(tag__name="spring-sale").count() == total
    # The table shows the result without a reload, and the selection is gone.
    expect(page.locator("table.contacts tbody tr").first.locator(".tags-cell")).to_contain_text(
        "spring-sale"
    )
    expect(bar).to_be_hidden()
    _checked(page, "bulk action done", problems)
    if viewport == DESKTOP:
        readme_shot(page, "bulk-done.png")

    notice.get_by_role("button", name="Dismiss").click()
    expect(notice).to_have_attribute("data-status", "none")
    assert server_errors == []
    context.close()
    assert problems == [], "\n".join(problems)


def test_set_an_attribute_then_merge_two_selected_contacts(live_server, page: Page, demo):
    page.set_default_timeout(TIMEOUT)
    page.set_viewport_size(DESKTOP)
    agent = demo["agent"]
    sign_in(page, live_server.url, demo["user"].username)
    ada = demo["ada"]
    twin = Contact.objects.create(agent=agent, name="Ada L.", email="ada.l@example.com")
    page.goto(f"{live_server.url}/a/{agent.public_id}/contacts/?q=ada")
    merge = page.get_by_role("button", name="Merge…")
    page.get_by_label("Select Ada Lovelace").check()
    expect(merge).to_be_disabled()

    # Set an attribute on the selected row: the value input fits the attribute's type.
    page.get_by_text("Set attribute").click()
    page.get_by_label("Attribute").select_option("mrr")
    value = page.locator("[data-bulk-attr-value] [name=value]")
    expect(value).to_have_attribute("type", "number")
    page.get_by_label("Attribute").select_option("plan")
    expect(page.locator("[data-bulk-attr-value] select[name=value]")).to_be_visible()
    page.get_by_label("Attribute").select_option("mrr")
    page.locator("[data-bulk-attr-value] [name=value]").fill("250")
    page.get_by_role("button", name="Set value").click()
    expect(page.locator(".notice")).to_have_text("Set MRR (USD) to “250” on 1 contact.")
    ada.refresh_from_db()
    assert ada.attributes["mrr"] == 250

    page.get_by_label("Select Ada Lovelace").check()
    page.get_by_label("Select Ada L.").check()
    expect(merge).to_be_enabled()
    merge.click()
    expect(page).to_have_url(
        re.compile(rf"/contacts/merge/\?primary={ada.pk}&secondary={twin.pk}$")
    )
    expect(page.get_by_role("heading", level=1)).to_contain_text("Merge")
    expect(page.locator("body")).to_contain_text("Ada L.")
