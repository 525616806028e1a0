"""Saved segments: save a table state under a name, change it, delete it.

Who may do what: anyone on the agent saves segments (private, or shared with the team);
a segment is changed or deleted by its creator, and a shared one also by an admin; only
its creator makes it shared or private again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.http import QueryDict
from django.utils import timezone

from attributes.models import AttributeDefinition
from contacts.models import SEGMENT_NAME_MAX, SEGMENT_QUERY_MAX, Contact, Segment
from contacts.query.filterset import ContactFilterSet
from contacts.query.keyset import DEFAULT_ORDERING
from contacts.query.segments import segment_query
from contacts.signals import contact_erasing
from core.errors import ForbiddenError, ValidationFailed
from core.redaction import Redactor
from workspaces.models import Agent

MAX_SEGMENTS_PER_PERSON = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def segment_can_change(*, segment: Segment, user: Any, is_admin: bool) -> bool:
    """Its creator, or an admin when it is shared."""
    return segment.owner_id == user.pk or (segment.shared and is_admin)


def _clean_name(name: Any) -> str:
    text = " ".join(str(name or "").split())
    if not text:
        raise ValidationFailed({"name": ["Give the segment a name."]})
    if len(text) > SEGMENT_NAME_MAX:
        raise ValidationFailed({"name": [f"Use at most {SEGMENT_NAME_MAX} characters."]})
    if _CONTROL.search(text):
        raise ValidationFailed({"name": ["A name may not contain control characters."]})
    return text


def _clean_query(
    query: str, *, agent: Agent, definitions: Mapping[str, AttributeDefinition]
) -> str:
    """The state as a segment keeps it, once every parameter is known to apply."""
    params = QueryDict(str(query or ""), mutable=True)
    # Always an order: `?segment=<id>` then opens as an address with state of its own.
    params.setdefault("ordering", DEFAULT_ORDERING)
    text = segment_query(params)
    if len(text) > SEGMENT_QUERY_MAX:
        raise ValidationFailed(
            {"query": [f"The view is too long to save (at most {SEGMENT_QUERY_MAX:,} characters)."]}
        )
    filters = ContactFilterSet(QueryDict(text), agent=agent, definitions=definitions)
    problems = filters.all_errors
    if problems:
        raise ValidationFailed(
            {"query": [f"{name}: {m}" for name, messages in problems.items() for m in messages]}
        )
    return text


def _name_taken(
    *, agent: Agent, owner: Any, name: str, shared: bool, exclude: int | None, yours: bool = True
) -> str:
    """Why `name` cannot be used for a segment of `owner`, or "" when it can."""
    same = Segment.objects.alias(lname=Lower("name")).filter(agent=agent, lname=name.lower())
    if exclude is not None:
        same = same.exclude(pk=exclude)
    if same.filter(owner=owner).exists():
        who = "You already have" if yours else "Its creator already has"
        return f"{who} a segment named “{name}”."
    if shared and same.filter(shared=True).exists():
        return f"The team already shares a segment named “{name}”; choose another name."
    return ""


def _save(segment: Segment, *, yours: bool) -> Segment:
    """Write the segment; a name taken meanwhile (the constraints decide) is a field error."""
    try:
        with transaction.atomic():
            segment.save()
    except IntegrityError:
        reason = _name_taken(
            agent=segment.agent,
            owner=segment.owner,
            name=segment.name,
            shared=segment.shared,
            exclude=segment.pk,
            yours=yours,
        )
        raise ValidationFailed({"name": [reason or "That name is taken."]}) from None
    return segment


def segment_create(
    *,
    agent: Agent,
    user: Any,
    name: Any,
    shared: bool,
    query: str,
    definitions: Mapping[str, AttributeDefinition],
) -> Segment:
    """Save a table state under a name, private to `user` or shared with the team."""
    name = _clean_name(name)
    query = _clean_query(query, agent=agent, definitions=definitions)
    if Segment.objects.filter(agent=agent, owner=user).count() >= MAX_SEGMENTS_PER_PERSON:
        raise ValidationFailed(
            {"name": [f"You have {MAX_SEGMENTS_PER_PERSON} segments here; delete one first."]}
        )
    reason = _name_taken(agent=agent, owner=user, name=name, shared=shared, exclude=None)
    if reason:
        raise ValidationFailed({"name": [reason]})
    return _save(
        Segment(agent=agent, owner=user, name=name, shared=bool(shared), query=query), yours=True
    )


def segment_update(
    *,
    segment: Segment,
    user: Any,
    is_admin: bool,
    definitions: Mapping[str, AttributeDefinition],
    name: Any = None,
    shared: bool | None = None,
    query: str | None = None,
) -> Segment:
    """Rename, share or unshare, or replace the saved state (what is None stays)."""
    if not segment_can_change(segment=segment, user=user, is_admin=is_admin):
        raise ForbiddenError(
            "Only the segment's creator, or an admin for a shared segment, can change it."
        )
    if shared is not None and bool(shared) != segment.shared and segment.owner_id != user.pk:
        raise ForbiddenError("Only the segment's creator can share it or make it private.")
    if name is not None:
        segment.name = _clean_name(name)
    if shared is not None:
        segment.shared = bool(shared)
    if query is not None:
        segment.query = _clean_query(query, agent=segment.agent, definitions=definitions)
    yours = segment.owner_id == user.pk
    reason = _name_taken(
        agent=segment.agent,
        owner=segment.owner,
        name=segment.name,
        shared=segment.shared,
        exclude=segment.pk,
        yours=yours,
    )
    if reason:
        raise ValidationFailed({"name": [reason]})
    segment.updated_at = timezone.now()
    return _save(segment, yours=yours)


def segment_delete(*, segment: Segment, user: Any, is_admin: bool) -> None:
    """Delete a segment (its creator, or an admin for a shared one)."""
    if not segment_can_change(segment=segment, user=user, is_admin=is_admin):
        raise ForbiddenError(
            "Only the segment's creator, or an admin for a shared segment, can delete it."
        )
    segment.delete()


def segments_forget(sender: Any, *, contact: Contact, redactor: Redactor, **kwargs: Any):
    """Erasure: the person's keys (email, phone, ids, full name) written into the agent's
    saved segments, in a name or a condition ("email is ada@…"), are redacted. The
    condition stays, with the marker as its value: it then matches nobody instead of
    silently widening the segment to everyone."""
    if not redactor.has_keys:
        return None
    redacted = 0
    for segment in Segment.objects.filter(agent_id=contact.agent_id).only("pk", "name", "query"):
        pairs = QueryDict(segment.query).lists()
        scrubbed = [(k, [redactor.scrub(v, keys_only=True) for v in vs]) for k, vs in pairs]
        name = redactor.scrub(segment.name, keys_only=True)[:SEGMENT_NAME_MAX]
        if scrubbed == list(QueryDict(segment.query).lists()) and name == segment.name:
            continue
        query = QueryDict(mutable=True)
        for key, values in scrubbed:
            query.setlist(key, values)
        try:
            with transaction.atomic():
                Segment.objects.filter(pk=segment.pk).update(name=name, query=query.urlencode())
        except IntegrityError:  # another segment of its owner already has the scrubbed name
            unique = f"{name[: SEGMENT_NAME_MAX - 12]} ({segment.pk})"
            Segment.objects.filter(pk=segment.pk).update(name=unique, query=query.urlencode())
        redacted += 1
    return {"segments_redacted": redacted} if redacted else None


# Segments live in contacts, so they take their part in erasures here (as notes do): every
# erasure runs from a module of this package, whose __init__ imports this one.
contact_erasing.connect(segments_forget, sender=Contact, dispatch_uid="contacts.segments")
