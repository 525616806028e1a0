"""Two writers racing for the same person must end with one contact, never an error."""

from __future__ import annotations

import pytest
from django.db import connection

from contacts import services
from contacts.models import Contact
from core.actors import Actor
from tests.helpers import race

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads race on PostgreSQL")
def test_racing_upserts_create_exactly_one_contact(agent):
    actor = Actor.system("race")
    results = race(
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
    results = race(
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
    race(
        lambda i: services.contact_tags_add(
            contact=contacts[i], actor=actor, names=["Hot Lead" if i % 2 else "hot lead"]
        ),
        count=6,
    )
    assert Tag.objects.filter(agent=agent).count() == 1
