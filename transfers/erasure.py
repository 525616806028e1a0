"""Erasure in imports: failed rows naming the person, and jobs whose files name them."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import TextField, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from contacts import signals
from contacts.models import Contact
from contacts.services import audit_relabel
from core.redaction import Redactor, folder_names_person, strings
from transfers.imports import files
from transfers.models import ContactImport, ImportRowIssue


def imports_forget(sender: Any, *, contact: Contact, redactor: Redactor, **kwargs: Any) -> None:
    """What the agent's imports keep of the person goes (receives `contact_erasing`). The
    job folders are deleted once the erasure commits, so a rollback loses no file."""
    if not redactor.has_keys:
        return
    _forget_import_rows(contact.agent_id, redactor)
    folders = _forget_import_jobs(contact.agent_id, redactor)
    if folders:
        transaction.on_commit(lambda: [files.files_delete(job_id) for job_id in folders])


STOPPED_IMPORT = (
    "Stopped: this file named a contact who was erased. Upload it again without them to import it."
)


def _forget_import_rows(agent_id: int, redactor: Redactor) -> None:
    """Failed rows kept from this agent's imports (for their download): a row that names the
    person is theirs, and goes; the database picks the candidates, Python confirms."""
    if not redactor.db_regex:
        return
    # One regular expression over both columns at once: on PostgreSQL the pass over the
    # agent's rows takes a few seconds per million failed rows.
    as_text = TextField()
    text = Concat(Cast("raw", as_text), Value(" "), Cast("problems", as_text), output_field=as_text)
    candidates = (
        ImportRowIssue.objects.filter(job__agent_id=agent_id)
        .alias(text=text)
        .filter(text__iregex=redactor.db_regex)
        .order_by()
        .values_list("pk", "raw", "problems")
    )
    doomed = [
        pk
        for pk, raw, problems in candidates.iterator(chunk_size=2000)
        if any(redactor.names_person(value) for value in strings([raw, problems]))
    ]
    for start in range(0, len(doomed), 1000):
        ImportRowIssue.objects.filter(pk__in=doomed[start : start + 1000]).delete()


def _forget_import_jobs(agent_id: int, redactor: Redactor) -> list[Any]:
    """This agent's import jobs: a job whose stored upload or dry-run report names the person
    loses both (the job and its counts stay, a running one stops); names in its file name,
    label or error are redacted. Returns the jobs whose folders to delete."""
    doomed_folders: list[Any] = []
    jobs = ContactImport.objects.filter(agent_id=agent_id).only(
        "id", "file", "filename", "actor_label", "error", "status"
    )
    for job in jobs.iterator(chunk_size=500):
        texts = (job.filename, job.actor_label, job.error, job.file.name or "")
        named = any(redactor.names_person(text) for text in texts) or folder_names_person(
            files.job_folder(job.pk), redactor
        )
        if not named:
            continue
        old_label = job.actor_label or f"import {job.filename}"
        update: dict[str, Any] = {
            "file": "",
            "filename": redactor.scrub(job.filename),
            "actor_label": redactor.scrub(job.actor_label),
            "error": redactor.scrub(job.error),
        }
        if job.is_active:
            update.update(
                status=ContactImport.Status.FAILED,
                run_token="",
                error=STOPPED_IMPORT,
                finished_at=timezone.now(),
            )
        ContactImport.objects.filter(pk=job.pk).update(**update)
        new_label = update["actor_label"] or f"import {update['filename']}"
        if new_label != old_label:
            # The label the import wrote into the audit trail of the contacts it touched.
            audit_relabel(agent_id=agent_id, old=old_label, new=new_label)
        doomed_folders.append(job.pk)
    return doomed_folders


def connect() -> None:
    signals.contact_erasing.connect(imports_forget, dispatch_uid="transfers")
