"""Every write to a contact: atomic, audited, and the same for dashboard, API, import and identify.

Rules that matter for safety live here, not in the callers:
- upserts by external_id are race-free (a unique constraint plus a retry on conflict);
- identity only moves up (anonymous -> self-reported -> verified);
- an untrusted channel (the widget) can never change a verified contact;
- secure attributes are written only by channels allowed to (see `core.actors`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Value
from django.db.models.functions import Lower
from django.utils import timezone

from attributes.models import AttributeDefinition
from attributes.selectors import attribute_definition_map
from attributes.services import attribute_room, attributes_create_inferred
from contacts import erasure, normalize
from contacts.cleaning import (
    CORE_FIELDS,
    CleanInput,
    ForbiddenPolicy,
    UnknownPolicy,
    clean_contact_input,
    clean_stripe_account,
)
from contacts.models import (
    IDENTITY_RANK,
    AuditEvent,
    Contact,
    ContactTag,
    Identity,
    StripeAccount,
    TablePreference,
    Tag,
)
from core.actors import Actor
from core.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    ValidationFailed,
)
from workspaces.models import Agent


@dataclass
class ContactWrite:
    """What a write did: the contact as saved, whether it was new, and each field's change."""

    contact: Contact
    created: bool = False
    changes: dict[str, list[Any]] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.created or bool(self.changes)

    @property
    def outcome(self) -> str:
        if self.created:
            return "created"
        return "updated" if self.changes else "unchanged"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _audit(
    *, contact: Contact, actor: Actor, action: str, changes: dict[str, Any] | None = None
) -> AuditEvent:
    return AuditEvent.objects.create(
        agent_id=contact.agent_id,
        contact_id=contact.pk,
        action=action,
        channel=actor.channel,
        actor_label=actor.label[:255],
        actor_user_id=actor.user_id,
        changes=changes or {},
    )


def _clean(
    *,
    agent: Agent,
    actor: Actor,
    data: Mapping[str, Any],
    definitions: Mapping[str, AttributeDefinition] | None,
    unknown_attributes: UnknownPolicy,
    on_forbidden: ForbiddenPolicy,
) -> CleanInput:
    attributes = data.get("attributes") if isinstance(data, Mapping) else None
    if definitions is None:
        # The schema is only read when there are attribute values to check against it.
        definitions = attribute_definition_map(agent=agent) if attributes else {}
    room = attribute_room(agent=agent) if attributes and unknown_attributes == "create" else 0
    return clean_contact_input(
        data,
        actor=actor,
        definitions=definitions,
        phone_region=agent.default_phone_region,
        unknown_attributes=unknown_attributes,
        on_forbidden=on_forbidden,
        attribute_room=room,
    )


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python; a boolean attribute turning into a number is still a change.
    return a == b and type(a) is type(b)


def _apply_fields(contact: Contact, clean: CleanInput, *, fill_blanks_only: bool) -> dict:
    changes: dict[str, list[Any]] = {}
    for name, value in clean.core.items():
        before = getattr(contact, name)
        if fill_blanks_only and before:
            continue
        if before != value:
            setattr(contact, name, value)
            changes[name] = [before, value]
    attributes = dict(contact.attributes or {})
    for key, value in clean.attributes.items():
        before = attributes.get(key)
        if fill_blanks_only and before is not None:
            continue
        if value is None:
            if key in attributes:
                del attributes[key]
                changes[f"attributes.{key}"] = [before, None]
        elif not _same(before, value):
            attributes[key] = value
            changes[f"attributes.{key}"] = [before, value]
    contact.attributes = attributes
    return changes


def _raise_identity(
    contact: Contact, identity: str | None, actor: Actor, now: datetime
) -> dict[str, list[Any]]:
    if identity is None or IDENTITY_RANK[identity] <= IDENTITY_RANK[contact.identity]:
        return {}
    if identity == Identity.VERIFIED and not actor.verifies:
        raise ForbiddenError("Only a trusted channel can verify a contact.")
    before = contact.identity
    contact.identity = identity
    contact.identity_source = actor.channel
    if identity == Identity.VERIFIED:
        contact.verified_at = now
        # A verified contact is no longer what an unverified "ensure" may return.
        contact.fingerprint = None
    return {"identity": [before, identity]}


def _default_identity(actor: Actor) -> str:
    return Identity.VERIFIED if actor.verifies else Identity.SELF_REPORTED


def _check_may_change(contact: Contact, actor: Actor) -> None:
    if contact.identity == Identity.VERIFIED and not actor.trusted:
        raise ForbiddenError("This contact is verified; an unverified caller cannot change it.")


# --- Tags ---------------------------------------------------------------------------------


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


def _tag_names(contact: Contact) -> list[str]:
    return sorted(
        Tag.objects.filter(contact_tags__contact=contact).values_list("name", flat=True),
        key=str.casefold,
    )


def _apply_tags(contact: Contact, names: list[str], *, mode: str) -> list[list[str]] | None:
    """Add, remove or replace tags; returns [before, after] names when something changed."""
    before = _tag_names(contact)
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
    after = _tag_names(contact)
    return None if after == before else [before, after]


def _apply_stripe_accounts(
    contact: Contact, accounts: list[dict[str, str]], *, keep_others: bool = False
) -> list | None:
    """Replace the contact's Stripe links with `accounts` (matched by stripe_id); with
    keep_others, add and update only."""
    current = {a.stripe_id: a for a in contact.stripe_accounts.all()}
    before = [_stripe_dict(a) for a in current.values()]
    wanted = {a["stripe_id"]: a for a in accounts}
    if not keep_others:
        StripeAccount.objects.filter(contact=contact).exclude(stripe_id__in=list(wanted)).delete()
    for stripe_id, data in wanted.items():
        account = current.get(stripe_id)
        if account is None:
            StripeAccount.objects.create(contact=contact, **data)
        elif keep_others:
            # Merging (imports): a blank label or email keeps the saved one.
            label = data["label"] or account.label
            email = data["stripe_email"] or account.stripe_email
            if (account.label, account.stripe_email) != (label, email):
                account.label, account.stripe_email = label, email
                account.save(update_fields=["label", "stripe_email"])
        elif (account.label, account.stripe_email) != (data["label"], data["stripe_email"]):
            account.label, account.stripe_email = data["label"], data["stripe_email"]
            account.save(update_fields=["label", "stripe_email"])
    after = [_stripe_dict(a) for a in StripeAccount.objects.filter(contact=contact)]
    return None if before == after else [before, after]


def _stripe_dict(account: StripeAccount) -> dict[str, str]:
    return {
        "label": account.label,
        "stripe_id": account.stripe_id,
        "stripe_email": account.stripe_email,
    }


def _apply_related(
    contact: Contact, clean: CleanInput, changes: dict, *, merge_related: bool = False
) -> None:
    """Tags and Stripe accounts of the input: replace the sets, or (merge_related) add to them."""
    if clean.tags is not None:
        tag_change = _apply_tags(contact, clean.tags, mode="add" if merge_related else "set")
        if tag_change:
            changes["tags"] = tag_change
    if clean.stripe_accounts is not None:
        stripe_change = _apply_stripe_accounts(
            contact, clean.stripe_accounts, keep_others=merge_related
        )
        if stripe_change:
            changes["stripe_accounts"] = stripe_change


# --- Create, upsert, update -----------------------------------------------------------------


def creation_changes(
    *,
    core: Mapping[str, str],
    external_id: str | None,
    attributes: Mapping[str, Any],
    identity: str,
) -> dict[str, list[Any]]:
    """The audit changes of a new contact's own fields, as [None, value]; tags and Stripe
    accounts are added by what links them."""
    changes: dict[str, list[Any]] = {name: [None, value] for name, value in core.items() if value}
    if external_id:
        changes["external_id"] = [None, external_id]
    for key, value in attributes.items():
        changes[f"attributes.{key}"] = [None, value]
    changes["identity"] = [None, identity]
    return changes


def _insert(
    *,
    agent: Agent,
    actor: Actor,
    clean: CleanInput,
    identity: str | None,
    now: datetime,
    external_id: str | None = None,
    fingerprint: str | None = None,
) -> ContactWrite:
    identity = identity or _default_identity(actor)
    if identity == Identity.VERIFIED and not actor.verifies:
        raise ForbiddenError("Only a trusted channel can create a verified contact.")
    verified = identity == Identity.VERIFIED
    contact = Contact(
        agent=agent,
        external_id=external_id,
        fingerprint=None if verified else fingerprint,
        attributes={k: v for k, v in clean.attributes.items() if v is not None},
        identity=identity,
        identity_source="" if identity == Identity.ANONYMOUS else actor.channel,
        verified_at=now if verified else None,
        created_at=now,
        updated_at=now,
        **clean.core,
    )
    contact.save(force_insert=True)
    changes = creation_changes(
        core=clean.core,
        external_id=external_id,
        attributes=contact.attributes,
        identity=identity,
    )
    _apply_related(contact, clean, changes)
    _audit(contact=contact, actor=actor, action=AuditEvent.Action.CREATED, changes=changes)
    return ContactWrite(contact=contact, created=True, changes=changes, ignored=clean.ignored)


def _update_locked(
    contact: Contact,
    *,
    actor: Actor,
    clean: CleanInput,
    identity: str | None,
    fill_blanks_only: bool,
    now: datetime,
    restore: bool = True,
    merge_related: bool = False,
) -> ContactWrite:
    _check_may_change(contact, actor)
    changes: dict[str, list[Any]] = {}
    if clean.has_external_id and clean.external_id != contact.external_id:
        if contact.external_id is None:
            contact.external_id = clean.external_id
            changes["external_id"] = [None, clean.external_id]
        else:
            raise ValidationFailed(
                {
                    "external_id": [
                        "The external id of a contact cannot change; merge contacts instead."
                    ]
                }
            )
    changes.update(_apply_fields(contact, clean, fill_blanks_only=fill_blanks_only))
    changes.update(_raise_identity(contact, identity, actor, now))
    if restore and contact.deleted_at is not None:
        changes["deleted_at"] = [_iso(contact.deleted_at), None]
        contact.deleted_at = None
    _apply_related(contact, clean, changes, merge_related=merge_related)
    if changes:
        contact.updated_at = now
        try:
            with transaction.atomic():
                contact.save()
        except IntegrityError:
            raise ConflictError(
                "Another contact of this agent already has this external id.",
                fields={"external_id": ["Already used by another contact."]},
            ) from None
        action = AuditEvent.Action.RESTORED if set(changes) == {"deleted_at"} else "updated"
        _audit(contact=contact, actor=actor, action=action, changes=changes)
    return ContactWrite(contact=contact, changes=changes, ignored=clean.ignored)


def _prepare(
    *,
    agent: Agent,
    actor: Actor,
    data: Mapping[str, Any],
    definitions: Mapping[str, AttributeDefinition] | None,
    unknown_attributes: UnknownPolicy,
    on_forbidden: ForbiddenPolicy,
) -> CleanInput:
    clean = _clean(
        agent=agent,
        actor=actor,
        data=data,
        definitions=definitions,
        unknown_attributes=unknown_attributes,
        on_forbidden=on_forbidden,
    )
    if clean.new_attributes:
        attributes_create_inferred(agent=agent, types=clean.new_attributes)
    return clean


def contact_create(
    *,
    agent: Agent,
    actor: Actor,
    data: Mapping[str, Any],
    identity: str | None = None,
    definitions: Mapping[str, AttributeDefinition] | None = None,
    unknown_attributes: UnknownPolicy = "error",
    on_forbidden: ForbiddenPolicy = "error",
) -> ContactWrite:
    """Create a contact; an `external_id` in `data` must not exist yet (409 otherwise)."""
    now = timezone.now()
    with transaction.atomic():
        clean = _prepare(
            agent=agent,
            actor=actor,
            data=data,
            definitions=definitions,
            unknown_attributes=unknown_attributes,
            on_forbidden=on_forbidden,
        )
        try:
            with transaction.atomic():
                return _insert(
                    agent=agent,
                    actor=actor,
                    clean=clean,
                    identity=identity,
                    now=now,
                    external_id=clean.external_id,
                )
        except IntegrityError:
            raise ConflictError(
                f"A contact with external id {clean.external_id!r} already exists.",
                fields={"external_id": ["Already used by another contact."]},
            ) from None


_LOCKED_BY_SQL = {
    column: f"SELECT * FROM contacts_contact WHERE agent_id = %s AND {column} = %s LIMIT 1"  # noqa: S608 - constants
    for column in ("external_id", "fingerprint")
}


def _locked_by(agent: Agent, **lookup: Any) -> Contact | None:
    """The agent's contact with this external id or fingerprint, locked until the end of the
    transaction (SELECT … FOR UPDATE; SQLite locks the whole database on write instead).

    Written as SQL: every identify and every upsert comes through here, and building this
    query with the ORM costs several times what running it does."""
    ((name, value),) = lookup.items()
    sql = _LOCKED_BY_SQL[name]
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    found = list(Contact.objects.raw(sql, [agent.pk, value]))
    if not found:
        return None
    found[0].agent = agent
    return found[0]


def contact_upsert(
    *,
    agent: Agent,
    actor: Actor,
    external_id: Any,
    data: Mapping[str, Any],
    identity: str | None = None,
    fill_blanks_only: bool = False,
    definitions: Mapping[str, AttributeDefinition] | None = None,
    unknown_attributes: UnknownPolicy = "error",
    on_forbidden: ForbiddenPolicy = "error",
    merge_related: bool = False,
) -> ContactWrite:
    """Create or update the contact with this external_id; a soft-deleted one is restored.

    Race-free on both databases: two callers that both find nothing both try to INSERT;
    the unique (agent, external_id) constraint lets one win, and the loser's savepoint
    rolls back and it updates the winner's row instead.
    """
    try:
        ext = normalize.normalize_external_id(external_id)
    except normalize.FieldError as exc:
        raise ValidationFailed({"external_id": [str(exc)]}) from None
    if ext is None:
        raise ValidationFailed({"external_id": ["An external id is required to upsert."]})
    if not actor.verifies:
        raise ForbiddenError("Only a trusted channel can write a contact by external id.")
    data = {k: v for k, v in data.items() if k != "external_id"}
    now = timezone.now()
    with transaction.atomic():
        clean = _prepare(
            agent=agent,
            actor=actor,
            data=data,
            definitions=definitions,
            unknown_attributes=unknown_attributes,
            on_forbidden=on_forbidden,
        )
        contact = _locked_by(agent, external_id=ext)
        if contact is None:
            try:
                with transaction.atomic():
                    return _insert(
                        agent=agent,
                        actor=actor,
                        clean=clean,
                        identity=identity or Identity.VERIFIED,
                        now=now,
                        external_id=ext,
                    )
            except IntegrityError:
                contact = _locked_by(agent, external_id=ext)
                if contact is None:
                    raise
        return _update_locked(
            contact,
            actor=actor,
            clean=clean,
            identity=identity or Identity.VERIFIED,
            fill_blanks_only=fill_blanks_only,
            now=now,
            merge_related=merge_related,
        )


def contact_update(
    *,
    contact: Contact,
    actor: Actor,
    data: Mapping[str, Any],
    identity: str | None = None,
    fill_blanks_only: bool = False,
    definitions: Mapping[str, AttributeDefinition] | None = None,
    unknown_attributes: UnknownPolicy = "error",
    on_forbidden: ForbiddenPolicy = "error",
    restore: bool = False,
    merge_related: bool = False,
) -> ContactWrite:
    """Partial update: fields present in `data` change; attributes merge key by key, None clears.

    `restore` also undoes a soft delete; `merge_related` adds tags and Stripe accounts
    instead of replacing them (imports)."""
    now = timezone.now()
    agent = contact.agent
    with transaction.atomic():
        clean = _prepare(
            agent=agent,
            actor=actor,
            data=data,
            definitions=definitions,
            unknown_attributes=unknown_attributes,
            on_forbidden=on_forbidden,
        )
        locked = Contact.objects.select_for_update().select_related("agent").get(pk=contact.pk)
        return _update_locked(
            locked,
            actor=actor,
            clean=clean,
            identity=identity,
            fill_blanks_only=fill_blanks_only,
            now=now,
            restore=restore,
            merge_related=merge_related,
        )


def fingerprint_for(*, email: str = "", phone: str = "", name: str = "") -> str | None:
    """The key of an unverified contact: its normalized email, else phone, else name."""
    if email:
        basis = "email:" + email.casefold()
    elif phone:
        basis = "phone:" + phone
    elif name:
        basis = "name:" + " ".join(name.casefold().split())
    else:
        return None
    return hashlib.sha256(basis.encode()).hexdigest()


def contact_ensure(
    *,
    agent: Agent,
    actor: Actor,
    data: Mapping[str, Any],
    fingerprint: Any = None,
) -> ContactWrite:
    """Idempotent create-or-get (SPEC 5); never hands a verified contact to an unverified call.

    With `fingerprint` (a trusted id) the contact is the verified one whose external_id it
    is. Without, the contact is unverified and keyed by a hash of its email/phone/name.
    Existing contacts only have their blanks filled.
    """
    if fingerprint is not None and fingerprint != "":
        return contact_upsert(
            agent=agent,
            actor=actor,
            external_id=fingerprint,
            data=data,
            identity=Identity.VERIFIED,
            fill_blanks_only=True,
        )
    now = timezone.now()
    with transaction.atomic():
        clean = _prepare(
            agent=agent,
            actor=actor,
            data={k: v for k, v in data.items() if k != "external_id"},
            definitions=None,
            unknown_attributes="error",
            on_forbidden="error",
        )
        key = fingerprint_for(
            email=clean.core.get("email", ""),
            phone=clean.core.get("phone", ""),
            name=clean.core.get("name", ""),
        )
        if key is None:
            raise ValidationFailed(
                {"fingerprint": ["Give a fingerprint, or an email, phone or name to key on."]}
            )
        contact = _locked_by(agent, fingerprint=key)
        if contact is None:
            try:
                with transaction.atomic():
                    return _insert(
                        agent=agent,
                        actor=actor,
                        clean=clean,
                        identity=Identity.SELF_REPORTED,
                        now=now,
                        fingerprint=key,
                    )
            except IntegrityError:
                contact = _locked_by(agent, fingerprint=key)
                if contact is None:
                    raise
        return _update_locked(
            contact, actor=actor, clean=clean, identity=None, fill_blanks_only=True, now=now
        )


def contact_mark_seen(*, contact: Contact, at: datetime | None = None) -> None:
    """Record activity: last_seen_at moves forward, first_seen_at is set once."""
    at = at or timezone.now()
    # SQL by hand for the same reason as `_locked_by`: every identify and message runs it.
    stamp = connection.ops.adapt_datetimefield_value(at)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE contacts_contact SET last_seen_at = CASE WHEN last_seen_at IS NULL"
            " OR last_seen_at < %s THEN %s ELSE last_seen_at END,"
            " first_seen_at = COALESCE(first_seen_at, %s) WHERE id = %s",
            [stamp, stamp, stamp, Contact._meta.pk.get_db_prep_value(contact.pk, connection)],
        )
    contact.last_seen_at = max(contact.last_seen_at or at, at)
    contact.first_seen_at = contact.first_seen_at or at


# --- Tags and Stripe accounts ---------------------------------------------------------------


def _related_write(contact: Contact, actor: Actor, change_key: str, apply) -> ContactWrite:
    with transaction.atomic():
        locked = Contact.objects.select_for_update().select_related("agent").get(pk=contact.pk)
        _check_may_change(locked, actor)
        change = apply(locked)
        changes = {change_key: change} if change else {}
        if changes:
            locked.updated_at = timezone.now()
            locked.save(update_fields=["updated_at"])
            _audit(contact=locked, actor=actor, action=AuditEvent.Action.UPDATED, changes=changes)
        return ContactWrite(contact=locked, changes=changes)


def _clean_tag_names(names: Iterable[Any]) -> list[str]:
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
    cleaned = _clean_tag_names(names)
    return _related_write(contact, actor, "tags", lambda c: _apply_tags(c, cleaned, mode="add"))


def contact_tags_remove(*, contact: Contact, actor: Actor, names: Iterable[Any]) -> ContactWrite:
    """Remove tags by name (case-insensitive); unknown names are ignored."""
    cleaned = _clean_tag_names(names)
    return _related_write(contact, actor, "tags", lambda c: _apply_tags(c, cleaned, mode="remove"))


def contact_tags_set(*, contact: Contact, actor: Actor, names: Iterable[Any]) -> ContactWrite:
    """Replace the contact's tags with exactly these."""
    cleaned = list({n.casefold(): n for n in _clean_tag_names(names)}.values())
    return _related_write(contact, actor, "tags", lambda c: _apply_tags(c, cleaned, mode="set"))


def contacts_tags_add_bulk(
    *, agent: Agent, actor: Actor, contact_ids: Iterable[Any], names: Iterable[Any]
) -> int:
    """Add tags to many contacts at once (bulk action); returns how many contacts gained one."""
    cleaned = _clean_tag_names(names)
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
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(
                    agent=agent,
                    contact_id=contact_id,
                    action=AuditEvent.Action.UPDATED,
                    channel=actor.channel,
                    actor_label=actor.label[:255],
                    actor_user_id=actor.user_id,
                    changes={"tags_added": names_added},
                    created_at=now,
                )
                for contact_id, names_added in gained.items()
            ],
            batch_size=1000,
        )
        return len(gained)


def stripe_account_add(*, contact: Contact, actor: Actor, data: Mapping[str, Any]) -> StripeAccount:
    """Link a Stripe customer (cus_…) to the contact."""
    account_data = clean_stripe_account(data)
    created: list[StripeAccount] = []

    def apply(locked: Contact):
        if StripeAccount.objects.filter(
            contact=locked, stripe_id=account_data["stripe_id"]
        ).exists():
            raise ConflictError(
                f"{account_data['stripe_id']} is already linked to this contact.",
                fields={"stripe_id": ["Already linked to this contact."]},
            )
        created.append(StripeAccount.objects.create(contact=locked, **account_data))
        return [None, account_data]

    _related_write(contact, actor, "stripe_accounts", apply)
    return created[0]


def stripe_account_update(
    *, account: StripeAccount, actor: Actor, data: Mapping[str, Any]
) -> StripeAccount:
    """Change a Stripe link's label, id or email."""
    merged = {**_stripe_dict(account), **dict(data)}
    account_data = clean_stripe_account(merged)

    def apply(locked: Contact):
        before = _stripe_dict(account)
        if before == account_data:
            return None
        clash = (
            StripeAccount.objects.filter(contact=locked, stripe_id=account_data["stripe_id"])
            .exclude(pk=account.pk)
            .exists()
        )
        if clash:
            raise ConflictError(
                f"{account_data['stripe_id']} is already linked to this contact.",
                fields={"stripe_id": ["Already linked to this contact."]},
            )
        for name, value in account_data.items():
            setattr(account, name, value)
        account.save()
        return [before, account_data]

    _related_write(account.contact, actor, "stripe_accounts", apply)
    return account


def stripe_account_remove(*, account: StripeAccount, actor: Actor) -> None:
    """Unlink a Stripe customer from the contact."""

    def apply(locked: Contact):
        before = _stripe_dict(account)
        account.delete()
        return [before, None]

    _related_write(account.contact, actor, "stripe_accounts", apply)


# --- Delete, restore --------------------------------------------------------------------------


def contact_soft_delete(*, contact: Contact, actor: Actor) -> Contact:
    """Hide the contact from default views; conversations are kept; undo with restore."""
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        _check_may_change(locked, actor)
        if locked.deleted_at is None:
            now = timezone.now()
            locked.deleted_at = now
            locked.updated_at = now
            locked.save(update_fields=["deleted_at", "updated_at"])
            _audit(contact=locked, actor=actor, action=AuditEvent.Action.DELETED)
        return locked


def contacts_soft_delete_bulk(*, agent: Agent, actor: Actor, contact_ids: Iterable[Any]) -> int:
    """Soft-delete many contacts (bulk action); returns how many were live."""
    with transaction.atomic():
        ids = list(
            Contact.objects.select_for_update()
            .filter(agent=agent, pk__in=list(contact_ids), deleted_at__isnull=True)
            .values_list("pk", flat=True)
        )
        now = timezone.now()
        Contact.objects.filter(pk__in=ids).update(deleted_at=now, updated_at=now)
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(
                    agent=agent,
                    contact_id=pk,
                    action=AuditEvent.Action.DELETED,
                    channel=actor.channel,
                    actor_label=actor.label[:255],
                    actor_user_id=actor.user_id,
                    created_at=now,
                )
                for pk in ids
            ],
            batch_size=1000,
        )
        return len(ids)


def contact_restore(*, contact: Contact, actor: Actor) -> Contact:
    """Undo a soft delete."""
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        if locked.deleted_at is not None:
            locked.deleted_at = None
            locked.updated_at = timezone.now()
            locked.save(update_fields=["deleted_at", "updated_at"])
            _audit(contact=locked, actor=actor, action=AuditEvent.Action.RESTORED)
        return locked


# --- Merge ----------------------------------------------------------------------------------


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
    conversations, tags, Stripe accounts, visitor sessions and history move; secondary goes."""
    from helpdesk.models import Conversation
    from identity.models import VisitorSession

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

        tags_before = _tag_names(primary)
        primary_tag_ids = set(primary.contact_tags.values_list("tag_id", flat=True))
        ContactTag.objects.filter(contact=secondary).exclude(tag_id__in=primary_tag_ids).update(
            contact=primary
        )
        tags_after = _tag_names(primary)
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

        moved = Conversation.objects.filter(contact=secondary).update(contact=primary)
        primary.conversation_count = Conversation.objects.filter(contact=primary).count()
        if moved:
            changes["conversations_moved"] = [None, moved]
        if primary.identity == Identity.VERIFIED:
            # The trust rule (SPEC 6): a merge may bring data and conversations into a
            # verified contact, never a visitor session that did not sign in itself. Such
            # sessions (the merged-away contact's, or the primary's own if the merge is what
            # makes it verified) go back to anonymous.
            VisitorSession.objects.filter(
                contact_id__in=[primary.pk, secondary.pk], signed=False
            ).update(contact=None, created_contact=False)
        VisitorSession.objects.filter(contact=secondary).update(
            contact=primary, created_contact=False
        )
        AuditEvent.objects.filter(contact_id=secondary.pk).update(contact_id=primary.pk)

        changes["merged_contact"] = [str(secondary.pk), None]
        secondary.delete()
        primary.updated_at = now
        primary.save()
        _audit(contact=primary, actor=actor, action=AuditEvent.Action.MERGED, changes=changes)
        return ContactWrite(contact=primary, changes=changes)


# --- Erasure and access requests -----------------------------------------------------------------


def contact_erase(*, contact: Contact, actor: Actor) -> None:
    """GDPR erasure: delete the contact and everything linked to it, remove or redact every
    stored copy of its identifiers (transcripts, import rows and files, sessions; see
    contacts.erasure), and keep only a PII-free record that an erasure happened."""
    erasure.erase(contact=contact, actor=actor)


def contact_export_data(*, contact: Contact) -> dict[str, Any]:
    """Everything held about one contact, for an access request (GDPR art. 15)."""
    from contacts.serialization import contact_to_dict
    from helpdesk.models import Conversation
    from identity.models import VisitorSession

    definitions = {d.key: d for d in AttributeDefinition.objects.filter(agent_id=contact.agent_id)}
    contact = (
        Contact.objects.prefetch_related("tags", "stripe_accounts")
        .select_related("agent")
        .get(pk=contact.pk)
    )
    conversations = Conversation.objects.filter(contact=contact).prefetch_related("messages")
    return {
        "exported_at": timezone.now().isoformat(),
        "agent": contact.agent.name,
        "contact": contact_to_dict(contact),
        "attribute_labels": {
            key: definitions[key].label for key in contact.attributes if key in definitions
        },
        "identity_source": contact.identity_source,
        "conversations": [
            {
                "id": str(c.id),
                "status": c.status,
                "subject": c.subject,
                "created_at": _iso(c.created_at),
                "messages": [
                    {"role": m.role, "body": m.body, "created_at": _iso(m.created_at)}
                    for m in c.messages.all()
                ],
            }
            for c in conversations
        ],
        "visitor_sessions": [
            {"visitor_id": s.visitor_id, "created_at": _iso(s.created_at)}
            for s in VisitorSession.objects.filter(contact=contact)
        ],
        "history": [
            {
                "action": e.action,
                "channel": e.channel,
                "actor": e.actor_label,
                "changes": e.changes,
                "at": _iso(e.created_at),
            }
            for e in AuditEvent.objects.filter(contact_id=contact.pk)
        ],
    }


# --- Dashboard: bulk restore and the remembered table layout ----------------------------------


def contacts_restore_bulk(*, agent: Agent, actor: Actor, contact_ids: Iterable[Any]) -> int:
    """Undo a (bulk) soft delete; returns how many contacts came back."""
    with transaction.atomic():
        ids = list(
            Contact.objects.select_for_update()
            .filter(agent=agent, pk__in=list(contact_ids), deleted_at__isnull=False)
            .values_list("pk", flat=True)
        )
        now = timezone.now()
        Contact.objects.filter(pk__in=ids).update(deleted_at=None, updated_at=now)
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(
                    agent=agent,
                    contact_id=pk,
                    action=AuditEvent.Action.RESTORED,
                    channel=actor.channel,
                    actor_label=actor.label[:255],
                    actor_user_id=actor.user_id,
                    created_at=now,
                )
                for pk in ids
            ],
            batch_size=1000,
        )
        return len(ids)


def table_preference_save(
    *, user: Any, agent: Agent, columns: list[str] | None = None, page_size: int | None = None
) -> TablePreference:
    """Remember a person's contacts-table columns and/or rows per page for this agent."""
    from contacts.table import MAX_COLUMNS, PAGE_SIZES

    if page_size is not None and page_size not in PAGE_SIZES:
        raise ValidationFailed(
            {"per_page": [f"Choose {', '.join(str(s) for s in PAGE_SIZES)} rows per page."]}
        )
    if columns is not None and (
        len(columns) > MAX_COLUMNS or any(not isinstance(c, str) or len(c) > 80 for c in columns)
    ):
        raise ValidationFailed({"cols": ["Too many or malformed columns."]})
    with transaction.atomic():
        preference, _ = TablePreference.objects.select_for_update().get_or_create(
            user=user, agent=agent
        )
        if columns is not None:
            preference.columns = list(columns)
        if page_size is not None:
            preference.page_size = page_size
        preference.updated_at = timezone.now()
        preference.save()
        return preference
