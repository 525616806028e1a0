"""A database created before import jobs moved to the transfers app (and before the kernel
and signed sessions) migrates forward keeping every contact, import job and failed row."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from contacts.models import Contact
from identity.models import VisitorSession
from transfers.models import ContactImport, ImportRowIssue

pytestmark = pytest.mark.django_db(transaction=True)

# The last migration of each app in the schema before this layout.
BEFORE = [
    ("workspaces", "0001_initial"),
    ("contacts", "0003_imports"),
    ("identity", "0002_handoff_token_use"),
    ("transfers", None),
    ("core", None),
]


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def test_jobs_failed_rows_contacts_and_sessions_survive_the_move(agent):
    executor = _migrate(BEFORE)
    old = executor.loader.project_state([t for t in BEFORE if t[1]]).apps
    OldContact = old.get_model("contacts", "Contact")
    OldJob = old.get_model("contacts", "ContactImport")
    OldIssue = old.get_model("contacts", "ImportRowIssue")
    OldSession = old.get_model("identity", "VisitorSession")
    contacts = [
        OldContact.objects.create(agent_id=agent.pk, name=f"Person {n}", email=f"p{n}@ex.com")
        for n in range(3)
    ]
    OldSession.objects.create(agent_id=agent.pk, visitor_id="v-1", contact=contacts[0])
    job = OldJob.objects.create(
        agent_id=agent.pk,
        filename="crm.csv",
        file_format="csv",
        status="completed",
        total_rows=5,
        processed_rows=5,
        created_count=3,
        failed_count=2,
        mapping={"Email": "email"},
    )
    for row in (2, 4):
        OldIssue.objects.create(
            job=job,
            row_number=row,
            problems=[{"column": "Email", "value": "x", "message": "not an email"}],
            raw=["x", "Name"],
        )

    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    assert Contact.objects.filter(agent=agent).count() == 3
    moved = ContactImport.objects.get(pk=job.pk)
    assert (moved.filename, moved.status, moved.created_count, moved.failed_count) == (
        "crm.csv",
        "completed",
        3,
        2,
    )
    assert moved.mapping == {"Email": "email"}
    issues = list(ImportRowIssue.objects.filter(job=moved).order_by("row_number"))
    assert [i.row_number for i in issues] == [2, 4]
    assert issues[0].raw == ["x", "Name"]
    # Sessions start unsigned: they reach a verified contact again only by signing in.
    session = VisitorSession.objects.get(visitor_id="v-1")
    assert (session.contact_id, session.signed) == (contacts[0].pk, False)
