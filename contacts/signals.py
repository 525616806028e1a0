"""What contacts tell the apps built on them, inside the transaction of the change.

Contacts never import identity, helpdesk or transfers. Those apps own what hangs off a
contact (visitor sessions, conversations, import rows and files) and connect receivers
here in their `AppConfig.ready`, so a merge or an erasure does their part in the same
transaction, and a receiver's failure rolls the whole change back.

- `contact_merging(primary, secondary, actor)`: `secondary` is about to be folded into
  `primary` (whose fields already hold the merged values and identity). Move what belongs
  to `secondary`; return a dict of audit changes (e.g. {"conversations_moved": [None, 2]})
  or None. A receiver may set denormalized fields on `primary` (it is saved afterwards).
- `contact_erasing(contact, redactor)`: the person is being erased. Redact or delete every
  copy of their identifiers you store (`redactor` recognises them, see
  core.redaction); return a dict of counts for the erasure's record, or None.
- `contact_forgetting(contact)`: after every `contact_erasing` receiver ran, just before the
  contact row goes: delete what only links to it (visitor sessions).
- `contact_data_requested(contact)`: an access request (GDPR art. 15); return a dict of
  sections to add to the contact's data export.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

contact_merging = Signal()
contact_erasing = Signal()
contact_forgetting = Signal()
contact_data_requested = Signal()


def collected(responses: list[tuple[Any, Any]]) -> dict[str, Any]:
    """The receivers' dict answers, merged in the order they were connected."""
    out: dict[str, Any] = {}
    for _receiver, answer in responses:
        if answer:
            out.update(answer)
    return out
