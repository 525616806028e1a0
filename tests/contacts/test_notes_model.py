from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from contacts.models import NOTE_MAX_LENGTH, Note

pytestmark = pytest.mark.django_db


def test_the_database_refuses_an_empty_or_overlong_note(agent, contact):
    Note.objects.create(contact=contact, agent=agent, body="x" * NOTE_MAX_LENGTH)
    for body in ("", "x" * (NOTE_MAX_LENGTH + 1)):
        with pytest.raises(IntegrityError), transaction.atomic():
            Note.objects.create(contact=contact, agent=agent, body=body)
    assert Note.objects.count() == 1


def test_notes_go_with_their_contact(agent, contact):
    Note.objects.create(contact=contact, agent=agent, body="Called about the invoice")
    contact.delete()
    assert not Note.objects.exists()
