"""Deleting an endpoint while a change is writing deliveries for it (PostgreSQL, where the
two really run at once): the delete waits for the change, the change commits, and the
endpoint goes with every delivery, the new one included. Without the lock taken when the
change reads its endpoints, the change's commit fails on the deliveries' foreign key."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from contacts.models import Contact
from contacts.services import contact_update
from core.actors import Actor
from tests.factories import ContactFactory
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="two transactions at once need PostgreSQL"
)


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_deleted_while_a_change_writes_its_delivery_waits_for_it(agent, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    endpoint, _secret = services.endpoint_create(
        agent=agent, url="http://127.0.0.1:9/hook", events=["contact.updated"]
    )
    contact = ContactFactory(agent=agent, name="Ada")
    written, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def change() -> None:
        try:
            with transaction.atomic():
                contact_update(
                    contact=Contact.objects.get(pk=contact.pk),
                    actor=Actor.importer("race"),
                    data={"name": "Ada Lovelace"},
                )
                written.set()  # its delivery is written, not yet committed
                release.wait(10)
        except BaseException as exc:
            errors.append(exc)
        finally:
            written.set()
            connections.close_all()

    def delete() -> None:
        try:
            services.endpoint_delete(WebhookEndpoint.objects.get(pk=endpoint.pk))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    changing = threading.Thread(target=change)
    changing.start()
    assert written.wait(10)
    deleting = threading.Thread(target=delete)
    deleting.start()
    deleting.join(1.0)
    assert deleting.is_alive()  # the delete waits for the change under way
    release.set()
    changing.join(10)
    deleting.join(10)

    assert errors == []
    assert Contact.objects.get(pk=contact.pk).name == "Ada Lovelace"
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert not WebhookDelivery.objects.exists()
