from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

from attributes.models import AttributeDefinition
from contacts.models import Contact, Identity
from demo import bulk_load
from helpdesk.models import Conversation
from workspaces.models import Agent


def _seed(**options) -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


@pytest.mark.django_db
def test_it_tops_an_agent_up_with_realistic_data_and_is_idempotent():
    _seed(contacts=300, workspace="Demo", agent="Support")
    agent = Agent.objects.get(name="Support")
    contacts = Contact.objects.filter(agent=agent)
    assert contacts.count() == 300
    assert {c.type for c in AttributeDefinition.objects.filter(agent=agent)} == {
        "text", "number", "boolean", "date", "datetime", "select", "url",
    }  # fmt: skip
    assert contacts.filter(identity=Identity.VERIFIED).exists()
    assert contacts.filter(identity=Identity.ANONYMOUS).exists()
    assert contacts.exclude(tags=None).exists()
    assert Conversation.objects.filter(agent=agent).exists()
    verified = contacts.filter(identity=Identity.VERIFIED).first()
    assert verified.external_id.startswith("usr_")
    assert "plan" in verified.attributes

    assert "nothing to add" in _seed(contacts=300, workspace="Demo", agent="Support")
    _seed(contacts=350, workspace="Demo", agent="Support")
    assert contacts.count() == 350
    assert contacts.exclude(external_id=None).values("external_id").distinct().count() == (
        contacts.exclude(external_id=None).count()
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="bulk COPY load is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_the_bulk_load_rebuilds_every_index(monkeypatch):
    monkeypatch.setattr(bulk_load, "BULK_LOAD_THRESHOLD", 100)
    _seed(contacts=400, workspace="Bulk", agent="Load")
    agent = Agent.objects.get(name="Load")
    assert Contact.objects.filter(agent=agent).count() == 400
    assert bulk_load.repair_indexes() == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'contacts_contact'")
        names = {row[0] for row in cursor.fetchall()}
    assert {"contact_search_trgm", "contact_sort_name", "contact_sort_created_at"} <= names
