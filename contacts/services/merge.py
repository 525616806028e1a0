"""Merging two contacts into one (SPEC 5)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from contacts.cleaning import (
    CORE_FIELDS,
)
from contacts.models import (
    IDENTITY_RANK,
    AuditEvent,
    Contact,
    ContactTag,
    Identity,
    MergedContact,
    StripeAccount,
)
from contacts.services.audit import ContactWrite, audit
from contacts.services.tags import contact_tag_names
from contacts.signals import collected, contact_merging
from core.actors import Actor
from core.errors import (
    ConflictError,
    ForbiddenError,
)


def contact_merge_preview(*, primary: Contact, secondary: Contact) -> dict[str, list[Any]]:
    """What merging would change on `primary`: {field: [before, after]}. Writes nothing."""
    _check_mergeable(primary, secondary)
    changes: dict[str, list[Any]] = {}
    if primary.external_id is None and secondary.external_id:
        changes["external_id"] = [None, secondary.external_id]
    for name in CORE_FIELDS:
        mine, theirs = getattr(primary, name), getattr(secondary, name)
        if not mine and theirs:
            changes[name] = [mine, theirs]
    for key, value in (secondary.attributes or {}).items():
        if (primary.attributes or {}).get(key) is None and value is not None:
            changes[f"attributes.{key}"] = [None, value]
    if IDENTITY_RANK[secondary.identity] > IDENTITY_RANK[primary.identity]:
        changes["identity"] = [primary.identity, secondary.identity]
    return changes


def contacts_mergeable(primary: Contact, secondary: Contact) -> bool:
    """Whether a merge of these two can happen (the dashboard only offers those)."""
    try:
        _check_mergeable(primary, secondary)
    except ConflictError:
        return False
    return True


def _check_mergeable(primary: Contact, secondary: Contact) -> None:
    if primary.pk == secondary.pk:
        raise ConflictError("A contact cannot be merged into itself.")
    if primary.agent_id != secondary.agent_id:
        raise ConflictError("Contacts of different agents cannot be merged.")
    if (
        primary.external_id
        and secondary.external_id
        and primary.external_id != secondary.external_id
    ):
        raise ConflictError(
            "Both contacts have an external id "
            f"({primary.external_id!r} and {secondary.external_id!r}); they are different "
            "people in your system and cannot be merged."
        )


def contact_merge(*, primary: Contact, secondary: Contact, actor: Actor) -> ContactWrite:
    """Fold `secondary` into `primary` (SPEC 5): primary's values win, secondary fills blanks;
    tags, Stripe accounts and history move here; conversations and visitor sessions move
    through the apps that own them (`contact_merging`); secondary goes."""
    with transaction.atomic():
        # Lock both rows in a fixed order so two crossed merges cannot deadlock.
        locked = {
            c.pk: c
            for c in Contact.objects.select_for_update()
            .select_related("agent")
            .filter(pk__in=[primary.pk, secondary.pk])
            .order_by("pk")
        }
        if len(locked) != 2:
            raise ConflictError("Both contacts must exist to be merged.")
        primary, secondary = locked[primary.pk], locked[secondary.pk]
        if not actor.trusted and Identity.VERIFIED in (primary.identity, secondary.identity):
            raise ForbiddenError("An unverified caller cannot merge a verified contact.")
        if primary.deleted_at is not None:
            raise ConflictError("The primary contact is deleted; restore it before merging.")
        changes = contact_merge_preview(primary=primary, secondary=secondary)
        now = timezone.now()
        secondary_id = secondary.pk

        # Free the unique keys the secondary holds before the primary takes them over.
        fingerprint = secondary.fingerprint
        if secondary.external_id or fingerprint:
            Contact.objects.filter(pk=secondary.pk).update(external_id=None, fingerprint=None)

        for name, (_before, after) in changes.items():
            if name.startswith("attributes."):
                primary.attributes = {**primary.attributes, name.split(".", 1)[1]: after}
            elif name == "identity":
                primary.identity = after
                primary.identity_source = secondary.identity_source
                primary.verified_at = secondary.verified_at
            else:
                setattr(primary, name, after)
        if primary.identity == Identity.VERIFIED:
            primary.fingerprint = None
        elif primary.fingerprint is None:
            primary.fingerprint = fingerprint
        primary.first_seen_at = min(
            (t for t in (primary.first_seen_at, secondary.first_seen_at) if t), default=None
        )
        primary.last_seen_at = max(
            (t for t in (primary.last_seen_at, secondary.last_seen_at) if t), default=None
        )
        primary.created_at = min(primary.created_at, secondary.created_at)

        tags_before = contact_tag_names(primary)
        primary_tag_ids = set(primary.contact_tags.values_list("tag_id", flat=True))
        ContactTag.objects.filter(contact=secondary).exclude(tag_id__in=primary_tag_ids).update(
            contact=primary
        )
        tags_after = contact_tag_names(primary)
        if tags_after != tags_before:
            changes["tags"] = [tags_before, tags_after]

        primary_stripe = set(primary.stripe_accounts.values_list("stripe_id", flat=True))
        moved_stripe = StripeAccount.objects.filter(contact=secondary).exclude(
            stripe_id__in=primary_stripe
        )
        moved_stripe_ids = list(moved_stripe.values_list("stripe_id", flat=True))
        moved_stripe.update(contact=primary)
        if moved_stripe_ids:
            changes["stripe_accounts_added"] = [None, moved_stripe_ids]

        changes.update(
            collected(
                contact_merging.send(
                    sender=Contact, primary=primary, secondary=secondary, actor=actor
                )
            )
        )
        AuditEvent.objects.filter(contact_id=secondary.pk).update(contact_id=primary.pk)

        # Who was merged in stays readable in the history, and the old page leads here.
        changes["merged_contact"] = [
            {"id": str(secondary.pk), "name": secondary.name, "email": secondary.email},
            None,
        ]
        MergedContact.objects.filter(into=secondary).update(into=primary)
        secondary.delete()
        MergedContact.objects.create(id=secondary_id, into=primary, merged_at=now)
        primary.updated_at = now
        primary.save()
        audit(contact=primary, actor=actor, action=AuditEvent.Action.MERGED, changes=changes)
        return ContactWrite(contact=primary, changes=changes)
