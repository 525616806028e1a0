"""Identify: turn what the widget says about a visitor into a contact, by the rules of SPEC 6.

Ways in, from most to least trusted:
- `identify_verified`: a JWT signed (HS256) with the agent's identity secret;
- `identify_hmac`: a user id with its HMAC-SHA256 `user_hash`;
- `identify_handoff`: a short-lived token carrying a verified identity to the help center;
- `identify_self_reported`: unsigned email / name / phone / custom data;
- `identify_anonymous`: a visitor id alone.

Every contact write goes through `contacts.services` with the Actor of its channel (jwt,
hmac, widget), so the audit history says which channel wrote what and the channel rules
(who may verify, who may write secure attributes, who may touch a verified contact) are
enforced in one place. A refused signature raises before anything is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from attributes.models import AttributeDefinition
from attributes.selectors import attribute_definition_map
from attributes.services import attribute_room
from contacts import normalize
from contacts.cleaning import CleanInput, clean_contact_input
from contacts.models import Contact, Identity
from contacts.selectors import contacts_with_email, parse_contact_id
from contacts.services import (
    contact_create,
    contact_mark_seen,
    contact_update,
    contact_upsert,
    contact_upsert_input,
    contact_upsert_unchanged,
)
from core import rows
from core.actors import Actor
from core.errors import ForbiddenError, ValidationFailed
from core.prepared import prepared
from identity import payload
from identity import sql as identity_sql
from identity.merging import merge_quietly, same_email_absorb, visitor_history_absorb
from identity.models import HandoffTokenUse, VisitorSession
from identity.sessions import (
    KEEP,
    session_token_proves,
    session_upsert_params,
    visitor_session_attach,
    visitor_session_attach_changes,
    visitor_session_detach,
    visitor_session_enforce_trust,
    visitor_session_get_or_create,
)
from identity.verification import (
    IdentifyError,
    handoff_token_issue,
    handoff_token_read,
    hmac_verify,
    jwt_verify,
    user_id_from_claim,
)
from workspaces import agent_cache
from workspaces.agent_cache import cached_identity_secrets
from workspaces.models import Agent


@dataclass
class Identified:
    """What an identify did: the visitor session and the contact it now stands for."""

    session: VisitorSession
    contact: Contact | None
    mode: str
    ignored: list[dict[str, str]] = field(default_factory=list)
    # Signed-token `user_metadata`: handed to the bot for this session, never stored.
    session_context: dict[str, Any] | None = None
    # The name this caller may be shown: an unverified visitor who attached to someone
    # else's self-reported contact sees only what they typed, not what that contact holds.
    display_name: str = ""


# --- Entry point ------------------------------------------------------------------------------


def identify(*, agent: Agent, data: Mapping[str, Any], session_token: str = "") -> Identified:
    """Route an identify body to its mode (SPEC 6) and run it in one transaction (or, for a
    returning signed-in visitor with nothing new on PostgreSQL, one statement).

    `session_token` is the widget's previous session token, if it sent one: it proves the
    caller is the browser that holds this visitor id (see `_current_contact`).
    """
    visitor_id = payload.visitor_id_from(data)
    mode = payload.identify_mode(data)
    ignored = payload.unused_keys(data, mode)
    for attempt in range(3):
        try:
            result = _run(agent, mode, visitor_id, data, session_token)
        except OperationalError as exc:
            # Two identifies of related visitors can lock the same contacts in opposite
            # orders; PostgreSQL then aborts one. The whole identify is one transaction,
            # so running it again is safe.
            if attempt == 2 or connection.in_atomic_block or not _retryable(exc):
                raise
            continue
        result.ignored = ignored + result.ignored
        return result
    raise AssertionError("unreachable")


def _run(
    agent: Agent, mode: str, visitor_id: str, data: Mapping[str, Any], session_token: str
) -> Identified:
    if mode == "jwt":
        return identify_verified(
            agent=agent,
            visitor_id=visitor_id,
            token=data.get("token"),
            user_metadata=data.get("user_metadata"),
        )
    if mode == "handoff":
        return identify_handoff(
            agent=agent, visitor_id=visitor_id, identity_token=data.get("identity_token")
        )
    if mode == "hmac":
        return identify_hmac(
            agent=agent,
            visitor_id=visitor_id,
            user_id=data.get("user_id"),
            user_hash=data.get("user_hash"),
            user_metadata=data.get("user_metadata"),
        )
    if mode == "self_reported":
        return identify_self_reported(
            agent=agent, visitor_id=visitor_id, data=data, session_token=session_token
        )
    return identify_anonymous(agent=agent, visitor_id=visitor_id, session_token=session_token)


def _retryable(exc: OperationalError) -> bool:
    # 40P01 deadlock_detected, 40001 serialization_failure
    return getattr(exc.__cause__, "sqlstate", None) in {"40P01", "40001"}


# --- Signed identify (JWT, HMAC, hand-off) ------------------------------------------------------


def identify_verified(
    *, agent: Agent, visitor_id: str, token: Any, user_metadata: Any = None
) -> Identified:
    """Signed JWT (HS256): upsert the verified contact `user_id` with `contact_attributes`
    (secure keys included). `user_metadata` beside the token is session context for the bot:
    kept on the visitor session (replacing the previous one; none sent clears it) and
    returned, never written to the contact."""
    claims = _signed(agent, lambda secrets: jwt_verify(token=token, secrets=secrets))
    user_id = user_id_from_claim(claims.get("user_id"))
    attributes = payload.object_or_none(claims.get("contact_attributes"), "contact_attributes")
    context = payload.object_or_none(user_metadata, "user_metadata")
    ignored = payload.session_context_ignored(context)
    result = _identify_trusted(
        agent=agent,
        visitor_id=visitor_id,
        user_id=user_id,
        fields=attributes or {},
        container="contact_attributes",
        actor=Actor.jwt(),
        mode="jwt",
        context=None if ignored else context,
    )
    result.ignored += ignored
    result.session_context = context
    return result


def identify_hmac(
    *, agent: Agent, visitor_id: str, user_id: Any, user_hash: Any, user_metadata: Any = None
) -> Identified:
    """HMAC: `user_hash` proves `user_id`; `user_metadata` fills name, email, phone and
    non-secure attributes (secure keys are ignored and listed)."""
    stored_id = _signed(
        agent,
        lambda secrets: hmac_verify(user_id=user_id, user_hash=user_hash, secrets=secrets),
    )
    metadata = payload.object_or_none(user_metadata, "user_metadata")
    return _identify_trusted(
        agent=agent,
        visitor_id=visitor_id,
        user_id=stored_id,
        fields=metadata or {},
        container="user_metadata",
        actor=Actor.hmac(),
        mode="hmac",
    )


def _signed(agent: Agent, verify: Callable[[list[str]], Any]) -> Any:
    """`verify(secrets)` with the secrets this process keeps; a signature they refuse is
    checked once more against the database, where a rotation made through another process
    moments ago already shows."""
    try:
        return verify(cached_identity_secrets(agent=agent))
    except IdentifyError as exc:
        if exc.code != "invalid_signature":
            raise
    return verify(cached_identity_secrets(agent=agent, reload=True))


def _identify_trusted(
    *,
    agent: Agent,
    visitor_id: str,
    user_id: str,
    fields: Mapping[str, Any],
    container: str,
    actor: Actor,
    mode: str,
    context: Any = KEEP,
) -> Identified:
    ignored: list[dict[str, str]] = []
    data = payload.contact_data(fields, ignored=ignored)
    seen_at = timezone.now()
    returning = _returning_visitor(
        agent=agent,
        visitor_id=visitor_id,
        user_id=user_id,
        data=data,
        actor=actor,
        context=context,
        seen_at=seen_at,
    )
    if returning is not None:
        session, contact, clean = returning
        ignored += payload.clean_ignored(clean.ignored, signed=True)
        return Identified(
            session=session, contact=contact, mode=mode, ignored=ignored, display_name=contact.name
        )
    with transaction.atomic():
        definitions = _definitions_for_write(agent, data, signed=True)
        try:
            write = contact_upsert(
                agent=agent,
                actor=actor,
                external_id=user_id,
                data=data,
                identity=Identity.VERIFIED,
                definitions=definitions,
                unknown_attributes=_unknown_policy(agent, signed=True),
                on_forbidden="ignore",
                adopt=True,
                # An error ends this identify's transaction anyway (it is raised again).
                savepoint=False,
                # A returning user's contact is marked seen as it is found and locked.
                seen_at=seen_at,
            )
        except ValidationFailed as exc:
            raise payload.prefixed_error(exc, container) from None
        ignored += payload.clean_ignored(write.ignored, signed=True)
        session = visitor_session_get_or_create(
            agent=agent, visitor_id=visitor_id, relaxed_commit=True
        )
        contact = visitor_history_absorb(session=session, target=write.contact, actor=actor)
        contact = same_email_absorb(agent=agent, target=contact, actor=actor)
        visitor_session_attach(
            session=session, contact=contact, own=False, signed=True, context=context
        )
        if not write.seen or contact.pk != write.contact.pk:
            contact_mark_seen(contact=contact, at=seen_at)
    return Identified(
        session=session, contact=contact, mode=mode, ignored=ignored, display_name=contact.name
    )


def _returning_visitor(
    *,
    agent: Agent,
    visitor_id: str,
    user_id: str,
    data: Mapping[str, Any],
    actor: Actor,
    context: Any,
    seen_at: datetime,
) -> tuple[VisitorSession, Contact, CleanInput] | None:
    """The commonest signed identify — a user coming back on a browser that signed in as them
    before, with nothing new to say — in one statement (PostgreSQL, `sql.RETURNING_VISITOR`):
    their contact marked seen, their session upserted, no self-reported twin waiting.

    Answers only when the full path would write nothing more: the contact exists, is live
    and verified, the token's fields change nothing, and the session already stands for
    this contact by its own signature with the same context (the trust rule holds as it
    was; the signature was checked before this is asked). New session context alone is
    written by a second statement. Otherwise None, and the caller
    runs the full identify, whose first steps are this statement's idempotent writes.

    The statement commits by itself (outside a request's transaction, autocommit), and runs
    only after the signature and the input passed: should the full identify then fail on a
    database error, what stays is a true last-seen of a signed-in user and their session."""
    if connection.vendor != "postgresql":
        return None
    try:
        external_id = normalize.normalize_external_id(user_id)
    except normalize.FieldError:
        return None
    # Validated before anything is written: a refused identify changes nothing.
    clean = contact_upsert_input(
        agent=agent,
        actor=actor,
        data=data,
        definitions=attribute_definition_map(agent=agent) if data.get("attributes") else {},
        unknown_attributes=_unknown_policy(agent, signed=True),
        on_forbidden="ignore",
    )
    if external_id is None or clean is None:
        return None
    stamp = connection.ops.adapt_datetimefield_value(seen_at)
    params = [stamp, stamp, stamp, agent.pk, external_id]
    params += session_upsert_params(agent=agent, visitor_id=visitor_id)
    with connection.cursor() as cursor:
        cursor.execute(prepared(identity_sql.RETURNING_VISITOR), params)
        row = cursor.fetchone()
    split = rows.width(VisitorSession)
    session = rows.instance(VisitorSession, row[:split])
    session.agent = agent
    contact_row, twins = row[split : split + rows.width(Contact)], row[-2]
    if contact_row[0] is None or twins:
        return None
    contact = rows.instance(Contact, contact_row)
    contact.agent = agent
    if not contact_upsert_unchanged(contact, clean, actor=actor, identity=Identity.VERIFIED):
        return None
    changes = visitor_session_attach_changes(
        session=session, contact=contact, own=False, signed=True, context=context
    )
    if set(changes) - {"context", "context_at"}:
        return None
    if changes:
        # Only the session context is new (a site sending the page or the cart as
        # user_metadata): written here, as the full path would, to a session that already
        # stands for this contact by its own signature.
        visitor_session_attach(
            session=session, contact=contact, own=False, signed=True, context=context
        )
    return session, contact, clean


def identify_handoff(*, agent: Agent, visitor_id: str, identity_token: Any) -> Identified:
    """Help-center hop: a hand-off token (single use, short-lived) re-identifies the
    visitor as the verified contact it names."""
    contact_id, jti, expires = handoff_token_read(
        agent_public_id=agent.public_id, token=identity_token
    )
    with transaction.atomic():
        # Full durability here: a single-use token's "used" mark must survive a crash.
        HandoffTokenUse.objects.filter(expires_at__lt=timezone.now()).delete()
        try:
            with transaction.atomic():
                HandoffTokenUse.objects.create(agent=agent, jti=jti, expires_at=expires)
        except IntegrityError:
            raise IdentifyError(
                "identity_token_used",
                "This identity token was already used; open the link from the widget again.",
            ) from None
        pk = parse_contact_id(contact_id)
        contact = (
            Contact.objects.filter(
                agent=agent, pk=pk, identity=Identity.VERIFIED, deleted_at__isnull=True
            ).first()
            if pk is not None
            else None
        )
        if contact is None:
            raise IdentifyError(
                "invalid_identity_token", "The contact this token names no longer exists."
            )
        session = visitor_session_get_or_create(agent=agent, visitor_id=visitor_id)
        contact = visitor_history_absorb(
            session=session, target=contact, actor=Actor.system("identify (help-center hand-off)")
        )
        visitor_session_attach(session=session, contact=contact, own=False, signed=True)
        contact_mark_seen(contact=contact)
    return Identified(session=session, contact=contact, mode="handoff", display_name=contact.name)


def handoff_token_for_session(*, agent: Agent, session: VisitorSession) -> str:
    """A hand-off token for the session's verified contact (GET …/identity-token)."""
    contact = session.contact
    if contact is None or contact.identity != Identity.VERIFIED or contact.deleted_at is not None:
        raise IdentifyError(
            "not_verified",
            "Only a visitor identified with a signed token or user_hash can carry their "
            "identity to another site.",
            status=403,
        )
    return handoff_token_issue(agent_public_id=agent.public_id, contact_id=str(contact.pk))


# --- Unsigned identify ---------------------------------------------------------------------------


def identify_self_reported(
    *, agent: Agent, visitor_id: str, data: Mapping[str, Any], session_token: str = ""
) -> Identified:
    """Unsigned email / name / phone / custom_data: attach to this agent's self-reported
    contact with the same email (else phone), or create one. Only blanks are filled unless
    this session created the contact; a verified contact and secure attributes are never
    touched."""
    actor = Actor.widget()
    ignored: list[dict[str, str]] = []
    raw = payload.self_reported_data(data, ignored=ignored)
    policy = _unknown_policy(agent, signed=False)
    with transaction.atomic():
        definitions = _definitions_for_write(agent, raw, signed=False)
        if definitions is None:
            definitions = attribute_definition_map(agent=agent)
        clean = _preview(agent, actor, raw, definitions)
        ignored += payload.clean_ignored(clean.ignored, signed=False)
        session = visitor_session_get_or_create(
            agent=agent, visitor_id=visitor_id, relaxed_commit=True
        )
        current = _current_contact(agent, session, session_token)

        if current is not None and current.identity == Identity.VERIFIED:
            # The browser proved it is this verified visitor: it keeps its identity, and
            # nothing unsigned is written to it.
            ignored += [
                payload.ignored_entry(
                    key,
                    "verified_visitor",
                    "This visitor is verified; unsigned data cannot change a verified contact.",
                )
                for key in payload.supplied_keys(raw)
            ]
            visitor_session_attach(session=session, contact=current, own=False, signed=True)
            contact_mark_seen(contact=current)
            return Identified(
                session=session,
                contact=current,
                mode="self_reported",
                ignored=ignored,
                display_name=current.name,
            )

        if not _has_values(clean):
            return _anonymous_result(session, current, ignored)

        own_current = current is not None and (
            session.created_contact or current.identity == Identity.ANONYMOUS
        )
        key = _match_key(clean)
        if key is not None:
            _lock_key(agent, key)
        match = _self_reported_match(agent, key) if key is not None else None
        if match is not None:
            if current is not None and current.pk != match.pk and own_current:
                match = merge_quietly(primary=match, secondary=current, actor=actor)
            target = match
            own = current is not None and current.pk == match.pk and session.created_contact
        elif current is not None and (own_current or key is None or not getattr(current, key[0])):
            target, own = current, own_current
        else:
            target, own = None, True

        options = {
            "actor": actor,
            "data": raw,
            "identity": Identity.SELF_REPORTED,
            "definitions": definitions,
            "unknown_attributes": policy,
            "on_forbidden": "ignore",
        }
        try:
            if target is None:
                write = contact_create(agent=agent, **options)
            else:
                try:
                    write = contact_update(contact=target, fill_blanks_only=not own, **options)
                except ForbiddenError:
                    # It was verified a moment ago by someone else's signed identify: this
                    # visitor gets a contact of its own instead.
                    write, own = contact_create(agent=agent, **options), True
        except ValidationFailed as exc:
            raise payload.prefixed_error(exc, "") from None
        contact = write.contact
        if not own:
            ignored += _kept_values(clean, contact)
        visitor_session_attach(session=session, contact=contact, own=own)
        contact_mark_seen(contact=contact)
    return Identified(
        session=session,
        contact=contact,
        mode="self_reported",
        ignored=ignored,
        display_name=contact.name if own else clean.core.get("name", ""),
    )


def identify_anonymous(*, agent: Agent, visitor_id: str, session_token: str = "") -> Identified:
    """A visitor id alone: the session (created on first sight), and its contact if it has
    one. No contact is created here; starting a conversation creates an anonymous one."""
    with transaction.atomic():
        session = visitor_session_get_or_create(
            agent=agent, visitor_id=visitor_id, relaxed_commit=True
        )
        current = _current_contact(agent, session, session_token)
        return _anonymous_result(session, current, [])


def _anonymous_result(
    session: VisitorSession, current: Contact | None, ignored: list[dict[str, str]]
) -> Identified:
    # The session was marked seen when it was looked up (visitor_session_get_or_create).
    name = ""
    if current is not None:
        contact_mark_seen(contact=current, at=session.last_seen_at)
        if current.identity != Identity.SELF_REPORTED or session.created_contact:
            name = current.name
    return Identified(
        session=session, contact=current, mode="anonymous", ignored=ignored, display_name=name
    )


def _current_contact(agent: Agent, session: VisitorSession, session_token: str) -> Contact | None:
    """The session's contact as an unsigned caller may use it.

    A session stands for a verified contact only when it signed in itself (the trust rule,
    see `visitor_session_enforce_trust`). And a visitor id is chosen by the browser, so on
    its own it must never reach a verified contact either: unless the caller also presents
    this session's token (proof that it is the browser that signed), the session is
    detached and goes on as a new anonymous visitor. A deleted contact is detached too.
    """
    if session.contact_id is None:
        return None
    visitor_session_enforce_trust(session=session)
    contact = session.contact
    if (
        contact is not None
        and contact.identity == Identity.VERIFIED
        and not session_token_proves(token=session_token, agent=agent, session=session)
    ):
        visitor_session_detach(session=session)
        return None
    return contact


def _match_key(clean: CleanInput) -> tuple[str, str] | None:
    if clean.core.get("email"):
        return ("email", clean.core["email"])
    if clean.core.get("phone"):
        return ("phone", clean.core["phone"])
    return None


def _self_reported_match(agent: Agent, key: tuple[str, str]) -> Contact | None:
    """The oldest live self-reported contact with this email (any case) or phone."""
    kind, value = key
    if kind == "email":
        qs = contacts_with_email(agent=agent, email=value)
    else:
        qs = Contact.objects.filter(agent=agent, phone=value, deleted_at__isnull=True)
    return qs.filter(identity=Identity.SELF_REPORTED).order_by("created_at", "id").first()


def _lock_key(agent: Agent, key: tuple[str, str]) -> None:
    """Serialize self-reported identifies for the same email/phone of an agent, so two
    visitors typing the same email at once attach to one contact instead of creating two.
    (SQLite runs writers one at a time already.)"""
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(f"rapport-identify:{agent.pk}:{key[0]}:{key[1].casefold()}".encode())
    lock_id = int.from_bytes(digest.digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])


def _kept_values(clean: CleanInput, contact: Contact) -> list[dict[str, str]]:
    """Supplied values that the fill-blanks rule did not write (the saved one stayed)."""
    kept = []
    reason = "Self-reported data only fills blanks; the saved value was kept."
    for name, value in clean.core.items():
        saved = getattr(contact, name)
        same = saved.casefold() == value.casefold() if name == "email" else saved == value
        if value and not same:
            kept.append(payload.ignored_entry(name, "kept_saved_value", reason))
    saved_attributes = contact.attributes or {}
    for key, value in clean.attributes.items():
        saved = saved_attributes.get(key)
        if value is not None and not (saved == value and type(saved) is type(value)):
            kept.append(payload.ignored_entry(key, "kept_saved_value", reason))
    return kept


# --- Input shaping --------------------------------------------------------------------------------


def _creates_attributes(agent: Agent, *, signed: bool) -> bool:
    """Whether keys matching no attribute become new ones: by default for a signed identify
    (the customer's server sent them), only on request for unsigned custom_data."""
    if signed:
        return agent.create_attributes_from_signed
    return agent.create_attributes_from_unsigned


def _unknown_policy(agent: Agent, *, signed: bool) -> str:
    return "create" if _creates_attributes(agent, signed=signed) else "ignore"


def _definitions_for_write(
    agent: Agent, data: Mapping[str, Any], *, signed: bool
) -> dict[str, AttributeDefinition] | None:
    """The attribute schema for this write. When new keys may become attributes, the agent
    row is locked first so concurrent identifies cannot together pass the attribute cap."""
    if not _creates_attributes(agent, signed=signed) or not data.get("attributes"):
        return None
    definitions = attribute_definition_map(agent=agent)
    if any(key not in definitions for key in data.get("attributes") or {}):
        Agent.objects.select_for_update().filter(pk=agent.pk).values_list("pk").first()
        definitions = attribute_definition_map(agent=agent)
    return definitions


def _preview(
    agent: Agent, actor: Actor, raw: Mapping[str, Any], definitions: Mapping
) -> CleanInput:
    """Validate and normalize unsigned input before choosing a contact (writes nothing)."""
    policy = _unknown_policy(agent, signed=False)
    try:
        return clean_contact_input(
            raw,
            actor=actor,
            definitions=definitions,
            phone_region=agent.default_phone_region,
            unknown_attributes=policy,
            on_forbidden="ignore",
            attribute_room=attribute_room(agent=agent) if policy == "create" else 0,
        )
    except ValidationFailed as exc:
        raise payload.prefixed_error(exc, "") from None


def _has_values(clean: CleanInput) -> bool:
    return any(clean.core.values()) or any(v is not None for v in clean.attributes.values())


# --- Settings ----------------------------------------------------------------------------------


def identity_settings_update(*, agent: Agent, from_signed: bool, from_unsigned: bool) -> Agent:
    """Whether unknown identify keys become new attributes (type inferred, capped), for
    signed payloads and for unsigned custom_data."""
    Agent.objects.filter(pk=agent.pk).update(
        create_attributes_from_signed=from_signed, create_attributes_from_unsigned=from_unsigned
    )
    agent.create_attributes_from_signed = from_signed
    agent.create_attributes_from_unsigned = from_unsigned
    agent_cache.forget(agent)
    return agent
