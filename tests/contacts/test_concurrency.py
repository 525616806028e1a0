"""Two writers racing for the same person must end with one contact, never an error."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from contacts import services
from contacts.models import Contact
from core.actors import Actor

pytestmark = pytest.mark.django_db(transaction=True)


def _race(target, count: int = 8) -> list:
    barrier = threading.Barrier(count)
    results, errors = [], []

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(target(index))
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return results


@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads race on PostgreSQL")
def test_racing_upserts_create_exactly_one_contact(agent):
    actor = Actor.system("race")
    results = _race(
        lambda i: services.contact_upsert(
            agent=agent, actor=actor, external_id="racer", data={"company": f"Writer {i}"}
        )
    )
    assert Contact.objects.filter(agent=agent, external_id="racer").count() == 1
    assert sum(1 for r in results if r.created) == 1
    assert {r.contact.pk for r in results} == {Contact.objects.get(external_id="racer").pk}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads race on PostgreSQL")
def test_racing_unverified_ensures_create_exactly_one_contact(agent):
    actor = Actor.system("race")
    results = _race(
        lambda i: services.contact_ensure(
            agent=agent, actor=actor, data={"email": "Same@Example.com"}
        )
    )
    assert Contact.objects.filter(agent=agent).count() == 1
    assert sum(1 for r in results if r.created) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads race on PostgreSQL")
def test_racing_tag_creation_makes_one_tag(agent):
    from contacts.models import Tag
    from tests.factories import ContactFactory

    contacts = ContactFactory.create_batch(6, agent=agent)
    actor = Actor.system("race")
    _race(
        lambda i: services.contact_tags_add(
            contact=contacts[i], actor=actor, names=["Hot Lead" if i % 2 else "hot lead"]
        ),
        count=6,
    )
    assert Tag.objects.filter(agent=agent).count() == 1
