"""Who a person is, for erasure: every identifying value a contact holds now or held before."""

from __future__ import annotations

from typing import Any

from attributes.models import AttributeDefinition
from contacts.models import AuditEvent, Contact
from core.redaction import Identifiers, dicts, strings

# Audit change keys whose before/after values are the person's identifiers.
_NAME_KEYS = {"name"}
_EMAIL_KEYS = {"email"}
_PHONE_KEYS = {"phone"}
_ID_KEYS = {"external_id", "avatar_url", "stripe_accounts_added"}
_STRIPE_KEYS = {"stripe_accounts"}
_TEXT_ATTRIBUTE_TYPES = ("text", "url")


def person_identifiers(contact: Contact) -> Identifiers:
    """Every value, current and past, that identifies the person `contact` stands for:
    its fields now, and every before/after value of its history (which also holds the
    history of every contact merged into it)."""
    found = Identifiers()
    text_keys = set(
        AttributeDefinition.objects.filter(
            agent_id=contact.agent_id, type__in=_TEXT_ATTRIBUTE_TYPES
        ).values_list("key", flat=True)
    )
    found.add(found.names, contact.name)
    found.add(found.emails, contact.email)
    found.add(found.phones, contact.phone)
    found.add(found.ids, contact.external_id, contact.avatar_url)
    for key, value in (contact.attributes or {}).items():
        if key in text_keys:
            found.add(found.values, value)
    for account in contact.stripe_accounts.all():
        found.add(found.ids, account.stripe_id)
        found.add(found.emails, account.stripe_email)
    history = AuditEvent.objects.filter(contact_id=contact.pk).values_list("changes", flat=True)
    for changes in history.iterator(chunk_size=500):
        if isinstance(changes, dict):
            _add_changes(found, changes, text_keys)
    return found


def _add_changes(found: Identifiers, changes: dict[str, Any], text_keys: set[str]) -> None:
    for key, change in changes.items():
        if key in _NAME_KEYS:
            found.add(found.names, *strings(change))
        elif key in _EMAIL_KEYS:
            found.add(found.emails, *strings(change))
        elif key in _PHONE_KEYS:
            found.add(found.phones, *strings(change))
        elif key in _ID_KEYS:
            found.add(found.ids, *strings(change))
        elif key in _STRIPE_KEYS:
            for account in dicts(change):
                found.add(found.ids, account.get("stripe_id"))
                found.add(found.emails, account.get("stripe_email"))
        elif key.startswith("attributes.") and key.split(".", 1)[1] in text_keys:
            found.add(found.values, *strings(change))
        elif key == "merged_contact":
            for merged in dicts(change):  # {"id", "name", "email"} of the merged-away contact
                found.merged_contact_ids.add(str(merged.get("id", "")))
                found.add(found.names, merged.get("name"))
                found.add(found.emails, merged.get("email"))
            # Histories written before merges kept names: [id, None].
            found.merged_contact_ids.update(v for v in change if isinstance(v, str))
