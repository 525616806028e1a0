"""Tags: case-insensitive per agent, added, removed or replaced on one contact or many."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Q, Value
from django.db.models.functions import Lower
from django.utils import timezone

from contacts import normalize
from contacts.models import (
    AuditEvent,
    Contact,
    ContactTag,
    Tag,
)
from contacts.services.audit import ContactWrite, audit_many, related_write
from core.actors import Actor
from core.errors import (
    DomainError,
    ValidationFailed,
)
from workspaces.models import Agent


def tags_get_or_create(*, agent: Agent, names: Iterable[str]) -> list[Tag]:
    """The agent's tags with these names (case-insensitive), creating missing ones race-free."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []

    def fetch() -> dict[str, Tag]:
        match = Q()
        for name in wanted:
            match |= Q(lname=Lower(Value(name)))
        found = Tag.objects.alias(lname=Lower("name")).filter(match, agent=agent)
        return {tag.name.casefold(): tag for tag in found}

    existing = fetch()
    missing = [n for n in wanted if n.casefold() not in existing]
    if missing:
        # ON CONFLICT DO NOTHING: a tag another request just created is simply reused.
        Tag.objects.bulk_create([Tag(agent=agent, name=n) for n in missing], ignore_conflicts=True)
        existing = fetch()
    result = []
    for name in wanted:
        tag = existing.get(name.casefold())
        if tag is None:
            raise DomainError(f"Tag {name!r} could not be created.")
        result.append(tag)
    return result


def contact_tag_names(contact: Contact) -> list[str]:
    return sorted(
        Tag.objects.filter(contact_tags__contact=contact).values_list("name", flat=True),
        key=str.casefold,
    )


def apply_tags(contact: Contact, names: list[str], *, mode: str) -> list[list[str]] | None:
    """Add, remove or replace tags; returns [before, after] names when something changed."""
    before = contact_tag_names(contact)
    folded_before = {n.casefold() for n in before}
    if mode == "remove":
        folded = {n.casefold() for n in names}
        targets = [n for n in before if n.casefold() in folded]
        if not targets:
            return None
        ContactTag.objects.filter(
            contact=contact, tag__in=tags_get_or_create(agent=contact.agent, names=targets)
        ).delete()
    else:
        tags = tags_get_or_create(agent=contact.agent, names=names)
        if mode == "set":
            ContactTag.objects.filter(contact=contact).exclude(tag__in=tags).delete()
        new = [t for t in tags if t.name.casefold() not in folded_before]
        ContactTag.objects.bulk_create(
            [ContactTag(contact=contact, tag=t) for t in new], ignore_conflicts=True
        )
    after = contact_tag_names(contact)
    return None if after == before else [before, after]


def clean_tag_names(names: Iterable[Any]) -> list[str]:
    if isinstance(names, str):
        names = [names]
    cleaned = []
    for name in names:
        try:
            cleaned.append(normalize.normalize_tag(name))
        except normalize.FieldError as exc:
            raise ValidationFailed({"tags": [str(exc)]}) from None
    return cleaned


def contact_tags_add(*, contact: Contact, actor: Actor, names: Iterable[Any]) -> ContactWrite:
    """Add tags (created for the agent when new)."""
    cleaned = clean_tag_names(names)
    return related_write(contact, actor, "tags", lambda c: apply_tags(c, cleaned, mode="add"))


def contact_tags_remove(*, contact: Contact, actor: Actor, names: Iterable[Any]) -> ContactWrite:
    """Remove tags by name (case-insensitive); unknown names are ignored."""
    cleaned = clean_tag_names(names)
    return related_write(contact, actor, "tags", lambda c: apply_tags(c, cleaned, mode="remove"))


def contact_tags_set(*, contact: Contact, actor: Actor, names: Iterable[Any]) -> ContactWrite:
    """Replace the contact's tags with exactly these."""
    cleaned = list({n.casefold(): n for n in clean_tag_names(names)}.values())
    return related_write(contact, actor, "tags", lambda c: apply_tags(c, cleaned, mode="set"))


def contacts_tags_add_bulk(
    *, agent: Agent, actor: Actor, contact_ids: Iterable[Any], names: Iterable[Any]
) -> int:
    """Add tags to many contacts at once (bulk action); returns how many contacts gained one."""
    cleaned = clean_tag_names(names)
    with transaction.atomic():
        tags = tags_get_or_create(agent=agent, names=cleaned)
        contacts = list(
            Contact.objects.filter(agent=agent, pk__in=list(contact_ids)).only("id", "agent_id")
        )
        have = set(
            ContactTag.objects.filter(contact__in=contacts, tag__in=tags).values_list(
                "contact_id", "tag_id"
            )
        )
        rows, gained = [], {}
        for contact in contacts:
            for tag in tags:
                if (contact.pk, tag.pk) not in have:
                    rows.append(ContactTag(contact=contact, tag=tag))
                    gained.setdefault(contact.pk, []).append(tag.name)
        ContactTag.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
        now = timezone.now()
        Contact.objects.filter(pk__in=list(gained)).update(updated_at=now)
        audit_many(
            agent_id=agent.pk,
            actor=actor,
            action=AuditEvent.Action.UPDATED,
            changes_by_contact={pk: {"tags_added": added} for pk, added in gained.items()},
            at=now,
        )
        return len(gained)
