"""Every write to a contact: atomic, audited, and the same for dashboard, API, imports and
identify. One module per topic; import from here.

| module | writes |
| --- | --- |
| `writes` | create, upsert by external id, update, ensure, last seen |
| `tags` | tags on one contact or many |
| `stripe` | Stripe accounts |
| `lifecycle` | soft delete and restore, one or many |
| `merge` | two contacts into one |
| `erasure` | GDPR erasure |
| `notes` | notes on a contact (they follow merges and go with erasures) |
| `preferences` | a person's table layout |
| `segments` | saved views of the table (and their part in erasures) |
| `audit` | the result of a write and the history it leaves |
"""

from contacts.services.audit import ContactWrite, audit, audit_many, audit_relabel
from contacts.services.erasure import contact_erase
from contacts.services.lifecycle import (
    contact_restore,
    contact_soft_delete,
    contacts_restore_bulk,
    contacts_soft_delete_bulk,
)
from contacts.services.merge import contact_merge, contact_merge_preview, contacts_mergeable
from contacts.services.notes import note_create, note_delete, note_update
from contacts.services.preferences import table_preference_save
from contacts.services.segments import segment_create, segment_delete, segment_update
from contacts.services.stripe import (
    stripe_account_add,
    stripe_account_remove,
    stripe_account_update,
)
from contacts.services.tags import (
    contact_tags_add,
    contact_tags_remove,
    contact_tags_set,
    contacts_tags_add_bulk,
    tags_get_or_create,
)
from contacts.services.writes import (
    contact_conversation_count_add,
    contact_create,
    contact_ensure,
    contact_mark_seen,
    contact_update,
    contact_upsert,
    contact_upsert_input,
    contact_upsert_unchanged,
    creation_changes,
    fingerprint_for,
)

__all__ = [
    "ContactWrite",
    "audit",
    "audit_many",
    "audit_relabel",
    "contact_conversation_count_add",
    "contact_create",
    "contact_ensure",
    "contact_erase",
    "contact_mark_seen",
    "contact_merge",
    "contact_merge_preview",
    "contact_restore",
    "contact_soft_delete",
    "contact_tags_add",
    "contact_tags_remove",
    "contact_tags_set",
    "contact_update",
    "contact_upsert",
    "contact_upsert_input",
    "contact_upsert_unchanged",
    "contacts_mergeable",
    "contacts_restore_bulk",
    "contacts_soft_delete_bulk",
    "contacts_tags_add_bulk",
    "creation_changes",
    "fingerprint_for",
    "note_create",
    "note_delete",
    "note_update",
    "segment_create",
    "segment_delete",
    "segment_update",
    "stripe_account_add",
    "stripe_account_remove",
    "stripe_account_update",
    "table_preference_save",
    "tags_get_or_create",
]
