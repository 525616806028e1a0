"""core.rows builds the same instance `Model.objects.raw()` would, from a row of the
hand-written hot statements (converters applied: JSON, UUIDs, times, on both databases)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from contacts.models import Contact
from core import rows
from identity.models import VisitorSession
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def _fetch(model, pk):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {rows.columns(model)} FROM {model._meta.db_table} WHERE id = %s",  # noqa: S608
            [model._meta.pk.get_db_prep_value(pk, connection)],
        )
        return rows.instance(model, cursor.fetchone())


def test_an_instance_matches_what_raw_builds(agent):
    seen = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    made = ContactFactory(
        agent=agent,
        name="Zoë Ünicode",
        email="zoe@example.com",
        external_id="u-9",
        attributes={"plan": "pro", "mrr": 42.5, "nested": {"a": [1, 2]}},
        last_seen_at=seen,
    )
    built = _fetch(Contact, made.pk)
    (raw,) = Contact.objects.raw(
        f"SELECT {rows.columns(Contact)} FROM contacts_contact WHERE id = %s",  # noqa: S608
        [Contact._meta.pk.get_db_prep_value(made.pk, connection)],
    )
    for field in Contact._meta.concrete_fields:
        assert getattr(built, field.attname) == getattr(raw, field.attname), field.name
    assert built.attributes == {"plan": "pro", "mrr": 42.5, "nested": {"a": [1, 2]}}
    assert built.pk == made.pk
    assert built.last_seen_at == seen
    assert built._state.adding is False
    assert built._state.db == "default"
    built.name = "Zoë saved"  # a normal instance: it saves as an update
    built.save(update_fields=["name"])
    assert Contact.objects.get(pk=made.pk).name == "Zoë saved"


def test_no_row_is_none_and_other_models_work(agent):
    assert rows.instance(Contact, None) is None
    session = VisitorSession.objects.create(agent=agent, visitor_id="v-1")
    again = _fetch(VisitorSession, session.pk)
    assert again.pk == session.pk
    assert again.visitor_id == "v-1"
    assert again.agent_id == agent.pk
    assert again.created_at == session.created_at
