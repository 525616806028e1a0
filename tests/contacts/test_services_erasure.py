"""After a GDPR erasure the person's identifiers are stored nowhere: no text column of any
table, no session, no file under MEDIA_ROOT, no cache entry (SPEC 4 and 9)."""

from __future__ import annotations

import base64
import pickle
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import constants as message_levels
from django.contrib.messages.storage.base import Message as FlashMessage
from django.contrib.messages.storage.cookie import MessageEncoder
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, models
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from contacts import services
from contacts.models import AuditEvent, Contact
from core.actors import Actor
from core.redaction import ERASED_NAME, ERASED_PHONE
from helpdesk import services as helpdesk
from helpdesk.models import Conversation, Message
from identity.models import VisitorSession
from tests.factories import AttributeFactory, ContactFactory, ConversationFactory
from tests.helpers import contact_url
from transfers.imports.engine import import_run
from transfers.imports.files import job_folder, report_name
from transfers.models import ContactImport, ImportRowIssue
from transfers.services import import_create, import_start
from workspaces import agent_cache
from workspaces.services import api_key_create

pytestmark = pytest.mark.django_db

NAME, EMAIL, PHONE = "Zebulon Quixley", "zeb.quixley@example.org", "+14155559876"
TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField, models.FileField)


def _rows_mentioning(needle: str) -> list[str]:
    hits = []
    for model in apps.get_models():
        text_fields = [
            f
            for f in model._meta.concrete_fields
            if isinstance(
                f, (models.CharField, models.TextField, models.JSONField, models.FileField)
            )
            and not isinstance(f, models.GeneratedField)
        ]
        for field in text_fields:
            for value in model.objects.values_list(field.attname, flat=True).iterator():
                if value is not None and needle.lower() in str(value).lower():
                    hits.append(f"{model._meta.label}.{field.name}")
    return hits


def test_erase_leaves_no_trace_of_the_person_in_any_table(agent, admin_user):
    AttributeFactory(agent=agent, key="nickname")
    admin = Actor.staff(admin_user, is_admin=True)
    created = services.contact_upsert(
        agent=agent,
        actor=admin,
        external_id="zq-1",
        data={
            "name": NAME,
            "email": EMAIL,
            "phone": PHONE,
            "attributes": {"nickname": "Zeb"},
            "stripe_accounts": [{"stripe_id": "cus_ZQ", "stripe_email": EMAIL}],
        },
    )
    contact = created.contact
    services.contact_tags_add(contact=contact, actor=admin, names=["vip"])
    services.contact_update(contact=contact, actor=admin, data={"company": "Quixley Ltd"})
    VisitorSession.objects.create(agent=agent, visitor_id="v-zq", contact=contact)
    conversation = ConversationFactory(agent=agent, contact=contact, subject=f"Call {NAME}")
    conversation.messages.create(role="visitor", body=f"Hi, {NAME} here. {EMAIL} / 415-555-9876")
    conversation.messages.create(role="bot", body="Thanks Zebulon!")
    bystander = ContactFactory(agent=agent, name="Other Person")
    job = ContactImport.objects.create(agent=agent, filename="crm.csv", file_format="csv")
    ImportRowIssue.objects.create(
        job=job,
        row_number=7,
        problems=[{"column": "phone", "value": "12", "message": "not a valid phone number"}],
        raw=[NAME, EMAIL.upper(), "12"],
    )
    unrelated = ImportRowIssue.objects.create(job=job, row_number=8, raw=["Other", "o@x.org"])
    for needle in (NAME, EMAIL, PHONE):
        assert _rows_mentioning(needle), f"the setup should store {needle}"

    services.contact_erase(contact=contact, actor=admin)

    for needle in (NAME, "Zebulon", "Quixley", EMAIL, PHONE, "555-9876"):
        assert _rows_mentioning(needle) == [], needle
    bystander.refresh_from_db()
    assert bystander.name == "Other Person"
    assert list(ImportRowIssue.objects.all()) == [unrelated]


# --- Every trace a person leaves, and none left after the erasure -------------------------------

OLD_NAME, MERGED_NAME = "Zebulon Harrowgate", "Zeb Quixley"
OLD_EMAIL, MERGED_EMAIL = "zeb.harrowgate@oldmail.test", "zebulon@quixley-work.test"
STRIPE_EMAIL, OLD_STRIPE_EMAIL = "billing.zq@example.net", "old.billing@harrowgate.test"
OLD_PHONE = "+442079460958"
EXTERNAL_ID, STRIPE_ID, OLD_STRIPE_ID = "zq-ext-7781", "cus_ZQ9001x", "cus_ZQold42"
AVATAR = "https://cdn.example.org/avatars/zq-77.png"
SHIP, OLD_SHIP = "Ptarmigan Starlight", "Gull Wanderer"
# The phones as people type them, and the bare national digits of each.
WRITTEN_PHONES = [
    "(415) 555-9876",
    "415.555.9876",
    "+1 415 555 9876",
    "415-555-9876",
    "020 7946 0958",
    "+44 20 7946 0958",
]
NATIONAL_DIGITS = ["4155559876", "2079460958"]

IDENTIFIERS = [
    NAME,
    OLD_NAME,
    MERGED_NAME,
    "Zebulon",
    "Quixley",
    "Harrowgate",
    EMAIL,
    OLD_EMAIL,
    MERGED_EMAIL,
    STRIPE_EMAIL,
    OLD_STRIPE_EMAIL,
    PHONE,
    OLD_PHONE,
    *WRITTEN_PHONES,
    EXTERNAL_ID,
    STRIPE_ID,
    OLD_STRIPE_ID,
    AVATAR,
    SHIP,
    OLD_SHIP,
]

BYSTANDER_TEXT = "Hello, Other Person here (other@bystander.test, +1 212 555 0100)."


def _stored_texts() -> list[tuple[str, str]]:
    """(where, text) for every text Rapport keeps: each text/JSON/file column of every
    model, each session decoded, each file under MEDIA_ROOT, each cache entry."""
    texts: list[tuple[str, str]] = []
    for model in apps.get_models():
        fields = [
            f
            for f in model._meta.concrete_fields
            if isinstance(
                f, (models.CharField, models.TextField, models.JSONField, models.FileField)
            )
            and not isinstance(f, models.GeneratedField)
        ]
        if not fields:
            continue
        names = [f.attname for f in fields]
        for row in model.objects.values_list("pk", *names).iterator():
            for name, value in zip(names, row[1:], strict=True):
                if value not in (None, "", [], {}):
                    texts.append((f"{model._meta.label}.{name} #{row[0]}", str(value)))
    for session in Session.objects.all():
        texts.append((f"session {session.pk}", str(SessionStore().decode(session.session_data))))
    for path in Path(settings.MEDIA_ROOT).rglob("*"):
        if path.is_file():
            texts.append((f"file {path}", path.read_bytes().decode("utf-8", errors="replace")))
    for cache in caches.all(initialized_only=True):
        if isinstance(cache, LocMemCache):
            for key, value in list(cache._cache.items()):
                texts.append((f"cache {key}", repr(pickle.loads(value))))  # noqa: S301
        elif isinstance(cache, DatabaseCache):
            with connection.cursor() as cursor:
                table = connection.ops.quote_name(cache._table)
                cursor.execute(f"SELECT cache_key, value FROM {table}")  # noqa: S608
                for key, value in cursor.fetchall():
                    stored = pickle.loads(base64.b64decode(value))  # noqa: S301
                    texts.append((f"cache {key}", repr(stored)))
    texts.extend((f"agent cache {k}", repr(v)) for k, v in agent_cache._entries.items())
    return texts


def _where(texts: list[tuple[str, str]], needle: str) -> list[str]:
    needle = needle.casefold()
    return [where for where, text in texts if needle in text.casefold()]


def _where_digits(texts: list[tuple[str, str]], digits: str) -> list[str]:
    return [where for where, text in texts if digits in re.sub(r"\D", "", text)]


def _upload(content: str, name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode(), content_type="text/csv")


def _run_import(agent, content: str, name: str, *, dry_run: bool) -> ContactImport:
    job = import_create(agent=agent, upload=_upload(content, name), actor_label="import by admin")
    import_start(job=job, dry_run=dry_run)
    import_run(job.pk)
    job.refresh_from_db()
    return job


def _session_with(data: dict) -> str:
    store = SessionStore()
    store.update(data)
    store.create()
    return store.session_key


def _flash(*texts: str) -> str:
    return MessageEncoder().encode([FlashMessage(message_levels.SUCCESS, t) for t in texts])


@pytest.fixture
def person(agent, admin_user, staff_user):
    """Zebulon, with every kind of trace a person leaves in Rapport."""
    admin = Actor.staff(admin_user, is_admin=True)
    AttributeFactory(agent=agent, key="ship", type="text")
    AttributeFactory(agent=agent, key="plan", type="select", options=["Free", "Pro"])
    # History: the name, email, phone, ship and Stripe account all changed once.
    contact = services.contact_upsert(
        agent=agent,
        actor=admin,
        external_id=EXTERNAL_ID,
        data={
            "name": OLD_NAME,
            "email": OLD_EMAIL,
            "phone": OLD_PHONE,
            "attributes": {"ship": OLD_SHIP, "plan": "Free"},
            "stripe_accounts": [{"stripe_id": OLD_STRIPE_ID, "stripe_email": OLD_STRIPE_EMAIL}],
        },
    ).contact
    contact = services.contact_update(
        contact=contact,
        actor=admin,
        data={
            "name": NAME,
            "email": EMAIL,
            "phone": PHONE,
            "avatar_url": AVATAR,
            "company": "Acme",
            "attributes": {"ship": SHIP, "plan": "Pro"},
            "stripe_accounts": [
                {"label": "Main", "stripe_id": STRIPE_ID, "stripe_email": STRIPE_EMAIL}
            ],
        },
    ).contact
    services.contact_tags_add(contact=contact, actor=admin, names=["vip"])
    # A duplicate with another email, merged in with its own conversation.
    duplicate = services.contact_create(
        agent=agent, actor=admin, data={"name": MERGED_NAME, "email": MERGED_EMAIL}
    ).contact
    ConversationFactory(agent=agent, contact=duplicate, subject="Work address").messages.create(
        role="visitor", body=f"Please write to {MERGED_EMAIL} from now on."
    )
    contact = services.contact_merge(primary=contact, secondary=duplicate, actor=admin).contact

    # The widget: a signed-in visitor's conversation, a staff reply, a subject naming them,
    # and an anonymous conversation the same visitor started before.
    session = VisitorSession.objects.create(
        agent=agent, visitor_id="v-zq", contact=contact, signed=True
    )
    chat = helpdesk.widget_conversation_start(
        agent=agent,
        session=session,
        message=(
            f"Hi, {NAME} here ({EMAIL}), call me on (415) 555-9876. My id is {EXTERNAL_ID}, "
            f"Stripe {STRIPE_ID}, ship {SHIP}."
        ),
    )
    helpdesk.staff_reply(
        conversation=chat,
        user=staff_user,
        body=(
            f"Thanks Zebulon! I moved {OLD_STRIPE_ID} ({OLD_STRIPE_EMAIL}) off {OLD_EMAIL}, "
            f"dropped 020 7946 0958 and +44 20 7946 0958, and renamed {OLD_SHIP}."
        ),
    )
    helpdesk.bot_reply(conversation=chat, body="We will call 415-555-9876 within the hour.")
    Conversation.objects.filter(pk=chat.pk).update(subject=f"Refund for {NAME} (+1 415 555 9876)")
    anonymous = ConversationFactory(agent=agent, contact=None, visitor_session=session)
    anonymous.messages.create(role="visitor", body="Text me at 415.555.9876, Mr Harrowgate")

    # Imports: a failed row naming them by name and typed phone only; a dry run whose upload
    # and report hold them (its file name names them too); another agent member's dry run of
    # other people only.
    failed = _run_import(
        agent,
        f"name,phone,email\n{NAME},415.555.9876,not-an-email\n"
        "Bystander Bea,+1 212 555 0100,bea@bystander.test\n"
        "Bystander Bob,+1 212 555 0199,bob-at-nowhere\n",
        "crm.csv",
        dry_run=False,
    )
    assert failed.failed_count == 2
    dry_run = _run_import(
        agent,
        "external_id,name,email,phone,ship\n"
        f"{EXTERNAL_ID},{NAME},{EMAIL},(415) 555-9876,{SHIP}\n"
        "bb-1,Bystander Bea,bea@bystander.test,+1 212 555 0100,Lighthouse\n",
        "zebulon_quixley_crm.csv",
        dry_run=True,
    )
    assert dry_run.status == "completed"
    assert dry_run.file
    assert default_storage.exists(report_name(dry_run))
    others = _run_import(
        agent,
        "external_id,name,email\nbb-2,Bystander Bob,bob@bystander.test\n",
        "others.csv",
        dry_run=True,
    )

    # A failed background task whose traceback quotes them.
    DBTaskResult.objects.create(
        status="FAILED",
        args_kwargs={"args": [str(failed.pk)], "kwargs": {}},
        task_path="transfers.tasks.run_import",
        backend_name="default",
        run_after=timezone.now(),
        exception_class_path="django.db.utils.IntegrityError",
        traceback=f"IntegrityError: Key (agent_id, external_id)=(1, {EXTERNAL_ID}) exists; {EMAIL}",
    )
    # The Django admin's log of an operator's edit.
    LogEntry.objects.create(
        user=admin_user,
        content_type=ContentType.objects.get_for_model(Contact),
        object_id=str(contact.pk),
        object_repr=str(contact),
        action_flag=CHANGE,
        change_message=f"Changed email to {EMAIL}",
    )
    # Sessions: a staff member deleted them (the "… was deleted. Undo" notice is pending);
    # another holds flash messages naming them among others.
    staff = Client()
    staff.force_login(staff_user)
    assert staff.post(contact_url("delete", contact)).status_code == 302
    services.contact_restore(contact=contact, actor=admin)
    flashes = _session_with(
        {"_messages": _flash(f"Merged {MERGED_NAME} into {NAME}.", "Settings saved.")}
    )
    contact.refresh_from_db()
    return {
        "contact": contact,
        "dry_run": dry_run,
        "others": others,
        "staff_session": staff.session.session_key,
        "flash_session": flashes,
    }


@pytest.fixture
def bystander(agent):
    """Someone else of the same agent, with a conversation and a pending notice."""
    contact = ContactFactory(agent=agent, name="Other Person", email="other@bystander.test")
    conversation = ConversationFactory(agent=agent, contact=contact, subject="Other's question")
    conversation.messages.create(role="visitor", body=BYSTANDER_TEXT)
    notice = {"agent": agent.public_id, "text": "Other Person was deleted.", "undo": []}
    return {
        "contact": contact,
        "conversation": conversation,
        "session": _session_with({"contacts_notice": notice}),
    }


def _snapshot(bystander) -> dict:
    contact = Contact.objects.get(pk=bystander["contact"].pk)
    conversation = Conversation.objects.get(pk=bystander["conversation"].pk)
    return {
        "contact": {f.attname: getattr(contact, f.attname) for f in contact._meta.concrete_fields},
        "conversation": (
            conversation.contact_id,
            conversation.subject,
            conversation.contact_erased,
        ),
        "messages": list(conversation.messages.values_list("body", flat=True)),
        "session": Session.objects.get(pk=bystander["session"]).get_decoded(),
    }


def _erase_via(via, agent, admin_user, admin_client, contact) -> None:
    if via == "service":
        services.contact_erase(contact=contact, actor=Actor.staff(admin_user, is_admin=True))
    elif via == "dashboard":
        response = admin_client.post(contact_url("erase", contact), {"confirm": EMAIL})
        assert response.status_code == 302
    else:
        key = api_key_create(agent=agent, name="erasure")
        response = Client(HTTP_AUTHORIZATION=f"Bearer {key.raw}").post(
            reverse("api:contact-erase", kwargs={"contact_id": contact.pk})
        )
        assert response.status_code == 204


@pytest.mark.parametrize("via", ["service", "dashboard", "api"])
def test_erase_leaves_no_identifier_of_the_person_anywhere(
    agent, admin_user, admin_client, person, bystander, via, django_capture_on_commit_callbacks
):
    contact = person["contact"]
    dry_run = ContactImport.objects.get(pk=person["dry_run"].pk)
    texts = _stored_texts()
    for needle in IDENTIFIERS:
        assert _where(texts, needle), f"the setup should store {needle!r}"
    before = _snapshot(bystander)
    others_folder = Path(default_storage.path(job_folder(person["others"].pk)))
    others_files = {p.name: p.read_bytes() for p in others_folder.iterdir()}
    assert len(others_files) == 2  # the upload and the dry-run report

    # Import files go once the erasure commits (a rolled-back erasure loses no file).
    with django_capture_on_commit_callbacks(execute=True):
        _erase_via(via, agent, admin_user, admin_client, contact)

    texts = _stored_texts()
    left = {needle: _where(texts, needle) for needle in IDENTIFIERS}
    left.update({digits: _where_digits(texts, digits) for digits in NATIONAL_DIGITS})
    assert {needle: where for needle, where in left.items() if where} == {}

    # Only a PII-free record of the erasure is left of the contact.
    assert not Contact.objects.filter(pk=contact.pk).exists()
    events = AuditEvent.objects.filter(contact_id=contact.pk)
    assert [e.action for e in events] == ["erased"]
    assert events[0].changes == {"conversations_anonymized": 3}
    # The transcripts stay, anonymized and detached.
    assert Conversation.objects.filter(contact_erased=True).count() == 3
    assert Message.objects.filter(body__contains=ERASED_NAME).exists()
    assert Message.objects.filter(body__contains=ERASED_PHONE).exists()
    assert not VisitorSession.objects.filter(visitor_id="v-zq").exists()
    # The dry run keeps its counts but not its files; its file name no longer names them.
    job = ContactImport.objects.get(pk=dry_run.pk)
    assert (job.total_rows, job.updated_count, job.created_count) == (
        dry_run.total_rows,
        dry_run.updated_count,
        dry_run.created_count,
    )
    assert not job.file
    assert not Path(default_storage.path(job_folder(job.pk))).exists()
    assert job.filename == f"{ERASED_NAME}_crm.csv"
    # The failed row of a bystander stays, for the failed-rows download.
    assert [str(raw) for raw in ImportRowIssue.objects.values_list("raw", flat=True)] == [
        str(["Bystander Bob", "+1 212 555 0199", "bob-at-nowhere"])
    ]
    assert Contact.objects.filter(agent=agent, name="Bystander Bea").exists()
    # Sessions keep what does not mention them.
    flashes = Session.objects.get(pk=person["flash_session"]).get_decoded()
    assert "Settings saved." in flashes["_messages"]
    staff_session = Session.objects.get(pk=person["staff_session"]).get_decoded()
    assert "contacts_notice" not in staff_session
    assert "_auth_user_id" in staff_session
    # Nothing of anyone else changed.
    assert _snapshot(bystander) == before
    assert {p.name: p.read_bytes() for p in others_folder.iterdir()} == others_files
    assert ContactImport.objects.get(pk=person["others"].pk).file


def test_erasing_someone_without_identifiers_only_touches_their_own_records(
    agent, admin_user, bystander
):
    visitor = Contact.objects.create(agent=agent)
    before = _snapshot(bystander)
    services.contact_erase(contact=visitor, actor=Actor.staff(admin_user, is_admin=True))
    assert not Contact.objects.filter(pk=visitor.pk).exists()
    assert _snapshot(bystander) == before


def test_a_queued_import_of_a_file_naming_the_person_is_stopped_and_its_file_removed(
    agent, admin_user, django_capture_on_commit_callbacks
):
    contact = ContactFactory(agent=agent, name=NAME, email=EMAIL, phone=PHONE)
    job = import_create(
        agent=agent,
        upload=_upload(f"email,name\n{EMAIL},{NAME}\nbea@bystander.test,Bea\n", "crm.csv"),
        actor_label="import by admin",
    )
    job = import_start(job=job, dry_run=False)
    assert job.status == ContactImport.Status.QUEUED

    with django_capture_on_commit_callbacks(execute=True):
        services.contact_erase(contact=contact, actor=Actor.staff(admin_user, is_admin=True))

    job.refresh_from_db()
    assert job.status == ContactImport.Status.FAILED
    assert job.error.startswith("Stopped: this file named a contact who was erased.")
    assert not job.file
    assert not Path(default_storage.path(job_folder(job.pk))).exists()
