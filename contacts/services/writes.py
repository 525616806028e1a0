"""Creating and changing contacts: create, upsert by external id, update, ensure, seen.

Rules that matter for safety live here, not in the callers:
- upserts by external_id are race-free (a unique constraint plus a retry on conflict);
- identity only moves up (anonymous -> self-reported -> verified);
- an untrusted channel (the widget) can never change a verified contact;
- secure attributes are written only by channels allowed to (see `core.actors`).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from attributes.models import AttributeDefinition
from attributes.selectors import attribute_definition_map
from attributes.services import attribute_room, attributes_create_inferred
from contacts import normalize
from contacts import sql as sql_text
from contacts.cleaning import (
    CleanInput,
    ForbiddenPolicy,
    UnknownPolicy,
    clean_contact_input,
)
from contacts.models import (
    IDENTITY_RANK,
    AuditEvent,
    Contact,
    Identity,
)
from contacts.services.audit import ContactWrite, audit, check_may_change
from contacts.services.stripe import apply_stripe_accounts
from contacts.services.tags import apply_tags
from core import rows
from core.actors import Actor, Channel
from core.errors import (
    ConflictError,
    ForbiddenError,
    ValidationFailed,
)
from core.prepared import prepared
from core.times import iso
from workspaces.models import Agent


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


def _apply_related(
    contact: Contact, clean: CleanInput, changes: dict, *, merge_related: bool = False
) -> None:
    """Tags and Stripe accounts of the input: replace the sets, or (merge_related) add to them."""
    if clean.tags is not None:
        tag_change = apply_tags(contact, clean.tags, mode="add" if merge_related else "set")
        if tag_change:
            changes["tags"] = tag_change
    if clean.stripe_accounts is not None:
        stripe_change = apply_stripe_accounts(
            contact, clean.stripe_accounts, keep_others=merge_related
        )
        if stripe_change:
            changes["stripe_accounts"] = stripe_change


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
    audit(contact=contact, actor=actor, action=AuditEvent.Action.CREATED, changes=changes)
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
    check_may_change(contact, actor)
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
        changes["deleted_at"] = [iso(contact.deleted_at), None]
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
        audit(contact=contact, actor=actor, action=action, changes=changes)
    return ContactWrite(contact=contact, changes=changes, ignored=clean.ignored)


def _prepare(
    agent: Agent,
    actor: Actor,
    data: Mapping[str, Any],
    definitions: Mapping[str, AttributeDefinition] | None,
    unknown_attributes: UnknownPolicy,
    on_forbidden: ForbiddenPolicy,
) -> CleanInput:
    """The write's input validated against the agent's schema (read only when there are
    attribute values); the attributes it may create are created."""
    attributes = data.get("attributes") if isinstance(data, Mapping) else None
    if definitions is None:
        # The schema is only read when there are attribute values to check against it.
        definitions = attribute_definition_map(agent=agent) if attributes else {}
    # How many attributes may still be created: asked only when a key is new to the schema.
    unknown = attributes and any(key not in definitions for key in attributes)
    room = attribute_room(agent=agent) if unknown and unknown_attributes == "create" else 0
    clean = _clean(agent, actor, data, definitions, unknown_attributes, on_forbidden, room=room)
    if clean.new_attributes:
        attributes_create_inferred(agent=agent, types=clean.new_attributes)
    return clean


def _clean(
    agent: Agent,
    actor: Actor,
    data: Mapping[str, Any],
    definitions: Mapping[str, AttributeDefinition],
    unknown_attributes: UnknownPolicy,
    on_forbidden: ForbiddenPolicy,
    *,
    room: int = 0,
) -> CleanInput:
    return clean_contact_input(
        data,
        actor=actor,
        definitions=definitions,
        phone_region=agent.default_phone_region,
        unknown_attributes=unknown_attributes,
        on_forbidden=on_forbidden,
        attribute_room=room,
    )


# Channels that add people on purpose: an empty record from them is a mistake, never a visitor.
NAMED_BY_CALLER = {Channel.STAFF, Channel.API}


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
    """Create a contact; an `external_id` in `data` must not exist yet (409 otherwise). A
    person added by staff or the API needs something to know them by."""
    now = timezone.now()
    with transaction.atomic():
        clean = _prepare(agent, actor, data, definitions, unknown_attributes, on_forbidden)
        if actor.channel in NAMED_BY_CALLER and not (
            clean.external_id or any(clean.core.get(f) for f in ("name", "email", "phone"))
        ):
            raise ValidationFailed(
                {"name": ["Give at least a name, an email, a phone number or an external ID."]}
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


def _locked_by(agent: Agent, seen_at: datetime | None = None, **lookup: Any) -> Contact | None:
    """The agent's contact with this external id or fingerprint, locked until the end of the
    transaction (SELECT … FOR UPDATE; SQLite locks the whole database on write instead).

    Written as SQL: every identify and every upsert comes through here, and building this
    query with the ORM costs several times what running it does; `core.rows` builds the
    instance without `raw()`'s per-call setup."""
    ((name, value),) = lookup.items()
    if seen_at is not None and name == "external_id":
        # Marked seen at the same time (identify): the UPDATE takes the same row lock.
        stamp = connection.ops.adapt_datetimefield_value(seen_at)
        sql, params = sql_text.SEEN_BY_EXTERNAL_ID, [stamp, stamp, stamp, agent.pk, value]
    else:
        sql, params = sql_text.LOCKED_BY[name], [agent.pk, value]
        if connection.features.has_select_for_update:
            sql += " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(prepared(sql), params)
        contact = rows.instance(Contact, cursor.fetchone())
    if contact is not None:
        contact.agent = agent
    return contact


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
    adopt: bool = False,
    savepoint: bool = True,
    seen_at: datetime | None = None,
) -> ContactWrite:
    """Create or update the contact with this external_id; a soft-deleted one is restored.

    Race-free on both databases: two callers that both find nothing both try to INSERT;
    the unique (agent, external_id) constraint lets one win, and the loser's savepoint
    rolls back and it updates the winner's row instead.

    `adopt` (a signed identify): when no contact has this external id and `data` carries an
    email, the one contact the team already has with that email is adopted instead of
    creating a second person (see `_adopt`). `ContactWrite.adoption` says what happened.

    `savepoint=False` (identify): inside the caller's transaction no savepoint is taken
    around the whole upsert, two statements fewer on the hot path; a caller that passes it
    must let an error end its transaction (the bulk API relies on the savepoint to go on
    with the next item). The insert keeps its own savepoint, which the race above needs.

    `seen_at` (identify): an existing contact is found by marking it seen at that time
    (`contact_mark_seen`'s rule) in the same statement; `ContactWrite.seen` says so. A new
    or adopted contact is not marked: the caller marks it.
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
    with transaction.atomic(savepoint=savepoint):
        clean = _prepare(agent, actor, data, definitions, unknown_attributes, on_forbidden)
        contact = _locked_by(agent, seen_at=seen_at, external_id=ext)
        seen = contact is not None and seen_at is not None
        adoption = ""
        if contact is None and adopt and clean.core.get("email"):
            contact, adoption = _adopt(agent, actor, ext, clean.core["email"], now)
        if contact is None:
            try:
                with transaction.atomic():
                    write = _insert(
                        agent=agent,
                        actor=actor,
                        clean=clean,
                        identity=identity or Identity.VERIFIED,
                        now=now,
                        external_id=ext,
                    )
                    write.adoption = adoption
                    return write
            except IntegrityError:
                contact = _locked_by(agent, seen_at=seen_at, external_id=ext)
                if contact is None:
                    raise
                seen = seen_at is not None
        write = _update_locked(
            contact,
            actor=actor,
            clean=clean,
            identity=identity or Identity.VERIFIED,
            fill_blanks_only=fill_blanks_only,
            now=now,
            merge_related=merge_related,
        )
        write.adoption = adoption
        write.seen = seen
        return write


def contact_upsert_input(
    *,
    agent: Agent,
    actor: Actor,
    data: Mapping[str, Any],
    definitions: Mapping[str, AttributeDefinition],
    unknown_attributes: UnknownPolicy = "error",
    on_forbidden: ForbiddenPolicy = "error",
) -> CleanInput | None:
    """`data` validated as `contact_upsert` would, when that takes no schema change: the
    clean input, or None when the upsert would create attributes or refuse the input (it
    then says why). Reads and writes nothing; with `contact_upsert_unchanged`, what a signed
    identify of a returning visitor asks before it takes the upsert's whole path."""
    data = {k: v for k, v in data.items() if k != "external_id"}
    attributes = data.get("attributes")
    if attributes is not None and not isinstance(attributes, Mapping):
        return None
    if (
        attributes
        and unknown_attributes == "create"
        and any(key not in definitions for key in attributes)
    ):
        return None
    try:
        clean = _clean(agent, actor, data, definitions, unknown_attributes, on_forbidden)
    except (ValidationFailed, ForbiddenError):
        return None
    return None if clean.new_attributes else clean


def contact_upsert_unchanged(
    contact: Contact, clean: CleanInput, *, actor: Actor, identity: str | None = None
) -> bool:
    """Whether `contact_upsert` of `clean` (from `contact_upsert_input`) would write nothing
    to `contact`, the contact with that external id, beyond marking it seen."""
    identity = identity or Identity.VERIFIED
    return not (
        contact.deleted_at is not None
        or clean.tags is not None
        or clean.stripe_accounts is not None
        or IDENTITY_RANK[identity] > IDENTITY_RANK[contact.identity]
        or (contact.identity == Identity.VERIFIED and not actor.trusted)
        or _apply_fields(copy.copy(contact), clean, fill_blanks_only=False)
    )


def _adopt(
    agent: Agent, actor: Actor, external_id: str, email: str, now: datetime
) -> tuple[Contact | None, str]:
    """SPEC 6, adoption: a signed identify for a user id no contact has yet, carrying an
    email, takes over the contact the team already made for that person (through the API,
    an import or the dashboard: live, verified, no external id, that email) instead of
    creating a second one. It gets the external id and keeps its history, conversations
    and tags; from now on the signature vouches for it.

    Exactly one candidate is adopted; with several, none is (the caller creates a new
    contact, and its page lists the others as possible duplicates). Returns the adopted
    contact, locked, or None, and "adopted", "several" or "".

    Two identifies racing for the same contact: the candidate row is locked, then checked
    again, so only the first adopts it; the other finds it taken and goes on without it.
    """
    with connection.cursor() as cursor:
        statement = prepared(sql_text.ADOPTION_CANDIDATES[connection.vendor])
        cursor.execute(statement, [agent.pk, email.strip().lower()])
        ids = [row[0] for row in cursor.fetchall()]
    if len(ids) != 1:
        return None, "several" if ids else ""
    candidate = Contact.objects.select_for_update().filter(pk=ids[0]).first()
    if (
        candidate is None
        or candidate.external_id is not None
        or candidate.deleted_at is not None
        or candidate.identity != Identity.VERIFIED
    ):
        return None, ""
    candidate.agent = agent
    before_source = candidate.identity_source
    candidate.external_id = external_id
    candidate.identity_source = actor.channel
    candidate.verified_at = now
    candidate.fingerprint = None
    candidate.updated_at = now
    candidate.save(
        update_fields=["external_id", "identity_source", "verified_at", "fingerprint", "updated_at"]
    )
    audit(
        contact=candidate,
        actor=actor,
        action=AuditEvent.Action.UPDATED,
        changes={
            "external_id": [None, external_id],
            "identity_source": [before_source, actor.channel],
        },
    )
    return candidate, "adopted"


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
        clean = _prepare(agent, actor, data, definitions, unknown_attributes, on_forbidden)
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
            prepared(sql_text.MARK_SEEN),
            [stamp, stamp, stamp, Contact._meta.pk.get_db_prep_value(contact.pk, connection)],
        )
    contact.last_seen_at = max(contact.last_seen_at or at, at)
    contact.first_seen_at = contact.first_seen_at or at


def contact_conversation_count_add(*, contact: Contact, delta: int = 1) -> None:
    """The help desk started (or moved in) conversations of this contact: the count the
    table shows and sorts by follows, without touching anything else of the row."""
    Contact.objects.filter(pk=contact.pk).update(conversation_count=F("conversation_count") + delta)
    contact.conversation_count += delta
