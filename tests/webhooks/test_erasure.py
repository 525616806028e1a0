"""An erased person leaves no trace in the outbox: their messages go (sent or waiting), bulk
batches lose their entries, other mentions are scrubbed; the erased event has their id only."""

from __future__ import annotations

import pytest
from django.db import transaction

from contacts.models import Contact
from contacts.services import contact_create, contact_erase, contact_merge, contact_update
from contacts.signals import changes_batched
from core.actors import Actor
from helpdesk.services import conversation_start
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookMessage

pytestmark = pytest.mark.django_db
ACTOR = Actor.importer("erasure tests")


@pytest.fixture(autouse=True)
def endpoint(agent, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    return services.endpoint_create(agent=agent, url="https://hooks.example.com/x", events=["*"])[0]


def create(agent, name: str, email: str) -> Contact:
    return contact_create(agent=agent, actor=ACTOR, data={"name": name, "email": email}).contact


def bodies(agent) -> str:
    return " ".join(WebhookMessage.objects.filter(agent=agent).values_list("body", flat=True))


def test_erasure_removes_the_person_from_every_message(agent):
    zeb = create(agent, "Zebulon Quixley", "zeb@example.com")
    contact_update(contact=zeb, actor=ACTOR, data={"phone": "+14155559876"})
    twin = create(agent, "Zeb Q", "zebq@example.com")
    contact_merge(primary=zeb, secondary=twin, actor=ACTOR)
    conversation_start(agent=agent, contact=None, first_message="I am zeb@example.com")
    with transaction.atomic(), changes_batched("bulk"):
        ada = create(agent, "Ada Lovelace", "ada@example.com")
        contact_update(contact=Contact.objects.get(pk=zeb.pk), actor=ACTOR, data={"company": "Q"})
    batch = WebhookMessage.objects.get(event_type="contact.updated", ordering_key="bulk")
    assert "zeb@example.com" in batch.body
    assert "zeb@example.com" in bodies(agent)

    record = contact_erase(contact=Contact.objects.get(pk=zeb.pk), actor=ACTOR)

    assert record["webhook_messages_deleted"] >= 4  # created, updated, merged, the twin's
    assert record["webhook_messages_redacted"] == 1  # the bulk batch
    text = bodies(agent)
    for trace in ("zeb@example.com", "zebq@example.com", "Quixley", "+14155559876"):
        assert trace not in text, trace
    assert str(twin.pk) not in text
    # The other people of the batches stay.
    assert "ada@example.com" in text
    created = WebhookMessage.objects.get(event_type="contact.created", ordering_key="bulk")
    assert str(ada.pk) in created.body
    # The anonymous conversation's subject is scrubbed, its event kept.
    conversation = WebhookMessage.objects.get(event_type="conversation.created")
    assert "[erased email]" in conversation.body
    # The erasure itself is an event, with the id alone, on its way.
    erased = WebhookMessage.objects.get(event_type="contact.erased")
    assert erased.body.count(str(zeb.pk)) == 1
    assert '"data":{"contact":{"id":"' + str(zeb.pk) + '"}}' in erased.body
    assert WebhookDelivery.objects.filter(message=erased, status="pending").exists()


def test_a_batch_holding_only_the_person_goes(agent):
    with transaction.atomic(), changes_batched("import:x"):
        zeb = create(agent, "Zebulon Quixley", "zeb@example.com")
    (batch,) = WebhookMessage.objects.filter(ordering_key="import:x")
    contact_erase(contact=zeb, actor=ACTOR)
    assert not WebhookMessage.objects.filter(pk=batch.pk).exists()
    assert not WebhookDelivery.objects.filter(message_id=batch.pk).exists()
