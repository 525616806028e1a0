"""Identity's part of what happens to contacts (connected in IdentityConfig.ready)."""

from __future__ import annotations

from typing import Any

from contacts import signals
from contacts.models import Contact, Identity
from core.actors import Actor
from core.times import iso
from identity.models import VisitorSession


def sessions_follow_merge(
    sender: Any, *, primary: Contact, secondary: Contact, actor: Actor, **kwargs: Any
) -> None:
    """The merged-away contact's visitor sessions follow it into `primary`, by the trust
    rule (SPEC 6): a merge may bring data and conversations into a verified contact, never
    a session that did not sign in itself. Such sessions (the merged-away contact's, or the
    primary's own when the merge is what makes it verified) go back to anonymous."""
    if primary.identity == Identity.VERIFIED:
        VisitorSession.objects.filter(
            contact_id__in=[primary.pk, secondary.pk], signed=False
        ).update(contact=None, created_contact=False, context=None, context_at=None)
    VisitorSession.objects.filter(contact=secondary).update(contact=primary, created_contact=False)


def sessions_forget(sender: Any, *, contact: Contact, **kwargs: Any) -> None:
    """An erased person's visitor sessions go with them."""
    VisitorSession.objects.filter(contact=contact).delete()


def sessions_export(sender: Any, *, contact: Contact, **kwargs: Any) -> dict[str, Any]:
    return {
        "visitor_sessions": [
            {
                "visitor_id": s.visitor_id,
                "created_at": iso(s.created_at),
                # What the customer's page said beside its signed token, kept for the bot.
                "session_context": s.context,
            }
            for s in VisitorSession.objects.filter(contact=contact).order_by("created_at")
        ]
    }


def connect() -> None:
    signals.contact_merging.connect(sessions_follow_merge, dispatch_uid="identity")
    signals.contact_forgetting.connect(sessions_forget, dispatch_uid="identity")
    signals.contact_data_requested.connect(sessions_export, dispatch_uid="identity")
