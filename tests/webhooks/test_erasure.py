"""An erased person leaves no trace in the outbox: their messages go (sent or waiting), bulk
batches lose their entries, other mentions are scrubbed; the erased event has their id only."""

from __future__ import annotations

import orjson
import pytest
from django.db import transaction

from contacts.models import Contact
from contacts.services import contact_create, contact_erase, contact_merge, contact_update
from contacts.signals import changes_batched
from core.actors import Actor
from helpdesk.services import conversation_start
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookMessage
from webhooks.rendering import messages_render

pytestmark = pytest.mark.django_db
ACTOR = Actor.importer("erasure tests")


@pytest.fixture(autouse=True)
def endpoint(agent, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    return services.endpoint_create(agent=agent, url="https://hooks.example.com/x", events=["*"])[0]


def render(message: WebhookMessage) -> str:
    messages_render([message])
    return message.body


def create(agent, name: str, email: str) -> Contact:
    return contact_create(agent=agent, actor=ACTOR, data={"name": name, "email": email}).contact


def bodies(agent) -> str:
    """Every message of the agent as it would be sent (drafts rendered)."""
    messages = list(WebhookMessage.objects.filter(agent=agent))
    messages_render(messages)
    return " ".join(m.body for m in messages)


def test_erasure_removes_the_person_from_every_message(agent):
    zeb = create(agent, "Zebulon Quixley", "zeb@example.com")
    contact_update(contact=zeb, actor=ACTOR, data={"phone": "+14155559876"})
    twin = create(agent, "Zeb Q", "zebq@example.com")
    contact_merge(primary=zeb, secondary=twin, actor=ACTOR)
    conversation_start(agent=agent, contact=None, first_message="I am zeb@example.com")
    ada = create(agent, "Ada Lovelace", "ada@example.com")
    for company, source in (("Q", "sent"), ("R", "draft")):
        with transaction.atomic(), changes_batched(source):
            for person in (zeb, ada):
                contact_update(
                    contact=Contact.objects.get(pk=person.pk),
                    actor=ACTOR,
                    data={"company": company},
                )
    # One batch is sent before the erasure, the other is still a draft.
    sent = WebhookMessage.objects.get(ordering_key="sent")
    messages_render([sent])
    assert "zeb@example.com" in sent.body
    assert str(zeb.pk) in str(WebhookMessage.objects.get(ordering_key="draft").draft)

    record = contact_erase(contact=Contact.objects.get(pk=zeb.pk), actor=ACTOR)

    assert record["webhook_messages_deleted"] >= 4  # created, updated, merged, the twin's
    # The two batches lose the person; the anonymous conversation's subject is scrubbed.
    assert record["webhook_messages_redacted"] == 3
    text = bodies(agent)
    for trace in ("zeb@example.com", "zebq@example.com", "Quixley", "+14155559876"):
        assert trace not in text, trace
    assert str(twin.pk) not in text
    # The other people of the batches stay.
    for source in ("sent", "draft"):
        (item,) = orjson.loads(render(WebhookMessage.objects.get(ordering_key=source)))["data"][
            "contacts"
        ]
        assert item["contact"]["email"] == "ada@example.com"
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
    assert batch.draft is not None
    contact_erase(contact=zeb, actor=ACTOR)
    assert not WebhookMessage.objects.filter(pk=batch.pk).exists()
    assert not WebhookDelivery.objects.filter(message_id=batch.pk).exists()


def test_an_erasure_over_the_api_leaves_the_outbox_without_the_person(agent, api):
    created = api.post(
        "/api/v1/contacts/",
        {"name": "Zebulon Quixley", "email": "zeb@example.com", "phone": "+14155559876"},
        format="json",
    )
    assert created.status_code == 201
    contact_id = created.json()["id"]
    assert (
        api.patch(
            f"/api/v1/contacts/{contact_id}/", {"company": "Quixley Ltd"}, format="json"
        ).status_code
        == 200
    )
    assert "zeb@example.com" in bodies(agent)  # the events name the person before

    assert api.post(f"/api/v1/contacts/{contact_id}/erase/").status_code == 204

    text = bodies(agent)
    for trace in ("zeb@example.com", "Quixley", "+14155559876", "Zebulon"):
        assert trace not in text, trace
    (erased,) = WebhookMessage.objects.filter(agent=agent)
    assert erased.event_type == "contact.erased"
    assert orjson.loads(erased.body)["data"] == {"contact": {"id": contact_id}}
