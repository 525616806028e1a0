"""A contact's conversations through the API: most recent first, cursor pages."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from tests.factories import ContactFactory, ConversationFactory
from tests.helpers import error

pytestmark = pytest.mark.django_db


def test_a_contacts_conversations_most_recent_first_with_pages(api, agent):
    contact = ContactFactory(agent=agent)
    ConversationFactory(agent=agent, contact=ContactFactory(agent=agent))  # someone else's
    now = timezone.now()
    made = [
        ConversationFactory(
            agent=agent,
            contact=contact,
            subject=f"S{n}",
            last_message_at=now - timedelta(hours=n % 3),
        )
        for n in range(5)
    ]
    url = f"/api/v1/contacts/{contact.pk}/conversations/?page_size=2"
    seen = []
    while url:
        response = api.get(url)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"results", "next"}
        seen += body["results"]
        url = (
            (urlsplit(body["next"]).path + "?" + urlsplit(body["next"]).query)
            if body["next"]
            else None
        )
    assert sorted(c["id"] for c in seen) == sorted(str(c.pk) for c in made)
    assert set(seen[0]) == {
        "id",
        "status",
        "subject",
        "created_at",
        "updated_at",
        "last_message_at",
    }
    times = [c["last_message_at"] for c in seen]
    assert times == sorted(times, reverse=True)
    bad = api.get(f"/api/v1/contacts/{contact.pk}/conversations/?cursor=zzz")
    assert bad.status_code == 400
    assert "cursor" in error(bad)["fields"]
