"""After a GDPR erasure the person's name, email and phone are in no text column anywhere."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models

from contacts import services
from contacts.actors import Actor
from contacts.models import ContactImport, ImportRowIssue
from identity.models import VisitorSession
from tests.factories import AttributeFactory, ContactFactory, ConversationFactory

pytestmark = pytest.mark.django_db

NAME, EMAIL, PHONE = "Zebulon Quixley", "zeb.quixley@example.org", "+14155559876"


def _rows_mentioning(needle: str) -> list[str]:
    hits = []
    for model in apps.get_models():
        text_fields = [
            f
            for f in model._meta.concrete_fields
            if isinstance(f, (models.CharField, models.TextField, models.JSONField))
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
