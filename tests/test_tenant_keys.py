"""Every table a tenant owns carries its tenant key, and every unique key includes it.

Rapport's tenant is the agent (its workspace for the workspace's own tables). Sharding by
tenant — Citus distributing tables by `agent_id`, see docs/SCALING.md — needs the key on
every row of a tenant's table and in every unique constraint of it, and adding either to a
table that holds millions of rows is a project of its own. So the schema keeps them now,
where it costs nothing, and this test keeps it so: a new model that belongs to an agent
without an `agent` column, or a unique key without it, fails here until it has one or is
listed below with the reason it does not.

A model belongs to an agent when a chain of foreign keys leads from it to the agent (a
contact's tag link, through the contact), and to a workspace when such a chain leads to a
workspace and none to an agent (members, invitations). Keys to users do not count: a user
belongs to no tenant.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.apps import apps
from django.db import connection, models
from django.db.migrations.executor import MigrationExecutor
from django.db.models.fields.composite import CompositePrimaryKey

from tests.test_architecture import LAYERS
from tests.transfers.conftest import upload
from transfers.imports.engine import import_run
from transfers.models import ImportRowIssue
from transfers.services import import_create, import_start
from workspaces.models import Agent, Workspace

PROJECT_APPS = LAYERS

# Tables of no tenant.
GLOBAL = {
    "core.RateCounter": "rate-limit counters keyed by whatever is limited (an address, a key, "
    "an agent), one table for every tenant",
    "core.WorkerHeartbeat": "one row per task worker process, which serves every tenant",
    "workspaces.Workspace": "the tenant itself",
    "workspaces.UserSettings": "a person's own settings, the same in every workspace they "
    "belong to",
}

# Tables of an agent that reach it through their parent only. Adding the column means
# changing their writers (services of other apps, hand-written SQL of the import, the
# relay): planned in docs/SCALING.md, not free. Their unique keys are excused with them:
# they hold the parent's key, not the agent's.
NO_TENANT_COLUMN = {
    "contacts.ContactTag": "the tag links of the table's tag filter, written row by row by "
    "the services and set-based by the import (transfers/sql.py, ON CONFLICT (contact_id, "
    "tag_id)); reached through the contact",
    "contacts.StripeAccount": "written by the services and set-based by the import "
    "(ON CONFLICT (contact_id, stripe_id)); reached through the contact",
    "contacts.MergedContact": "a merged contact's old id pointing at the contact it went "
    "into, written by the merge service; reached through that contact",
    "helpdesk.Message": "a conversation's messages, written by the help desk and by the demo "
    "seeding's COPY; reached through the conversation",
    "transfers.BulkJobContact": "a bulk delete's undo list, keyed (job, contact id) and "
    "written by the bulk runner in bulk; reached through the job",
    "webhooks.WebhookDelivery": "a message's attempts at one endpoint, written and claimed "
    "by the relay's own statements; reached through the endpoint and the message",
}

# A tenant column that may still be empty, with why.
NULLABLE_TENANT_COLUMN = {
    "transfers.ImportRowIssue": "added for this rule: the import engine, the only writer, "
    "fills it and migration 0003 filled older rows; NOT NULL once no test fixture makes "
    "rows without it",
}

# Unique keys without the tenant key: (model, key name) -> why.
UNIQUE_WITHOUT_TENANT = {
    ("workspaces.Agent", "public_id"): "the handle the widget and URLs name an agent by "
    "before any tenant is known; agents are a small table replicated to every node",
    ("workspaces.ApiKey", "key_hash"): "an API call is authenticated by its key's hash "
    "alone, which is what tells the tenant",
    ("workspaces.Invitation", "token_hash"): "an invitation link is looked up by its hash "
    "alone, before anyone is signed in",
    ("transfers.BulkJob", "undo_of"): "one undo per delete job (a one-to-one key); both jobs "
    "are the same agent's, so (agent, undo_of) would mean the same",
}


def project_models() -> list[type[models.Model]]:
    return [
        model
        for app in PROJECT_APPS
        if apps.is_installed(app)
        for model in apps.get_app_config(app).get_models(include_auto_created=True)
        if not model._meta.proxy and model._meta.managed
    ]


def label(model: type[models.Model]) -> str:
    return model._meta.label


def scope(model: type[models.Model]) -> str | None:
    """Whose the model's rows are: "agent", "workspace" (each the name of the key to it) or
    None."""
    if model is Agent:
        return "workspace"
    seen, queue, reached = {model}, [model], set()
    while queue:
        for field in queue.pop()._meta.concrete_fields:
            target = field.related_model if field.many_to_one or field.one_to_one else None
            if target is None or target in seen:
                continue
            if target in (Agent, Workspace):
                reached.add(target)
            seen.add(target)
            queue.append(target)
    if Agent in reached:
        return "agent"
    return "workspace" if Workspace in reached else None


def unique_keys(model: type[models.Model]) -> Iterator[tuple[str, set[str]]]:
    """(name, field names) of each unique key except an `id` primary key."""
    opts = model._meta
    if isinstance(opts.pk, CompositePrimaryKey):
        yield "pk", set(opts.pk.field_names)
    for field in opts.concrete_fields:
        if field.unique and not (field.primary_key and field.name == "id"):
            yield field.name, {field.name}
    for fields in opts.unique_together:
        yield ",".join(fields), set(fields)
    for constraint in opts.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            names = set(constraint.fields) | set(referenced(constraint.expressions))
            yield constraint.name, {opts.get_field(n).name for n in names}


def referenced(expressions) -> Iterator[str]:
    for expression in expressions:
        if isinstance(expression, models.F):
            yield expression.name
        else:
            yield from referenced(expression.get_source_expressions())


def test_every_model_is_a_tenants_or_listed_as_global():
    unlisted = [label(m) for m in project_models() if scope(m) is None and label(m) not in GLOBAL]
    assert unlisted == [], "a table of no tenant: list it in GLOBAL with the reason"
    owned = [label(m) for m in project_models() if scope(m) is not None and label(m) in GLOBAL]
    assert owned == [], "listed as global but reaches an agent or a workspace"


def test_the_tables_of_an_agent_and_of_a_workspace_are_the_expected_ones():
    by_scope = {"agent": set(), "workspace": set()}
    for model in project_models():
        if scope(model):
            by_scope[scope(model)].add(label(model))
    assert by_scope["workspace"] == {
        "workspaces.Agent",
        "workspaces.Membership",
        "workspaces.Invitation",
        "workspaces.WorkspaceEvent",
    }
    assert {"contacts.Contact", "contacts.ContactTag", "helpdesk.Message"} <= by_scope["agent"]
    assert "webhooks.WebhookDelivery" in by_scope["agent"]


def test_every_table_of_a_tenant_carries_its_tenant_key():
    missing, excused = [], []
    for model in project_models():
        if scope(model) is None:
            continue
        name = scope(model)
        field = next((f for f in model._meta.concrete_fields if f.name == name), None)
        target = Agent if name == "agent" else Workspace
        has_key = field is not None and field.related_model is target
        if label(model) in NO_TENANT_COLUMN:
            excused.append(label(model))
            assert not has_key, f"{label(model)} has its {name} now: take it off the list"
        elif not has_key:
            missing.append(label(model))
        elif field.null:
            assert label(model) in NULLABLE_TENANT_COLUMN, f"{label(model)}.{name} is nullable"
        else:
            assert label(model) not in NULLABLE_TENANT_COLUMN, f"{label(model)} is NOT NULL now"
    assert missing == [], "tables of a tenant without its key (add it, or list with a reason)"
    assert sorted(excused) == sorted(NO_TENANT_COLUMN)


def test_every_unique_key_of_a_tenants_table_includes_the_tenant_key():
    without, excused = [], set()
    for model in project_models():
        if scope(model) is None or label(model) in NO_TENANT_COLUMN:
            continue
        tenant = scope(model)
        for key, fields in unique_keys(model):
            if tenant in fields:
                continue
            if (label(model), key) in UNIQUE_WITHOUT_TENANT:
                excused.add((label(model), key))
            else:
                without.append(f"{label(model)}: {key} {sorted(fields)}")
    assert without == [], "unique keys without the tenant key (widen, or list with a reason)"
    assert excused == set(UNIQUE_WITHOUT_TENANT), "a listed exception is gone: take it off"


def test_the_rule_sees_expression_keys_and_composite_primary_keys():
    keys = {
        label(m): dict(unique_keys(m))
        for m in project_models()
        if label(m)
        in {
            "contacts.Tag",
            "transfers.BulkJobContact",
            "identity.HandoffTokenUse",
        }
    }
    assert keys["contacts.Tag"] == {"uniq_tag_name_ci": {"agent", "name"}}
    assert keys["transfers.BulkJobContact"] == {"pk": {"job", "contact_id"}}
    assert keys["identity.HandoffTokenUse"] == {"uniq_handoff_token_use": {"agent", "jti"}}


@pytest.mark.django_db
def test_the_import_writes_the_agent_on_the_rows_it_could_not_write(agent):
    job = import_create(
        agent=agent,
        upload=upload("external_id,email\nu1,not-an-email\nu2,ok@example.com\n"),
        actor_label="import by test",
    )
    import_start(job=job, dry_run=False)
    import_run(job.pk)

    issue = ImportRowIssue.objects.get(job=job)
    assert (issue.row_number, issue.agent_id) == (2, agent.pk)


@pytest.mark.django_db(transaction=True)
def test_rows_saved_before_the_column_existed_take_their_jobs_agent(agent, other_agent):
    executor = MigrationExecutor(connection)
    before = [("transfers", "0002_bulk_jobs")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    OldJob = old.get_model("transfers", "ContactImport")
    OldIssue = old.get_model("transfers", "ImportRowIssue")
    for owner in (agent, other_agent):
        job = OldJob.objects.create(agent_id=owner.pk, filename="a.csv", file_format="csv")
        OldIssue.objects.create(job=job, row_number=2, raw=["x"])

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    issues = ImportRowIssue.objects.select_related("job")
    assert sorted((i.agent_id, i.job.agent_id) for i in issues) == sorted(
        [(agent.pk, agent.pk), (other_agent.pk, other_agent.pk)]
    )
