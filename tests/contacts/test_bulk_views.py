"""The table's bulk bar through the dashboard: actions on the selected rows, "select all
matching" starting a background job, Merge for two rows, and the job notice above the
table (its progress, its buttons, and who may see and use them)."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from contacts.models import AuditEvent, Contact, ContactTag, Identity, TablePreference
from contacts.selectors import EXACT_COUNT_LIMIT
from tests.factories import ContactFactory, TagFactory, UserFactory
from tests.helpers import HX, agent_url, list_url
from transfers.bulk.runner import bulk_job_run
from transfers.models import BulkJob, BulkJobContact

pytestmark = pytest.mark.django_db


def bulk(client, agent, data: dict, **extra):
    return client.post(agent_url("transfers:bulk", agent), data, **extra)


def panel(client, agent, **extra):
    return client.get(agent_url("transfers:bulk_jobs", agent), **(extra or HX))


def job_url(job: BulkJob, agent=None) -> str:
    agent = agent or job.agent
    return reverse(
        "transfers:bulk_job", kwargs={"agent_public_id": agent.public_id, "job_id": job.pk}
    )


def notice(client, agent) -> str:
    html = client.get(list_url(agent)).content.decode()
    found = re.search(r'<div class="flash ([^"]*) notice" role="(\w+)">\s*<span>(.*?)</span>', html)
    return f"{found[1]} {found[2]}: {unescape(found[3])}" if found else ""


def tags_of(contact) -> set[str]:
    return set(contact.tags.values_list("name", flat=True))


# --- Selected rows ------------------------------------------------------------------------------


def test_add_and_remove_a_tag_on_the_selected_rows(staff_client, agent):
    a, b, c = ContactFactory.create_batch(3, agent=agent)
    response = bulk(staff_client, agent, {"action": "tag", "tag": "vip", "id": [a.pk, b.pk]})
    assert response.status_code == 302
    assert notice(staff_client, agent) == "flash-success status: Tagged 2 contacts with “vip”."
    bulk(staff_client, agent, {"action": "tag", "tag": "VIP", "id": [a.pk, c.pk]})
    assert notice(staff_client, agent) == (
        "flash-success status: Tagged 1 contact with “vip” (1 already had it)."
    )
    response = bulk(staff_client, agent, {"action": "untag", "tag": "vip", "id": [a.pk, b.pk]})
    assert (tags_of(a), tags_of(b), tags_of(c)) == (set(), set(), {"vip"})
    assert notice(staff_client, agent) == (
        "flash-success status: Removed the tag “vip” from 2 contacts."
    )


def test_set_an_attribute_on_the_selected_rows(staff_client, agent, schema):
    a, b = ContactFactory.create_batch(2, agent=agent, attributes={})
    data = {"action": "set_attribute", "attribute": "mrr", "value": "1,5", "id": [a.pk, b.pk]}
    bulk(staff_client, agent, data)
    assert notice(staff_client, agent) == "flash-error alert: MRR must be a number."
    assert not Contact.objects.filter(attributes__has_key="mrr").exists()
    bulk(staff_client, agent, {**data, "value": "1500"})
    assert notice(staff_client, agent) == "flash-success status: Set MRR to “1500” on 2 contacts."
    assert list(Contact.objects.filter(agent=agent).values_list("attributes", flat=True)) == [
        {"mrr": 1500},
        {"mrr": 1500},
    ]
    assert AuditEvent.objects.filter(changes__has_key="attributes.mrr").count() == 2
    # Staff cannot write a secure attribute; nothing changes.
    bulk(staff_client, agent, {**data, "attribute": "ltv", "value": "9"})
    assert "only admins" in notice(staff_client, agent)
    assert not Contact.objects.filter(attributes__has_key="ltv").exists()


def test_admins_may_set_a_secure_attribute(admin_client, agent, schema):
    contact = ContactFactory(agent=agent, attributes={})
    data = {"action": "set_attribute", "attribute": "ltv", "value": "9", "id": [contact.pk]}
    bulk(admin_client, agent, data)
    contact.refresh_from_db()
    assert contact.attributes == {"ltv": 9}


def test_delete_offers_undo_for_exactly_the_contacts_it_deleted(staff_client, agent):
    live = ContactFactory(agent=agent)
    gone = ContactFactory(agent=agent, deleted_at=timezone.now())
    response = bulk(staff_client, agent, {"action": "delete", "id": [live.pk, gone.pk]}, **HX)
    html = response.content.decode()
    assert "Deleted 1 contact (1 were already deleted)." in html
    undo = html[html.index("Undo") - 600 : html.index("Undo")]
    assert f'name="id" value="{live.pk}"' in undo
    assert str(gone.pk) not in undo


def test_the_selection_must_be_one_page_at_most(staff_client, agent, monkeypatch):
    from transfers.bulk import selection as bulk_views

    monkeypatch.setattr(bulk_views, "MAX_BULK", 2)
    contact = ContactFactory(agent=agent)
    ids = [contact.pk] + [f"00000000-0000-0000-0000-{n:012d}" for n in range(2)]
    bulk(staff_client, agent, {"action": "delete", "id": ids})
    assert notice(staff_client, agent) == (
        "flash-error alert: Select at most 2 contacts, or select all matching."
    )
    contact.refresh_from_db()
    assert contact.deleted_at is None


def test_bulk_refuses_unknown_scopes_and_actions(staff_client, agent):
    contact = ContactFactory(agent=agent)
    assert (
        bulk(staff_client, agent, {"action": "tag", "scope": "world", "tag": "x"}).status_code
        == 400
    )
    assert bulk(staff_client, agent, {"action": "erase", "id": [contact.pk]}).status_code == 400
    assert not BulkJob.objects.exists()


# --- Every contact of the view ------------------------------------------------------------------


def test_select_all_matching_queues_a_job_on_the_views_filters(staff_client, agent, staff_user):
    vip = TagFactory(agent=agent, name="vip")
    for contact in ContactFactory.create_batch(3, agent=agent):
        contact.tags.add(vip)
    ContactFactory(agent=agent)
    query = "tag=vip&ordering=-name&cursor=abc&at=3&per_page=25&cols=email"
    response = bulk(
        staff_client,
        agent,
        {"action": "untag", "tag": "vip", "scope": "all", "query": query, "id": ["ignored"]},
        **HX,
    )
    assert response.status_code == 200
    assert json.loads(response["HX-Trigger"]) == {"bulkJobStarted": {}}
    assert response.content.decode().lstrip().startswith('<div id="contact-table"')
    job = BulkJob.objects.get()
    assert (job.agent, job.created_by, job.action, job.params) == (
        agent,
        staff_user,
        "untag",
        {"tag": "vip"},
    )
    assert job.query == "tag=vip"
    assert (job.estimated_total, job.estimate_exact, job.status) == (3, True, "queued")
    assert ContactTag.objects.count() == 3  # nothing yet: the worker does it
    bulk_job_run(job.pk)
    assert ContactTag.objects.count() == 0


def test_without_htmx_the_table_says_the_job_started(staff_client, agent):
    ContactFactory.create_batch(2, agent=agent, name="Ada")
    response = bulk(
        staff_client, agent, {"action": "tag", "tag": "x", "scope": "all", "query": "q=ada"}
    )
    assert response.status_code == 302
    assert response.url == list_url(agent) + "?q=ada"
    assert notice(staff_client, agent) == (
        "flash-success status: Add the tag “x”: started on 2 contacts."
    )


def test_the_job_runs_once_the_request_commits(
    staff_client, agent, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    contacts = ContactFactory.create_batch(3, agent=agent)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        bulk(staff_client, agent, {"action": "delete", "scope": "all", "query": ""})
    assert len(callbacks) == 1
    job = BulkJob.objects.get()
    assert (job.status, job.changed_count) == ("completed", 3)
    assert not Contact.objects.filter(pk__in=[c.pk for c in contacts], deleted_at=None).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "tag", "tag": ""}, "Type the tag to add."),
        ({"action": "set_attribute", "attribute": "mrr", "value": "x"}, "MRR must be a number."),
        ({"action": "tag", "tag": "x", "query": "attr.nope=1"}, "No attribute with key 'nope'."),
        ({"action": "tag", "tag": "x", "query": "q=nobody"}, "No contact matches this view."),
    ],
    ids=["no tag", "bad value", "stale filter", "no match"],
)
def test_a_refused_job_says_why_and_queues_nothing(staff_client, agent, schema, data, message):
    ContactFactory(agent=agent, name="Ada")
    bulk(staff_client, agent, {"scope": "all", "query": "", **data})
    assert notice(staff_client, agent) == f"flash-error alert: {message}"
    assert not BulkJob.objects.exists()


def test_a_second_job_waits_for_the_first(staff_client, agent):
    ContactFactory(agent=agent)
    bulk(staff_client, agent, {"action": "tag", "tag": "x", "scope": "all"})
    bulk(staff_client, agent, {"action": "delete", "scope": "all"})
    assert notice(staff_client, agent) == (
        "flash-error alert: Your previous bulk action is still running; wait for it to finish or "
        "stop it."
    )
    assert BulkJob.objects.count() == 1


def test_a_large_view_is_queued_with_the_tables_estimate(staff_client, agent, monkeypatch):
    ContactFactory(agent=agent)
    from transfers.bulk import selection as bulk_views

    monkeypatch.setattr(bulk_views, "table_count", lambda **kw: (1_200_000, False))
    bulk(staff_client, agent, {"action": "delete", "scope": "all"})
    job = BulkJob.objects.get()
    assert (job.estimated_total, job.estimate_exact) == (1_200_000, False)
    assert notice(staff_client, agent) == (
        "flash-success status: Delete: started on about 1,200,000 contacts."
    )


def test_bulk_needs_a_member_of_the_workspace(client, staff_client, agent, other_agent):
    theirs = ContactFactory(agent=other_agent)
    url = agent_url("transfers:bulk", agent)
    assert client.post(url, {"action": "delete", "scope": "all"}).status_code == 302
    assert staff_client.get(url).status_code == 405
    other = bulk(staff_client, other_agent, {"action": "delete", "scope": "all"})
    assert other.status_code == 404
    assert (
        bulk(staff_client, other_agent, {"action": "delete", "id": [theirs.pk]}).status_code == 404
    )
    assert not BulkJob.objects.exists()
    theirs.refresh_from_db()
    assert theirs.deleted_at is None


# --- Merge two selected rows ---------------------------------------------------------------------


def test_two_selected_contacts_open_the_merge_preview_keeping_the_more_trusted(staff_client, agent):
    visitor = ContactFactory(agent=agent, identity=Identity.SELF_REPORTED, external_id=None)
    verified = ContactFactory(agent=agent, identity=Identity.VERIFIED, external_id="u-1")
    response = bulk(staff_client, agent, {"action": "merge", "id": [visitor.pk, verified.pk]})
    merge = agent_url("contacts:merge", agent)
    assert response.status_code == 302
    assert response.url == f"{merge}?primary={verified.pk}&secondary={visitor.pk}"
    page = staff_client.get(response.url)
    assert page.status_code == 200
    assert verified.display_name in page.content.decode()
    # From the htmx bar, the browser is sent there.
    hx = bulk(staff_client, agent, {"action": "merge", "id": [verified.pk, visitor.pk]}, **HX)
    assert hx["HX-Redirect"] == f"{merge}?primary={verified.pk}&secondary={visitor.pk}"


def test_of_two_equal_contacts_the_older_is_kept(staff_client, agent):
    older = ContactFactory(agent=agent, created_at=timezone.now() - timezone.timedelta(days=3))
    newer = ContactFactory(agent=agent)
    response = bulk(staff_client, agent, {"action": "merge", "id": [newer.pk, older.pk]})
    assert response.url.endswith(f"?primary={older.pk}&secondary={newer.pk}")


@pytest.mark.parametrize("count", [1, 3])
def test_merge_needs_exactly_two_of_the_agents_live_contacts(
    staff_client, agent, other_agent, count
):
    mine = ContactFactory.create_batch(count, agent=agent)
    bulk(staff_client, agent, {"action": "merge", "id": [c.pk for c in mine]})
    assert notice(staff_client, agent) == "flash-error alert: Select exactly two contacts to merge."
    theirs = ContactFactory(agent=other_agent)
    response = bulk(staff_client, agent, {"action": "merge", "id": [mine[0].pk, theirs.pk]})
    assert response.status_code == 302
    assert response.url == list_url(agent)
    gone = ContactFactory(agent=agent, deleted_at=timezone.now())
    response = bulk(staff_client, agent, {"action": "merge", "id": [mine[0].pk, gone.pk]})
    assert response.url == list_url(agent)


# --- The table page -----------------------------------------------------------------------------


def _bar(html: str) -> str:
    return html[html.index("data-bulk-bar") : html.index('<div class="table-wrap">')]


def test_the_bar_offers_every_matching_contact_when_there_are_more_than_a_page(
    staff_client, agent, schema
):
    ContactFactory.create_batch(30, agent=agent)
    html = staff_client.get(list_url(agent), {"per_page": "25"}).content.decode()
    bar = _bar(html)
    assert "All 25 contacts on this page are selected." in bar
    assert "Select all 30 contacts matching this view" in bar
    assert 'name="scope" value="selected"' in bar
    for action in ("tag", "untag", "set_attribute", "merge", "delete"):
        assert f'name="action" value="{action}"' in bar
    # Staff may set every attribute but the secure one.
    options = re.findall(r'<option value="(\w+)" data-type', bar)
    assert options == ["plan", "mrr", "beta", "signup", "last_order", "website", "city"]
    # Everything fits one page: nothing more to select.
    assert "matching this view" not in _bar(staff_client.get(list_url(agent)).content.decode())


def test_an_estimated_view_is_offered_as_about_so_many(staff_client, agent, monkeypatch):
    ContactFactory.create_batch(3, agent=agent)
    from contacts.views import table as table_views

    monkeypatch.setattr(table_views, "table_count", lambda **kw: (1_234_567, False))
    bar = _bar(staff_client.get(list_url(agent)).content.decode())
    assert "Select all contacts matching this view (about 1.2M)" in bar
    assert 'data-total-text="about 1.2M"' in bar


def test_admins_see_secure_attributes_and_export_all_matching(admin_client, agent, schema):
    ContactFactory.create_batch(3, agent=agent, name="Ada")
    html = admin_client.get(list_url(agent), {"per_page": "25", "q": "ada"}).content.decode()
    bar = _bar(html)
    assert '<option value="ltv"' in bar
    export = agent_url("transfers:export", agent)
    assert f'href="{export}?q=ada&amp;format=csv"' in bar


def test_the_deleted_view_offers_restore_only(staff_client, agent):
    ContactFactory(agent=agent, deleted_at=timezone.now())
    bar = _bar(staff_client.get(list_url(agent), {"deleted": "true"}).content.decode())
    assert 'value="restore"' in bar
    assert 'value="delete"' not in bar
    assert 'value="merge"' not in bar


def test_the_page_asks_for_the_job_notice_once_loaded(staff_client, agent):
    html = staff_client.get(list_url(agent)).content.decode()
    slot = re.search(r'<div id="bulk-job"[^>]*>', html, re.S)[0]
    assert f'hx-get="{agent_url("transfers:bulk_jobs", agent)}"' in slot
    assert 'hx-trigger="load, bulkJobStarted from:body"' in slot
    assert "bulk.js" in html
    # The table fragment does not carry it (the notice keeps polling across table swaps).
    fragment = staff_client.get(list_url(agent), **HX).content.decode()
    assert 'id="bulk-job"' not in fragment


def test_rows_per_page_stay_remembered(staff_client, agent, staff_user):
    ContactFactory.create_batch(30, agent=agent)
    staff_client.post(agent_url("contacts:table_settings", agent), {"per_page": "25"})
    assert TablePreference.objects.get(user=staff_user, agent=agent).page_size == 25
    html = staff_client.get(list_url(agent)).content.decode()
    assert html.count("data-row-check") == 25
    assert "All 25 contacts on this page are selected." in html


def test_the_table_with_the_bulk_bar_runs_a_flat_number_of_queries(
    staff_client, agent, schema, django_assert_num_queries
):
    ContactFactory.create_batch(3, agent=agent)
    url = list_url(agent)
    staff_client.get(url)
    with CaptureQueriesContext(connection) as baseline:
        staff_client.get(url)
    ContactFactory.create_batch(40, agent=agent)
    with django_assert_num_queries(len(baseline.captured_queries)):
        response = staff_client.get(url)
    assert response.content.decode().count("data-row-check") == 43


# --- The job notice -----------------------------------------------------------------------------


def _job(agent, user, **fields) -> BulkJob:
    defaults = {"action": "tag", "params": {"tag": "vip"}, "query": "q=ada"}
    return BulkJob.objects.create(agent=agent, created_by=user, **{**defaults, **fields})


def test_no_job_no_notice_and_no_polling(staff_client, agent):
    html = panel(staff_client, agent).content.decode()
    assert 'data-status="none"' in html
    assert "every 1s" not in html
    assert "<section" not in html


def test_a_running_job_shows_its_progress_and_polls(staff_client, agent, staff_user):
    _job(agent, staff_user, status="running", estimated_total=40, processed_count=10,
         changed_count=9, heartbeat_at=timezone.now())  # fmt: skip
    html = panel(staff_client, agent).content.decode()
    assert 'hx-trigger="every 1s, bulkJobStarted from:body"' in html
    assert 'role="progressbar"' in html
    assert 'aria-valuenow="25"' in html
    assert "Add the tag “vip”" in html
    assert "25% · 10 of 40 contacts · 9 changed" in html
    assert f'href="{list_url(agent)}?q=ada"' in html
    assert 'value="cancel"' in html


def test_a_large_job_counts_against_an_estimate(staff_client, agent, staff_user):
    _job(agent, staff_user, status="running", estimated_total=1_200_000, estimate_exact=False,
         processed_count=300_000, changed_count=299_500, heartbeat_at=timezone.now())  # fmt: skip
    html = panel(staff_client, agent).content.decode()
    assert "25% · 300,000 of about 1.2M contacts · 299,500 changed" in html


def test_a_queued_job_no_worker_takes_says_so(staff_client, agent, staff_user, settings):
    long_ago = timezone.now() - timezone.timedelta(seconds=settings.IMPORT_STALE_SECONDS + 5)
    _job(agent, staff_user, status="queued", heartbeat_at=long_ago)
    html = panel(staff_client, agent).content.decode()
    assert "Waiting for the background worker…" in html
    assert "No background worker has picked this up yet." in html


def test_a_finished_job_says_what_it_did_and_stops_polling(staff_client, agent, staff_user):
    _job(agent, staff_user, status="completed", processed_count=5, changed_count=3,
         finished_at=timezone.now())  # fmt: skip
    html = panel(staff_client, agent).content.decode()
    assert "every 1s" not in html
    assert 'data-status="completed"' in html
    assert "Tagged 3 contacts with “vip” (2 already had it)." in html
    assert 'value="dismiss"' in html
    assert 'value="undo"' not in html


def test_a_finished_delete_offers_undo_and_undo_restores(staff_client, agent, staff_user):
    contacts = ContactFactory.create_batch(2, agent=agent, deleted_at=timezone.now())
    job = _job(agent, staff_user, action="delete", params={}, status="completed",
               processed_count=2, changed_count=2)  # fmt: skip
    BulkJobContact.objects.bulk_create([BulkJobContact(job=job, contact_id=c.pk) for c in contacts])
    html = panel(staff_client, agent).content.decode()
    assert "Deleted 2 contacts." in html
    assert 'value="undo"' in html
    response = staff_client.post(job_url(job), {"op": "undo"}, **HX)
    html = response.content.decode()
    undo = BulkJob.objects.get(undo_of=job)
    assert "Undo the bulk delete" in html
    assert "every 1s" in html
    bulk_job_run(undo.pk)
    html = panel(staff_client, agent).content.decode()
    assert "Restored 2 contacts." in html
    assert Contact.objects.filter(deleted_at__isnull=True).count() == 2


def test_a_failed_job_shows_why_and_can_resume(staff_client, agent, staff_user):
    job = _job(agent, staff_user, status="failed", processed_count=4, changed_count=4,
               error="The job stopped unexpectedly after 4 contacts.")  # fmt: skip
    html = panel(staff_client, agent).content.decode()
    assert "The job stopped unexpectedly after 4 contacts." in html
    assert "Done before it stopped: Tagged 4 contacts with “vip”." in html
    response = staff_client.post(job_url(job), {"op": "resume"}, **HX)
    assert response.status_code == 200
    job.refresh_from_db()
    assert (job.status, job.error) == ("queued", "")


def test_stop_and_dismiss_from_the_notice(staff_client, agent, staff_user):
    job = _job(agent, staff_user, status="running", heartbeat_at=timezone.now())
    html = staff_client.post(job_url(job), {"op": "cancel"}, **HX).content.decode()
    assert "stopping after this batch…" in html
    job.refresh_from_db()
    assert job.cancel_requested
    # Dismissing a running job is refused (409) and the notice says why.
    response = staff_client.post(job_url(job), {"op": "dismiss"}, **HX)
    assert response.status_code == 409
    assert "The bulk action is still running; stop it first." in response.content.decode()
    BulkJob.objects.filter(pk=job.pk).update(
        status="cancelled", finished_at=timezone.now(), processed_count=2500, changed_count=2400
    )
    assert (
        "Stopped after 2,500 contacts. Tagged 2,400 contacts with “vip” (100 already had it)."
        in panel(staff_client, agent).content.decode()
    )
    response = staff_client.post(job_url(job), {"op": "dismiss"})
    assert response.status_code == 302
    assert response.url == list_url(agent)
    job.refresh_from_db()
    assert job.dismissed_at is not None
    assert 'data-status="none"' in panel(staff_client, agent).content.decode()


def test_the_notice_is_the_members_own(staff_client, admin_client, agent, staff_user, other_agent):
    job = _job(agent, staff_user, status="running", heartbeat_at=timezone.now())
    assert 'data-status="none"' in panel(admin_client, agent).content.decode()
    assert admin_client.post(job_url(job), {"op": "cancel"}).status_code == 404
    # Another workspace's agent, or this job under it, answers 404.
    assert panel(staff_client, other_agent).status_code == 404
    assert staff_client.post(job_url(job, other_agent), {"op": "cancel"}).status_code == 404
    job.refresh_from_db()
    assert not job.cancel_requested


def test_the_notice_views_check_method_sign_in_and_operation(
    client, staff_client, agent, staff_user
):
    job = _job(agent, staff_user, status="running", heartbeat_at=timezone.now())
    assert staff_client.get(job_url(job)).status_code == 405
    assert staff_client.post(agent_url("transfers:bulk_jobs", agent)).status_code == 405
    assert client.get(agent_url("transfers:bulk_jobs", agent), **HX).status_code == 302
    assert client.post(job_url(job), {"op": "cancel"}).status_code == 302
    assert staff_client.post(job_url(job), {"op": "explode"}).status_code == 400
    # A browser (not htmx) asking for the notice gets the table.
    plain = staff_client.get(agent_url("transfers:bulk_jobs", agent))
    assert (plain.status_code, plain.url) == (302, list_url(agent))


def test_the_notice_renders_names_as_text(staff_client, agent, staff_user):
    _job(agent, staff_user, status="completed", params={"tag": "<script>x</script>"},
         processed_count=1, changed_count=1)  # fmt: skip
    html = panel(staff_client, agent).content.decode()
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html


def test_the_notice_runs_a_flat_number_of_queries(
    staff_client, agent, staff_user, django_assert_max_num_queries
):
    _job(agent, staff_user, status="running", heartbeat_at=timezone.now(), processed_count=3)
    with django_assert_max_num_queries(6):
        panel(staff_client, agent)


def test_another_member_of_the_workspace_runs_their_own_jobs(agent, workspace, client):
    from tests.factories import MembershipFactory

    user = UserFactory(username="second@acme.test")
    MembershipFactory(user=user, workspace=workspace)
    client.force_login(user)
    ContactFactory(agent=agent)
    bulk(client, agent, {"action": "tag", "tag": "x", "scope": "all"})
    assert BulkJob.objects.get().created_by == user
    assert EXACT_COUNT_LIMIT > 1
