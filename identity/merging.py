"""What becomes of a visitor's earlier contacts when it identifies (SPEC 6, "merged into").

Merges go through `contacts.services.contact_merge` with the identify's Actor, so the
contact's history shows a merge by "identify (signed JWT)" or "widget (self-reported)".
"""

from __future__ import annotations

import logging

from contacts.models import Contact, Identity
from contacts.selectors import self_reported_twin_ids
from contacts.services import contact_merge
from core.actors import Actor
from core.errors import DomainError
from identity.models import VisitorSession
from identity.signals import visitor_history_moving
from workspaces.models import Agent

logger = logging.getLogger("rapport.identity")

# Same-email contacts folded into a verified one per identify: enough for any real person,
# and a bound on the work one request can cause.
MAX_EMAIL_MERGES = 20


def visitor_history_absorb(*, session: VisitorSession, target: Contact, actor: Actor) -> Contact:
    """Fold what this visitor was before verifying into `target`.

    The session's own contact (anonymous, or self-reported and created by this session) is
    merged. A self-reported contact the session merely attached to belongs to whoever
    created it, so only this session's conversations move. A different verified contact
    (someone else signed in on this browser before) keeps everything.
    """
    if session.contact_id is None or session.contact_id == target.pk:
        return target
    previous = Contact.objects.filter(pk=session.contact_id).first()
    if previous is None or previous.identity == Identity.VERIFIED:
        return target
    if session.created_contact or previous.identity == Identity.ANONYMOUS:
        return merge_quietly(primary=target, secondary=previous, actor=actor)
    visitor_history_moving.send(
        sender=VisitorSession, session=session, source=previous, target=target, actor=actor
    )
    return target


def same_email_absorb(*, agent: Agent, target: Contact, actor: Actor) -> Contact:
    """Merge self-reported contacts with the verified contact's email into it."""
    ids = self_reported_twin_ids(
        agent=agent, email=target.email, exclude=target, limit=MAX_EMAIL_MERGES
    )
    if not ids:
        return target
    for other in Contact.objects.filter(pk__in=ids).order_by("created_at", "id"):
        target = merge_quietly(primary=target, secondary=other, actor=actor)
    return target


def merge_quietly(*, primary: Contact, secondary: Contact, actor: Actor) -> Contact:
    """Merge, or leave both as they are when a concurrent identify already did (or the
    two cannot be merged): identify itself never fails because of a merge."""
    try:
        return contact_merge(primary=primary, secondary=secondary, actor=actor).contact
    except DomainError as exc:
        logger.info("identify skipped merging %s into %s: %s", secondary.pk, primary.pk, exc)
        return Contact.objects.get(pk=primary.pk)
