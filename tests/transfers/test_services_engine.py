"""The import engine end to end, through both writers (the services, and the database's
set-based fast path: COPY on PostgreSQL, bulk statements on SQLite)."""

from __future__ import annotations

import json

import pytest
from django.core.files.storage import default_storage

from attributes.models import AttributeDefinition
from contacts.models import AuditEvent, Contact, StripeAccount, Tag
from contacts.services import contact_create, contact_soft_delete, contact_upsert
from tests.transfers.conftest import counts
from transfers.imports.engine import import_run
from transfers.imports.files import report_name
from transfers.models import ContactImport
from transfers.services import import_can_resume, import_resume

pytestmark = pytest.mark.django_db

CSV = """\
User ID,Full Name,E-mail,Phone,Plan,MRR,Beta,Signup,Tags
u1,Ada Lovelace,Ada@Example.COM,+44 20 7946 0958,Pro,99.5,yes,2024-01-02,"vip, beta"
u2,Grace Hopper,grace@example.com,,Free,10,no,2024-02-03,
u3,Alan Turing,alan@example.com,+1 415 555 0100,Pro,0,true,,vip
"""


def contact(agent, **lookup) -> Contact:
    return Contact.objects.get(agent=agent, **lookup)


def tags_of(c: Contact) -> list[str]:
    return sorted(t.name for t in c.tags.all())


def issue_rows(job: ContactImport) -> dict[int, str]:
    return {i.row_number: i.message for i in job.issues.all()}


def test_a_csv_with_usual_headers_creates_verified_contacts_with_typed_values(
    run_import, agent, schema
):
    job = run_import(CSV)

    assert job.status == ContactImport.Status.COMPLETED
    assert job.mapping["User ID"] == "external_id"
    assert job.mapping["E-mail"] == "email"
    assert job.mapping["MRR"] == "attr:mrr"
    assert counts(job) == {"created": 3, "updated": 0, "unchanged": 0, "failed": 0, "skipped": 0}
    assert job.total_rows == job.processed_rows == 3
    ada = contact(agent, external_id="u1")
    assert (ada.name, ada.email, ada.phone) == ("Ada Lovelace", "Ada@example.com", "+442079460958")
    assert ada.attributes == {"plan": "Pro", "mrr": 99.5, "beta": True, "signup": "2024-01-02"}
    assert tags_of(ada) == ["beta", "vip"]
    assert ada.identity == "verified"
    assert ada.identity_source == "import"
    alan = contact(agent, external_id="u3")
    assert alan.attributes == {"plan": "Pro", "mrr": 0, "beta": True}
    event = AuditEvent.objects.get(contact_id=ada.pk)
    assert (event.action, event.channel, event.actor_label) == (
        "created",
        "import",
        "import by test",
    )
    assert event.changes["email"] == [None, "Ada@example.com"]
    assert event.changes["attributes.mrr"] == [None, 99.5]
    assert event.changes["tags"] == [[], ["beta", "vip"]]


def test_renamed_columns_are_mapped_by_the_given_mapping(run_import, agent, schema):
    content = "Kundennummer;Nachname;Tarif;Umsatz\nk-1;Müller;Pro;12\nk-2;Schmidt;Free;7\n"
    job = run_import(
        content,
        mapping={
            "Kundennummer": "external_id",
            "Nachname": "name",
            "Tarif": "attr:plan",
            "Umsatz": "attr:mrr",
        },
    )

    assert job.delimiter == ";"
    assert counts(job)["created"] == 2
    mueller = contact(agent, external_id="k-1")
    assert mueller.name == "Müller"
    assert mueller.attributes == {"plan": "Pro", "mrr": 12}


def test_json_and_json_lines_import_nested_attributes_tags_and_stripe_accounts(
    run_import, agent, schema
):
    items = [
        {
            "external_id": 1001,
            "name": "Ada",
            "email": "ada@example.com",
            "attributes": {"plan": "Pro", "mrr": 42, "beta": True},
            "tags": ["vip", "Beta"],
            "stripe_accounts": [{"label": "Main", "stripe_id": "cus_A1", "stripe_email": ""}],
        },
        {"external_id": "1002", "name": "Grace", "attributes": {"plan": "Free"}},
    ]
    job = run_import(json.dumps(items), name="people.json")
    lines = "\n".join(json.dumps({**i, "external_id": f"L{n}"}) for n, i in enumerate(items))
    job_lines = run_import(lines + "\n\n", name="people.jsonl")

    for job_ in (job, job_lines):
        assert job_.status == "completed", job_.error
        assert counts(job_)["created"] == 2
    ada = contact(agent, external_id="1001")
    assert ada.attributes == {"plan": "Pro", "mrr": 42, "beta": True}
    assert tags_of(ada) == ["Beta", "vip"]
    assert list(ada.stripe_accounts.values_list("label", "stripe_id")) == [("Main", "cus_A1")]
    assert contact(agent, external_id="1002").attributes == {"plan": "Free"}
    assert contact(agent, external_id="L0").attributes["mrr"] == 42


def test_bad_rows_are_reported_with_row_column_and_reason_while_good_rows_land(
    run_import, agent, schema
):
    content = (
        "external_id,name,email,phone,plan,mrr\n"
        "ok1,Good One,one@example.com,,Pro,1\n"
        "bad1,Bad Email,not-an-email,,Pro,1\n"
        "bad2,Bad Phone,two@example.com,12,Pro,1\n"
        "bad3,Bad Option,three@example.com,,Gold,1\n"
        "bad4,Bad Number,four@example.com,,Pro,lots\n"
        ",Nobody Known,,,Pro,1\n"
        "bad6,Too,many,,Pro,1,extra\n"
        "ok2,Good Two,five@example.com,,Free,2\n"
    )
    job = run_import(content)

    assert counts(job) == {"created": 2, "updated": 0, "unchanged": 0, "failed": 6, "skipped": 0}
    assert set(Contact.objects.filter(agent=agent).values_list("external_id", flat=True)) == {
        "ok1",
        "ok2",
    }
    issues = {i.row_number: i for i in job.issues.all()}
    assert sorted(issues) == [3, 4, 5, 6, 7, 8]
    assert issues[3].problems == [
        {
            "column": "email",
            "value": "not-an-email",
            "message": "'not-an-email' is not a valid email address.",
        }
    ]
    assert issues[4].problems[0]["column"] == "phone"
    assert "not a valid phone number" in issues[4].problems[0]["message"]
    assert issues[5].problems[0]["column"] == "plan"
    assert issues[5].problems[0]["value"] == "Gold"
    assert "not one of the options" in issues[5].problems[0]["message"]
    assert issues[6].problems[0]["column"] == "mrr"
    assert "not a number" in issues[6].problems[0]["message"]
    assert "no external ID, email or phone" in issues[7].message
    assert "7 cells" in issues[8].message
    assert issues[3].raw == ["bad1", "Bad Email", "not-an-email", "", "Pro", "1"]


def test_a_broken_file_fails_with_a_clear_error_and_writes_nothing(run_import, agent, schema):
    good = "".join(f"u{n},Person {n},p{n}@example.com\n" for n in range(1100))
    broken = 'u-x,"Unclosed quote,x@example.com\n' + "u-y,After,y@example.com\n"
    job = run_import("external_id,name,email\n" + good + broken)

    assert job.status == ContactImport.Status.FAILED
    assert "Row 1102" in job.error
    assert "quoted cell is never closed" in job.error
    assert Contact.objects.filter(agent=agent).count() == 0
    assert job.processed_rows == 0


def test_invalid_json_after_the_preview_fails_and_writes_nothing(run_import, agent):
    items = ",".join(json.dumps({"external_id": f"u{n}", "name": "x"}) for n in range(1100))
    job = run_import("[" + items + ', {"external_id": "u-bad", "name": ]', name="p.json")

    assert job.status == ContactImport.Status.FAILED
    assert "not valid JSON after item 1,100" in job.error
    assert Contact.objects.filter(agent=agent).count() == 0


@pytest.mark.parametrize("name", ["people.json", "people.jsonl"])
def test_json_nested_too_deep_after_the_preview_fails_and_writes_nothing(run_import, agent, name):
    items = [json.dumps({"external_id": f"u{n}", "name": "x"}) for n in range(1100)]
    items.append('{"external_id": "u-deep", "name": ' + "[" * 1000 + "]" * 1000 + "}")
    content = "[" + ",".join(items) + "]" if name.endswith(".json") else "\n".join(items)

    job = run_import(content, name=name)

    assert job.status == ContactImport.Status.FAILED
    what = "Item" if name.endswith(".json") else "Line"
    assert job.error.startswith(f"{what} 1,101 nests lists or objects more than 5 levels deep")
    assert job.processed_rows == 0
    assert Contact.objects.filter(agent=agent).count() == 0


def test_importing_the_same_file_again_reports_every_row_unchanged_and_writes_nothing(
    run_import, agent, schema
):
    run_import(CSV)
    before = {c.pk: c.updated_at for c in Contact.objects.filter(agent=agent)}
    events = AuditEvent.objects.count()
    tags = Tag.objects.count()

    again = run_import(CSV)

    assert counts(again) == {"created": 0, "updated": 0, "unchanged": 3, "failed": 0, "skipped": 0}
    assert {c.pk: c.updated_at for c in Contact.objects.filter(agent=agent)} == before
    assert AuditEvent.objects.count() == events
    assert Tag.objects.count() == tags


def test_a_later_row_with_the_same_external_id_wins_and_the_earlier_one_is_reported(
    run_import, agent, schema
):
    content = "external_id,name,plan\nu1,First Try,Free\nu2,Other,Free\nu1,Final Name,Pro\n"
    job = run_import(content)

    assert counts(job) == {"created": 2, "updated": 0, "unchanged": 0, "failed": 0, "skipped": 1}
    final = contact(agent, external_id="u1")
    assert (final.name, final.attributes) == ("Final Name", {"plan": "Pro"})
    assert issue_rows(job) == {2: "Skipped: row 4 of the file has the same contact and wins."}
    assert job.issues.get().kind == "skipped"


def test_rows_without_external_id_match_the_one_contact_with_their_email(
    run_import, agent, schema, api_actor
):
    existing = contact_create(
        agent=agent, actor=api_actor, data={"name": "Old", "email": "solo@example.com"}
    ).contact
    for _ in range(2):
        contact_create(agent=agent, actor=api_actor, data={"email": "twice@example.com"})

    job = run_import(
        "email,name,plan\nSOLO@example.com,New Name,Pro\ntwice@example.com,Third,Free\n"
        "fresh@example.com,Fresh,Free\n"
    )

    assert counts(job) == {"created": 2, "updated": 1, "unchanged": 0, "failed": 0, "skipped": 0}
    existing.refresh_from_db()
    assert (existing.name, existing.attributes) == ("New Name", {"plan": "Pro"})
    assert Contact.objects.filter(agent=agent, email="twice@example.com").count() == 3
    update = AuditEvent.objects.filter(contact_id=existing.pk, channel="import").get()
    assert update.changes["name"] == ["Old", "New Name"]
    assert update.changes["attributes.plan"] == [None, "Pro"]


def test_blank_cells_keep_values_attributes_merge_and_tags_are_added(
    run_import, agent, schema, api_actor
):
    contact_upsert(
        agent=agent,
        actor=api_actor,
        external_id="u1",
        data={
            "name": "Ada",
            "company": "Engines",
            "attributes": {"plan": "Free", "mrr": 5},
            "tags": ["old"],
        },
    )

    job = run_import("external_id,name,company,plan,mrr,tags\nu1,,,Pro,,new\n")

    assert counts(job)["updated"] == 1
    ada = contact(agent, external_id="u1")
    assert (ada.name, ada.company) == ("Ada", "Engines")
    assert ada.attributes == {"plan": "Pro", "mrr": 5}
    assert tags_of(ada) == ["new", "old"]
    event = AuditEvent.objects.filter(contact_id=ada.pk, channel="import").get()
    assert event.changes["tags"] == [["old"], ["new", "old"]]


def test_a_soft_deleted_contact_matched_by_external_id_is_restored(
    run_import, agent, schema, api_actor
):
    gone = contact_upsert(agent=agent, actor=api_actor, external_id="u1", data={"name": "A"})
    contact_soft_delete(contact=gone.contact, actor=api_actor)

    job = run_import("external_id,name\nu1,A\n")

    assert counts(job)["updated"] == 1
    assert contact(agent, external_id="u1").deleted_at is None
    assert Contact.objects.filter(agent=agent).count() == 1


def test_secure_attributes_are_written_by_imports(run_import, agent, schema):
    run_import("external_id,tier\nu1,gold\n")

    assert contact(agent, external_id="u1").attributes == {"tier": "gold"}


def test_a_dry_run_writes_nothing_and_predicts_the_real_run(run_import, agent, schema, api_actor):
    contact_upsert(agent=agent, actor=api_actor, external_id="u2", data={"name": "Grace Hopper"})
    content = CSV + "u4,Broken,not-an-email,,,,,,\n"
    contacts_before = Contact.objects.filter(agent=agent).count()
    events_before = AuditEvent.objects.count()

    job = run_import(
        content,
        dry_run=True,
        mapping={"Signup": "new:signup_day"},
        new_attributes={"signup_day": "date"},
    )

    assert job.dry_run
    assert job.status == "completed"
    assert Contact.objects.filter(agent=agent).count() == contacts_before
    assert AuditEvent.objects.count() == events_before
    assert not AttributeDefinition.objects.filter(agent=agent, key="signup_day").exists()
    assert not Tag.objects.filter(agent=agent).exists()
    assert counts(job) == {"created": 2, "updated": 1, "unchanged": 0, "failed": 1, "skipped": 0}
    assert job.dry_run_summary["created"] == 2
    report = default_storage.open(report_name(job)).read().decode()
    lines = report.splitlines()
    assert lines[0] == "row,action,contact,column,value,reason"
    assert "2,create,u1,,," in lines
    assert "3,update,u2,,," in lines
    assert any(line.startswith("5,error,u4,E-mail,not-an-email,") for line in lines)

    real = run_import(
        content, mapping={"Signup": "new:signup_day"}, new_attributes={"signup_day": "date"}
    )
    assert counts(real) == counts(job)
    assert AttributeDefinition.objects.get(agent=agent, key="signup_day").type == "date"
    assert contact(agent, external_id="u1").attributes["signup_day"] == "2024-01-02"


def test_an_unknown_column_can_become_a_new_attribute_with_its_type(run_import, agent):
    job = run_import(
        "email,Lifetime value\nx@example.com,12.5\n",
        mapping={"Lifetime value": "new:lifetime_value"},
        new_attributes={"lifetime_value": "number"},
    )

    assert job.status == "completed", job.error
    definition = AttributeDefinition.objects.get(agent=agent, key="lifetime_value")
    assert definition.type == "number"
    assert contact(agent, email="x@example.com").attributes == {"lifetime_value": 12.5}


def test_rows_match_by_rapport_id_and_may_gain_an_external_id(run_import, agent, api_actor):
    known = contact_create(agent=agent, actor=api_actor, data={"name": "No Ext"}).contact
    fixed = contact_upsert(agent=agent, actor=api_actor, external_id="keep", data={}).contact

    job = run_import(
        f"id,external_id,name\n{known.pk},new-ext,Now Known\n{fixed.pk},other,Changed\n"
    )

    assert counts(job) == {"created": 0, "updated": 1, "unchanged": 0, "failed": 1, "skipped": 0}
    known.refresh_from_db()
    assert (known.external_id, known.name) == ("new-ext", "Now Known")
    fixed.refresh_from_db()
    assert fixed.external_id == "keep"
    assert "external id" in job.issues.get().message


def test_stripe_columns_add_one_account_per_row(run_import, agent):
    job = run_import(
        "external_id,stripe_id,stripe_email,stripe_label\n"
        "u1,cus_ABC,billing@example.com,Main\n"
        "u2,not-a-cus,,\n"
    )

    assert counts(job)["created"] == 1
    account = StripeAccount.objects.get(contact__external_id="u1")
    assert (account.stripe_id, account.stripe_email, account.label) == (
        "cus_ABC",
        "billing@example.com",
        "Main",
    )
    assert "Stripe customer id" in job.issues.get().message


def test_a_stripe_accounts_cell_nested_too_deep_is_a_row_error_and_the_other_rows_land(
    run_import, agent
):
    deep = "[" * 2000 + "]" * 2000
    job = run_import(
        f'external_id,stripe_accounts\nu1,\nu2,"{deep}"\nu3,"[{{stripe_id: cus_3, label: Main}}]"\n'
    )

    assert job.status == ContactImport.Status.COMPLETED, job.error
    assert counts(job) == {"created": 2, "updated": 0, "unchanged": 0, "failed": 1, "skipped": 0}
    (issue,) = job.issues.all()
    assert (issue.row_number, issue.problems[0]["column"], issue.problems[0]["message"]) == (
        3,
        "stripe_accounts",
        "nests lists or objects far deeper than a list of accounts (stripe_id, stripe_email, "
        "label).",
    )
    assert sorted(Contact.objects.filter(agent=agent).values_list("external_id", flat=True)) == [
        "u1",
        "u3",
    ]
    assert list(StripeAccount.objects.values_list("stripe_id", "label")) == [("cus_3", "Main")]


def test_an_import_never_touches_another_agents_contacts(run_import, agent, other_agent, api_actor):
    theirs = contact_upsert(
        agent=other_agent, actor=api_actor, external_id="u1", data={"name": "Theirs"}
    ).contact

    job = run_import("external_id,name,email\nu1,Mine,mine@example.com\n")

    assert counts(job)["created"] == 1
    theirs.refresh_from_db()
    assert theirs.name == "Theirs"
    assert contact(agent, external_id="u1").name == "Mine"


def test_more_rows_than_the_limit_fail_before_writing(run_import, agent, settings):
    settings.IMPORT_MAX_ROWS = 3

    job = run_import("email\n" + "".join(f"p{n}@example.com\n" for n in range(5)))

    assert job.status == "failed"
    assert "more than 3 rows" in job.error
    assert Contact.objects.filter(agent=agent).count() == 0


def test_an_interrupted_import_resumes_after_its_last_saved_batch_without_duplicates(
    run_import, agent, settings, monkeypatch
):
    settings.IMPORT_BATCH_ROWS = 2
    content = "external_id,name\n" + "".join(f"u{n},Person {n}\n" for n in range(5))
    from transfers.imports import engine

    calls = {"n": 0}
    original = engine._Run.flush

    def crash_on_second_batch(self, batch):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return original(self, batch)

    monkeypatch.setattr(engine._Run, "flush", crash_on_second_batch)
    with pytest.raises(RuntimeError):
        run_import(content)
    job = ContactImport.objects.get(agent=agent)
    assert job.status == "failed"
    assert job.processed_rows == 2
    assert "resume" in job.error
    assert Contact.objects.filter(agent=agent).count() == 2
    assert import_can_resume(job)

    import_resume(job=job)
    import_run(job.pk)
    job.refresh_from_db()

    assert job.status == "completed"
    assert job.processed_rows == 5
    assert counts(job) == {"created": 5, "updated": 0, "unchanged": 0, "failed": 0, "skipped": 0}
    assert Contact.objects.filter(agent=agent).count() == 5


def test_a_completed_import_deletes_its_uploaded_file(run_import, agent):
    job = run_import("email\na@example.com\n")

    assert not job.file
    assert not default_storage.exists(f"imports/{job.pk}/people.csv")


def test_the_import_of_a_new_contact_uses_the_agents_default_phone_region(run_import, agent):
    agent.default_phone_region = "GB"
    agent.save()

    run_import("email,phone\nuk@example.com,020 7946 0958\n")

    assert contact(agent, email="uk@example.com").phone == "+442079460958"


@pytest.mark.parametrize(
    ("bad_cell", "reason"),
    [("+999", "is not a phone number"), ("12", "not a valid phone number")],
)
def test_invalid_phones_are_row_errors(run_import, agent, bad_cell, reason):
    job = run_import(f"email,phone\nz@example.com,{bad_cell}\n")

    assert job.failed_count == 1
    assert reason in job.issues.get().message


def test_the_import_actor_is_recorded_on_updates(run_import, agent, schema):
    run_import("external_id,plan\nu1,Free\n")
    run_import("external_id,plan\nu1,Pro\n")

    event = AuditEvent.objects.filter(action="updated").get()
    assert event.channel == "import"
    assert event.changes == {"attributes.plan": ["Free", "Pro"]}


def test_values_with_tabs_backslashes_quotes_and_newlines_are_stored_as_written(
    run_import, agent, schema
):
    item = {
        "external_id": "odd\\one",
        "name": 'O\'Brien "Bob"',
        "company": "Tabs\tand \\ backslashes",
        "tags": ['say "hi"', "back\\slash", "{braces}"],
        "attributes": {"tier": "line one\nline two\r\nend \\N"},
    }
    job = run_import(json.dumps([item]), name="odd.json")

    assert counts(job)["created"] == 1, job.issues.first() and job.issues.first().message
    odd = contact(agent, external_id="odd\\one")
    assert odd.name == 'O\'Brien "Bob"'
    assert odd.company == "Tabs\tand \\ backslashes"
    assert tags_of(odd) == sorted(['say "hi"', "back\\slash", "{braces}"])
    assert odd.attributes == {"tier": "line one\nline two\r\nend \\N"}
    event = AuditEvent.objects.get(contact_id=odd.pk)
    assert event.changes["company"] == [None, "Tabs\tand \\ backslashes"]
    assert event.changes["attributes.tier"] == [None, "line one\nline two\r\nend \\N"]


def test_a_batch_the_database_refuses_is_written_again_row_by_row(
    run_import, agent, schema, writer, monkeypatch
):
    if writer != "fast":
        pytest.skip("the fallback is the fast writers'")
    from django.db import DataError, connection

    from transfers.imports.engine import FAST_WRITERS

    def refuse(self, *args):
        raise DataError("value out of range")

    monkeypatch.setattr(FAST_WRITERS[connection.vendor], "_write_staged", refuse)
    job = run_import(CSV + "u4,Bad,not-an-email,,,,,,\n")

    assert counts(job) == {"created": 3, "updated": 0, "unchanged": 0, "failed": 1, "skipped": 0}
    assert contact(agent, external_id="u1").attributes["mrr"] == 99.5
    assert "not a valid email" in job.issues.get().message
