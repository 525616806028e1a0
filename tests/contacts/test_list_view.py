from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import ContactFactory, TagFactory

pytestmark = pytest.mark.django_db


def _url(agent) -> str:
    return reverse("contacts:list", kwargs={"agent_public_id": agent.public_id})


def test_it_lists_the_agents_contacts_newest_first(staff_client, agent, other_agent):
    ContactFactory(agent=agent, name="Older Person")
    ContactFactory(agent=agent, name="Newer Person")
    ContactFactory(agent=other_agent, name="Foreign Person")
    content = staff_client.get(_url(agent)).content.decode()
    assert content.index("Newer Person") < content.index("Older Person")
    assert "Foreign Person" not in content
    assert "2 contacts" in content


def test_search_narrows_the_list(staff_client, agent):
    ContactFactory(agent=agent, name="Ada Lovelace", email="ada@example.com")
    ContactFactory(agent=agent, name="Alan Turing", email="alan@example.com")
    content = staff_client.get(_url(agent), {"q": "LOVE"}).content.decode()
    assert "Ada Lovelace" in content
    assert "Alan Turing" not in content


def test_names_are_escaped(staff_client, agent):
    ContactFactory(agent=agent, name="<script>alert(1)</script>")
    content = staff_client.get(_url(agent)).content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_the_query_count_does_not_grow_with_rows(
    staff_client, agent, django_assert_max_num_queries
):
    tag = TagFactory(agent=agent)
    for contact in ContactFactory.create_batch(3, agent=agent):
        contact.tags.add(tag)
    with django_assert_max_num_queries(12) as small:
        staff_client.get(_url(agent))
    for contact in ContactFactory.create_batch(30, agent=agent):
        contact.tags.add(tag)
    with django_assert_max_num_queries(len(small.captured_queries)):
        staff_client.get(_url(agent))
