"""Identify under concurrency (PostgreSQL): many browsers, the same users, one contact each."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from contacts.models import Contact
from tests.helpers import race
from tests.identity.conftest import make_jwt, user_hash

pytestmark = [
    pytest.mark.usefixtures("no_widget_rate_limit"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="threads race on PostgreSQL"),
]


def test_twenty_threads_identifying_a_hundred_users_make_a_hundred_contacts(agent):
    url = reverse("identity:identify", kwargs={"agent_public_id": agent.public_id})
    tokens = {
        n: make_jwt(
            agent,
            exp_in=3600,
            user_id=f"user-{n}",
            contact_attributes={"name": f"User {n}", "email": f"user{n}@example.com"},
        )
        for n in range(100)
    }
    statuses: list[int] = []

    def worker(index: int) -> None:
        client = Client()
        for call in range(50):
            user = (index * 7 + call) % 100  # every thread walks all users, out of step
            response = client.post(
                url,
                json.dumps({"visitor_id": str(uuid.uuid4()), "token": tokens[user]}),
                content_type="application/json",
            )
            statuses.append(response.status_code)
            assert response.status_code == 200, response.content

    race(worker, 20, timeout=300)
    assert statuses.count(200) == 1000
    contacts = Contact.objects.filter(agent=agent)
    assert contacts.count() == 100
    assert set(contacts.values_list("external_id", flat=True)) == {f"user-{n}" for n in range(100)}
    assert set(contacts.values_list("identity", flat=True)) == {"verified"}


def test_the_same_user_identifying_everywhere_at_once_is_one_contact(agent):
    url = reverse("identity:identify", kwargs={"agent_public_id": agent.public_id})
    ids: set[str] = set()

    def worker(index: int) -> None:
        body = (
            {"token": make_jwt(agent, user_id="same")}
            if index % 2
            else {"user_id": "same", "user_hash": user_hash(agent, "same")}
        )
        response = Client().post(
            url,
            json.dumps({"visitor_id": str(uuid.uuid4()), **body}),
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
        ids.add(response.json()["contact"]["id"])

    race(worker, 12, timeout=300)
    assert Contact.objects.filter(agent=agent).count() == 1
    assert ids == {str(Contact.objects.get(agent=agent).pk)}


def test_visitors_typing_the_same_email_at_once_share_one_self_reported_contact(agent):
    url = reverse("identity:identify", kwargs={"agent_public_id": agent.public_id})

    def worker(index: int) -> None:
        response = Client().post(
            url,
            json.dumps({"visitor_id": str(uuid.uuid4()), "email": "Same@Example.com"}),
            content_type="application/json",
        )
        assert response.status_code == 200, response.content

    race(worker, 10, timeout=300)
    assert Contact.objects.filter(agent=agent).count() == 1


def _known_contact(agent) -> Contact:
    from contacts.services import contact_create
    from core.actors import Actor

    return contact_create(
        agent=agent, actor=Actor.importer("crm.csv"), data={"email": "known@example.com"}
    ).contact


def _identify_signed(agent, user_id: str) -> str:
    url = reverse("identity:identify", kwargs={"agent_public_id": agent.public_id})
    token = make_jwt(agent, user_id=user_id, contact_attributes={"email": "Known@example.com"})
    response = Client().post(
        url,
        json.dumps({"visitor_id": str(uuid.uuid4()), "token": token}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()["contact"]["id"]


def test_the_same_user_signing_in_everywhere_at_once_adopts_the_known_contact_once(agent):
    known = _known_contact(agent)
    ids = set(race(lambda index: _identify_signed(agent, "u-1"), 12, timeout=300))
    assert ids == {str(known.pk)}
    assert Contact.objects.filter(agent=agent).count() == 1
    known.refresh_from_db()
    assert known.external_id == "u-1"


def test_two_users_racing_for_one_known_email_adopt_it_once(agent):
    known = _known_contact(agent)
    results = race(lambda index: (index % 2, _identify_signed(agent, f"u-{index % 2}")), 12)
    by_user: dict[int, set[str]] = {}
    for user, contact_id in results:
        by_user.setdefault(user, set()).add(contact_id)
    # Each user is one contact, and exactly one of them is the contact the team made.
    assert all(len(ids) == 1 for ids in by_user.values())
    assert [ids for ids in by_user.values() if str(known.pk) in ids] != []
    assert by_user[0] != by_user[1]
    assert Contact.objects.filter(agent=agent).count() == 2
    known.refresh_from_db()
    assert known.external_id in ("u-0", "u-1")
