"""Bulk actions on every contact of a view, as background jobs (transfers.bulk): batches in
id order with their progress, the view read again when the job runs, stop, undo of a
delete, resume after a crash, and the member's access checked at every batch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attributes.services import attribute_delete
from contacts.models import AuditEvent, Contact, ContactTag, Tag
from core.errors import ConflictError
from tests.factories import ContactFactory, TagFactory
from transfers import tasks
from transfers.bulk import actions as contacts_bulk
from transfers.bulk import runner
from transfers.bulk.actions import BackgroundRequest, BulkAction
from transfers.bulk.runner import bulk_job_run
from transfers.bulk.services import (
    bulk_job_can_undo,
    bulk_job_cancel,
    bulk_job_resume,
    bulk_job_start,
    bulk_job_undo,
    bulk_jobs_recover_stalled,
)
from transfers.models import BulkJob, BulkJobContact
from workspaces.models import Membership

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small_batches(settings):
    settings.BULK_BATCH_ROWS = 2


def start(agent, user, action: BulkAction, query: str = "", estimate: int = 0) -> BulkJob:
    return bulk_job_start(
        BackgroundRequest(agent=agent, user=user, action=action, query=query, estimate=estimate)
    )


def run(job: BulkJob) -> BulkJob:
    bulk_job_run(job.pk)
    job.refresh_from_db()
    return job


def tagged(agent, name: str) -> set:
    return set(
        ContactTag.objects.filter(tag__agent=agent, tag__name=name).values_list(
            "contact_id", flat=True
        )
    )


def test_a_job_tags_every_matching_contact_in_batches(agent, other_agent, admin_user):
    vip = TagFactory(agent=agent, name="vip")
    matching = [ContactFactory(agent=agent, name=f"Acme person {n}") for n in range(5)]
    matching[0].tags.add(vip)
    ContactFactory.create_batch(2, agent=agent, name="Globex person")
    theirs = ContactFactory(agent=other_agent, name="Acme person")
    job = start(agent, admin_user, BulkAction("tag", {"tag": "vip"}), "q=", estimate=5)
    assert (job.status, job.processed_count, job.query) == ("queued", 0, "q=")
    # The view is what the filters say when the job runs: here every live contact "acme".
    job.query = "q=acme"
    job.save()
    job = run(job)
    assert job.status == "completed"
    assert (job.processed_count, job.changed_count) == (5, 4)
    assert job.last_contact_id == max(c.pk for c in matching)
    assert job.finished_at is not None
    assert tagged(agent, "vip") == {c.pk for c in matching}
    assert not ContactTag.objects.filter(contact=theirs).exists()
    events = AuditEvent.objects.filter(agent=agent)
    assert sorted(str(e.contact_id) for e in events) == sorted(str(c.pk) for c in matching[1:])
    assert {e.actor_label for e in events} == {"admin@acme.test (bulk action)"}
    assert {e.channel for e in events} == {"staff"}
    assert {tuple(e.changes["tags_added"]) for e in events} == {("vip",)}


def test_each_batch_costs_the_same_queries(agent, admin_user):
    def queries_for(count: int) -> int:
        Contact.objects.filter(agent=agent).delete()
        ContactFactory.create_batch(count, agent=agent)
        job = start(agent, admin_user, BulkAction("tag", {"tag": f"t{count}"}))
        with CaptureQueriesContext(connection) as captured:
            bulk_job_run(job.pk)
        return len(captured.captured_queries)

    one, two, three = queries_for(2), queries_for(4), queries_for(6)
    assert two - one == three - two
    # lock, access, ids, tag, link, stamp, audit, webhooks, progress; and on PostgreSQL the
    # merge of the batch's search-index entries (contacts.search_index.pending_entries_merge)
    assert two - one <= (12 if connection.vendor == "postgresql" else 11)


def test_the_view_is_read_again_when_the_job_runs(agent, admin_user, schema):
    pro = ContactFactory(agent=agent, attributes={"plan": "Pro"})
    leaves = ContactFactory(agent=agent, attributes={"plan": "Pro"})
    job = start(agent, admin_user, BulkAction("tag", {"tag": "pro"}), "attr.plan=Pro", 2)
    # Between the click and the run: one contact leaves the view, one joins it.
    Contact.objects.filter(pk=leaves.pk).update(attributes={"plan": "Free"})
    joins = ContactFactory(agent=agent, attributes={"plan": "Pro"})
    job = run(job)
    assert tagged(agent, "pro") == {pro.pk, joins.pk}
    assert job.processed_count == 2


def test_removing_the_tag_a_view_filters_by_still_reaches_everyone(agent, admin_user):
    vip = TagFactory(agent=agent, name="vip")
    contacts = ContactFactory.create_batch(5, agent=agent)
    for contact in contacts:
        contact.tags.add(vip)
    job = run(start(agent, admin_user, BulkAction("untag", {"tag": "vip"}), "tag=vip", 5))
    assert (job.status, job.processed_count, job.changed_count) == ("completed", 5, 5)
    assert tagged(agent, "vip") == set()


def test_a_job_sets_an_attribute_on_every_matching_contact(agent, admin_user, schema):
    a = ContactFactory(agent=agent, attributes={"plan": "Free"})
    b = ContactFactory(agent=agent, attributes={})
    gone = ContactFactory(agent=agent, attributes={}, deleted_at=timezone.now())
    action = BulkAction("set_attribute", {"key": "mrr", "value": 10, "label": "MRR", "shown": "10"})
    job = run(start(agent, admin_user, action, "", 2))
    assert (job.status, job.changed_count) == ("completed", 2)
    for contact in (a, b, gone):
        contact.refresh_from_db()
    assert a.attributes == {"plan": "Free", "mrr": 10}
    assert b.attributes == {"mrr": 10}
    assert gone.attributes == {}


def test_a_bulk_delete_records_whom_it_deleted_and_its_undo_restores_exactly_them(
    agent, admin_user, staff_user
):
    earlier = ContactFactory(agent=agent, name="Acme early", deleted_at=timezone.now())
    live = ContactFactory.create_batch(3, agent=agent, name="Acme person")
    other = ContactFactory(agent=agent, name="Globex person")
    job = run(start(agent, staff_user, BulkAction("delete"), "q=acme", 3))
    assert (job.status, job.changed_count) == ("completed", 3)
    assert set(Contact.objects.filter(deleted_at__isnull=False).values_list("pk", flat=True)) == {
        earlier.pk,
        *[c.pk for c in live],
    }
    assert set(BulkJobContact.objects.filter(job=job).values_list("contact_id", flat=True)) == {
        c.pk for c in live
    }
    assert bulk_job_can_undo(job)

    undo = bulk_job_undo(job=job, user=staff_user)
    assert (undo.action, undo.undo_of_id, undo.estimated_total) == ("restore", job.pk, 3)
    job.refresh_from_db()
    assert job.dismissed_at is not None  # the notice now follows the undo
    undo = run(undo)
    assert (undo.status, undo.processed_count, undo.changed_count) == ("completed", 3, 3)
    assert set(Contact.objects.filter(deleted_at__isnull=True).values_list("pk", flat=True)) == {
        other.pk,
        *[c.pk for c in live],
    }
    earlier.refresh_from_db()
    assert earlier.deleted_at is not None  # deleted before the job: stays deleted
    assert AuditEvent.objects.filter(action="restored").count() == 3
    assert not bulk_job_can_undo(job)
    with pytest.raises(ConflictError, match="already undone"):
        bulk_job_undo(job=job, user=staff_user)


def test_only_an_ended_delete_that_deleted_someone_can_be_undone(agent, admin_user):
    ContactFactory(agent=agent)
    tag_job = run(start(agent, admin_user, BulkAction("tag", {"tag": "x"})))
    with pytest.raises(ConflictError, match="Only a bulk delete"):
        bulk_job_undo(job=tag_job, user=admin_user)
    queued = start(agent, admin_user, BulkAction("delete"))
    with pytest.raises(ConflictError, match="Stop the delete first"):
        bulk_job_undo(job=queued, user=admin_user)
    bulk_job_cancel(job=queued)
    nobody = run(start(agent, admin_user, BulkAction("delete"), "q=nobody-matches"))
    assert nobody.status == "completed"
    with pytest.raises(ConflictError, match="nothing to undo"):
        bulk_job_undo(job=nobody, user=admin_user)


def test_stopping_a_running_job_ends_it_after_its_current_batch(agent, admin_user, monkeypatch):
    ContactFactory.create_batch(6, agent=agent)
    job = start(agent, admin_user, BulkAction("tag", {"tag": "x"}))
    apply = contacts_bulk.bulk_apply
    batches = []

    def stop_after_first(**kwargs):
        batches.append(kwargs["contact_ids"])
        if len(batches) == 1:
            BulkJob.objects.filter(pk=job.pk).update(cancel_requested=True)
        return apply(**kwargs)

    monkeypatch.setattr(runner, "bulk_apply", stop_after_first)
    job = run(job)
    assert (job.status, job.processed_count, job.changed_count) == ("cancelled", 2, 2)
    assert len(tagged(agent, "x")) == 2


def test_a_queued_job_stops_at_once_and_never_runs(agent, admin_user):
    ContactFactory(agent=agent)
    job = bulk_job_cancel(job=start(agent, admin_user, BulkAction("delete")))
    assert job.status == "cancelled"
    assert bulk_job_run(job.pk) == "skipped"
    assert Contact.objects.filter(deleted_at__isnull=True).count() == 1
    with pytest.raises(ConflictError, match="already ended"):
        bulk_job_cancel(job=job)


def test_a_running_job_is_asked_to_stop(agent, admin_user):
    job = start(agent, admin_user, BulkAction("delete"))
    BulkJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=timezone.now())
    job = bulk_job_cancel(job=job)
    assert (job.status, job.cancel_requested) == ("running", True)


def test_a_crashed_job_resumes_after_its_last_batch_and_changes_no_one_twice(
    agent, admin_user, monkeypatch
):
    contacts = ContactFactory.create_batch(5, agent=agent)
    job = start(agent, admin_user, BulkAction("tag", {"tag": "x"}))
    apply = contacts_bulk.bulk_apply
    calls = []

    def crash_on_second_batch(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return apply(**kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(runner, "bulk_apply", crash_on_second_batch)
        with pytest.raises(RuntimeError):
            bulk_job_run(job.pk)
    job.refresh_from_db()
    assert (job.status, job.processed_count) == ("failed", 2)
    assert "after 2 contacts" in job.error
    assert len(tagged(agent, "x")) == 2

    job = run(bulk_job_resume(job=job))
    assert (job.status, job.processed_count, job.changed_count, job.error) == (
        "completed",
        5,
        5,
        "",
    )
    assert tagged(agent, "x") == {c.pk for c in contacts}
    assert AuditEvent.objects.count() == 5


def test_running_a_finished_job_again_changes_nothing(agent, admin_user):
    ContactFactory.create_batch(3, agent=agent)
    job = run(start(agent, admin_user, BulkAction("tag", {"tag": "x"})))
    assert bulk_job_run(job.pk) == "skipped"
    # Even replayed from the start, the action finds everything done.
    BulkJob.objects.filter(pk=job.pk).update(status="queued", last_contact_id=None)
    job = run(job)
    assert (job.status, job.processed_count, job.changed_count) == ("completed", 6, 3)
    assert AuditEvent.objects.count() == 3


def test_a_second_run_of_a_live_job_stands_aside(agent, admin_user):
    job = start(agent, admin_user, BulkAction("tag", {"tag": "x"}))
    BulkJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=timezone.now())
    assert bulk_job_run(job.pk) == "skipped"


def test_a_job_whose_worker_died_is_queued_again_and_goes_on(agent, admin_user, settings):
    contacts = ContactFactory.create_batch(3, agent=agent)
    job = start(agent, admin_user, BulkAction("tag", {"tag": "x"}))
    tasks.run_bulk_job.enqueue(str(job.pk))
    task_row = tasks.bulk_task_rows(job_id=job.pk).get()
    task_row.claim("dead-worker")
    long_ago = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS + 60)
    BulkJob.objects.filter(pk=job.pk).update(
        status="running", heartbeat_at=long_ago, run_token="dead"
    )
    assert [j.pk for j in bulk_jobs_recover_stalled()] == [job.pk]
    task_row.refresh_from_db()
    assert task_row.status == "FAILED"
    job.refresh_from_db()
    assert (job.status, job.run_token) == ("queued", "")
    assert tasks.bulk_task_waiting(job_id=job.pk) is False  # enqueued when the request commits
    job = run(job)
    assert tagged(agent, "x") == {c.pk for c in contacts}
    # A live job is left alone.
    assert bulk_jobs_recover_stalled() == []


def test_the_job_stops_when_its_member_leaves_the_workspace(agent, staff_user, monkeypatch):
    ContactFactory.create_batch(4, agent=agent)
    job = start(agent, staff_user, BulkAction("delete"))
    apply = contacts_bulk.bulk_apply

    def leave_after_first_batch(**kwargs):
        changed = apply(**kwargs)
        Membership.objects.filter(user=staff_user).delete()
        return changed

    monkeypatch.setattr(runner, "bulk_apply", leave_after_first_batch)
    job = run(job)
    assert job.status == "failed"
    assert job.error == (
        "The member who started this job is no longer in the workspace, so it stopped."
    )
    assert job.processed_count == 2
    assert Contact.objects.filter(deleted_at__isnull=True).count() == 2


def test_a_secure_attribute_job_stops_when_its_admin_becomes_staff(agent, admin_user, schema):
    ContactFactory.create_batch(2, agent=agent)
    action = BulkAction("set_attribute", {"key": "ltv", "value": 5, "label": "LTV", "shown": "5"})
    job = start(agent, admin_user, action)
    Membership.objects.filter(user=admin_user).update(role=Membership.Role.STAFF)
    job = run(job)
    assert job.status == "failed"
    assert job.error.startswith("The action no longer applies: Secure attribute: only admins")
    assert not Contact.objects.filter(attributes__has_key="ltv").exists()


def test_a_view_whose_attribute_was_deleted_fails_with_why(agent, admin_user, schema):
    ContactFactory(agent=agent, attributes={"city": "Oslo"})
    job = start(agent, admin_user, BulkAction("tag", {"tag": "x"}), "attr.city=Oslo", 1)
    attribute_delete(definition=schema["city"])
    job = run(job)
    assert job.status == "failed"
    assert job.error == "The view's filters no longer apply: No attribute with key 'city'."
    assert not Tag.objects.filter(name="x").exists()


def test_a_member_runs_one_job_at_a_time_per_agent(agent, admin_user, staff_user):
    first = start(agent, admin_user, BulkAction("tag", {"tag": "x"}))
    with pytest.raises(ConflictError, match="still running"):
        start(agent, admin_user, BulkAction("delete"))
    start(agent, staff_user, BulkAction("delete"))  # someone else may
    run(first)
    start(agent, admin_user, BulkAction("delete"))
    first.refresh_from_db()
    assert first.dismissed_at is not None  # its notice made way


def test_the_progress_follows_the_estimate_without_reaching_the_end_early(agent, admin_user):
    job = start(agent, admin_user, BulkAction("tag", {"tag": "x"}), estimate=10)
    job.status, job.processed_count = "running", 4
    assert (job.total, job.progress_percent) == (10, 40)
    job.processed_count = 12  # more than estimated
    assert (job.total, job.progress_percent) == (12, 99)
    job.status = "completed"
    assert (job.total, job.progress_percent) == (12, 100)


def test_the_task_worker_looks_for_stalled_bulk_jobs_too(agent, admin_user, settings):
    from transfers.management.commands.worker import recover_stalled_imports

    job = start(agent, admin_user, BulkAction("tag", {"tag": "x"}))
    long_ago = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS + 60)
    BulkJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=long_ago)
    recover_stalled_imports()
    job.refresh_from_db()
    assert (job.status, job.run_token) == ("queued", "")


def test_the_job_rests_between_batches_so_the_dashboard_keeps_up(
    agent, admin_user, settings, monkeypatch
):
    ContactFactory.create_batch(5, agent=agent)
    pauses: list[float] = []
    monkeypatch.setattr(runner.time, "sleep", pauses.append)
    settings.BULK_PAUSE_RATIO = 0.5
    run(start(agent, admin_user, BulkAction("tag", {"tag": "x"})))
    assert len(pauses) == 3  # after each of the three batches, none after the end
    assert all(0 < p <= runner.MAX_PAUSE_SECONDS for p in pauses)
    pauses.clear()
    settings.BULK_PAUSE_RATIO = 0
    run(start(agent, admin_user, BulkAction("tag", {"tag": "y"})))
    assert pauses == []


def test_an_erased_person_is_redacted_from_the_jobs_that_name_them(agent, admin_user, admin_actor):
    from urllib.parse import parse_qs

    from contacts.services import contact_erase

    person = ContactFactory(agent=agent, name="Zebulon Quixley", email="zeb@quixley.test")
    other = run(start(agent, admin_user, BulkAction("tag", {"tag": "spring"}), "q=ada", 1))
    named = start(
        agent, admin_user, BulkAction("tag", {"tag": "Zebulon Quixley"}), "q=zeb%40quixley.test"
    )
    contact_erase(contact=person, actor=admin_actor)
    named.refresh_from_db()
    assert parse_qs(named.query) == {"q": ["[erased email]"]}
    assert named.params == {"tag": "[erased name]"}
    other.refresh_from_db()
    assert (other.query, other.params) == ("q=ada", {"tag": "spring"})


def test_a_stopping_worker_hands_a_bulk_job_back_and_the_next_run_goes_on(
    agent, admin_user, monkeypatch
):
    """SIGTERM on the worker (the engine's stop flag): the run ends after the batch it is
    writing, the job is queued again with its next run enqueued, and that run finishes the
    job without changing anyone twice."""
    from django_tasks_db.models import DBTaskResult

    from transfers.imports import engine

    contacts = ContactFactory.create_batch(5, agent=agent)
    job = start(agent, admin_user, BulkAction("tag", {"tag": "x"}))
    apply = contacts_bulk.bulk_apply

    def stop_after_first_batch(**kwargs):
        engine.stop_requested.set()
        return apply(**kwargs)

    monkeypatch.setattr(runner, "bulk_apply", stop_after_first_batch)
    try:
        assert tasks.run_bulk_job.call(str(job.pk)) == "released"
    finally:
        engine.stop_requested.clear()
    job.refresh_from_db()
    assert (job.status, job.run_token, job.processed_count) == ("queued", "", 2)
    assert len(tagged(agent, "x")) == 2
    waiting = DBTaskResult.objects.filter(task_path=tasks.run_bulk_job.module_path, status="READY")
    assert [row.args_kwargs["args"] for row in waiting] == [[str(job.pk)]]

    monkeypatch.setattr(runner, "bulk_apply", apply)
    job = run(job)
    assert (job.status, job.processed_count, job.changed_count) == ("completed", 5, 5)
    assert tagged(agent, "x") == {c.pk for c in contacts}
    assert AuditEvent.objects.filter(action="updated").count() == 5
