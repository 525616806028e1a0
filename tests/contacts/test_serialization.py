from __future__ import annotations

import pytest

from contacts.serialization import contact_to_dict, contacts_to_dicts, tag_names_by_contact
from tests.factories import ContactFactory, TagFactory

pytestmark = pytest.mark.django_db


def test_tag_names_by_contact_reads_each_contacts_names_alphabetically_in_one_query(
    agent, django_assert_num_queries
):
    first, second, untagged = ContactFactory.create_batch(3, agent=agent)
    for name in ("gamma", "Alpha", "beta"):
        first.tags.add(TagFactory(agent=agent, name=name))
    second.tags.add(TagFactory(agent=agent, name="Zed"))
    with django_assert_num_queries(1):
        names = tag_names_by_contact([first.pk, second.pk, untagged.pk])
    assert names == {first.pk: ["Alpha", "beta", "gamma"], second.pk: ["Zed"]}
    with django_assert_num_queries(0):
        assert tag_names_by_contact([]) == {}


def test_many_contacts_serialize_their_tags_as_one_contact_does(agent):
    contact = ContactFactory(agent=agent)
    for name in ("gamma", "Alpha", "beta"):
        contact.tags.add(TagFactory(agent=agent, name=name))
    single = contact_to_dict(contact)
    assert single["tags"] == ["Alpha", "beta", "gamma"]
    assert contacts_to_dicts([contact.pk])[contact.pk]["tags"] == single["tags"]
