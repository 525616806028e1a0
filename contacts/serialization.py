"""The contact as JSON (SPEC 5): one shape for the API, exports and access requests."""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from contacts.models import Contact
from core.times import iso


def contact_to_dict(
    contact: Contact, *, visible_keys: Container[str] | None = None
) -> dict[str, Any]:
    """Serialize a contact; expects tags and stripe_accounts prefetched.

    `visible_keys` limits attributes (e.g. to non-archived definitions); None shows all.
    """
    attributes = contact.attributes or {}
    if visible_keys is not None:
        attributes = {k: v for k, v in attributes.items() if k in visible_keys}
    return {
        "id": str(contact.id),
        "external_id": contact.external_id,
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "avatar_url": contact.avatar_url,
        "company": contact.company,
        "identity": contact.identity,
        "verified_at": iso(contact.verified_at),
        "attributes": dict(attributes),
        "tags": sorted((t.name for t in contact.tags.all()), key=str.casefold),
        "stripe_accounts": [
            {"label": a.label, "stripe_id": a.stripe_id, "stripe_email": a.stripe_email}
            for a in contact.stripe_accounts.all()
        ],
        "first_seen_at": iso(contact.first_seen_at),
        "last_seen_at": iso(contact.last_seen_at),
        "created_at": iso(contact.created_at),
        "updated_at": iso(contact.updated_at),
        "deleted_at": iso(contact.deleted_at),
    }
