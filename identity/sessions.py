"""Widget visitor sessions and the signed tokens that carry them between widget calls.

`identify` returns a session token; later widget calls (start a conversation, post a
message) present it so they attach to the right visitor and contact without trusting
anything the browser says about who it is.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core import signing
from django.db import connection
from django.utils import timezone

from contacts.models import Identity
from core import rows
from core.prepared import prepared
from identity import sql
from identity.models import VisitorSession
from workspaces.models import Agent

SESSION_SALT = "rapport.widget-session"
MAX_VISITOR_ID = 128


class InvalidSessionToken(Exception):
    """The token is malformed, forged, expired, or belongs to another agent."""


def visitor_session_get_or_create(
    *, agent: Agent, visitor_id: str, relaxed_commit: bool = False
) -> VisitorSession:
    """The session for this widget visitor id, created on first sight; either way marked
    seen now. (SQL by hand: every identify starts here.)

    `relaxed_commit` (PostgreSQL): the same statement lets the caller's transaction commit
    without waiting for the disk (see `sql.SESSION_UPSERT_RELAXED`)."""
    statement = (
        sql.SESSION_UPSERT_RELAXED
        if relaxed_commit and connection.vendor == "postgresql"
        else sql.SESSION_UPSERT
    )
    with connection.cursor() as cursor:
        cursor.execute(
            prepared(statement), session_upsert_params(agent=agent, visitor_id=visitor_id)
        )
        # The relaxed statement's last column is set_config's answer, not a field.
        row = cursor.fetchone()[: rows.width(VisitorSession)]
        session = rows.instance(VisitorSession, row)
    session.agent = agent
    return session


def session_upsert_params(*, agent: Agent, visitor_id: str) -> list:
    """The parameters of `sql.SESSION_UPSERT` for this visitor id (trimmed and cut to
    MAX_VISITOR_ID; ValueError when blank), marked seen now."""
    visitor_id = (visitor_id or "").strip()[:MAX_VISITOR_ID]
    if not visitor_id:
        raise ValueError("visitor_id is required")
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    new_id = VisitorSession._meta.pk.get_db_prep_value(uuid.uuid4(), connection)
    return [new_id, agent.pk, visitor_id, False, False, now, now]


def session_token_issue(*, session: VisitorSession, agent: Agent) -> str:
    """A signed, expiring token naming this session of this agent."""
    return signing.dumps({"a": agent.public_id, "s": str(session.pk)}, salt=SESSION_SALT)


def session_token_verify(*, token: str, agent: Agent) -> VisitorSession:
    """The session a token names; InvalidSessionToken if it is not valid for `agent` now."""
    if not token or len(token) > 500:
        raise InvalidSessionToken("missing or oversized session token")
    try:
        payload = signing.loads(
            token, salt=SESSION_SALT, max_age=settings.WIDGET_SESSION_MAX_AGE_SECONDS
        )
    except signing.SignatureExpired:
        raise InvalidSessionToken("the session token has expired") from None
    except signing.BadSignature:
        raise InvalidSessionToken("the session token is not valid") from None
    if not isinstance(payload, dict) or payload.get("a") != agent.public_id:
        raise InvalidSessionToken("the session token belongs to another agent")
    session = (
        VisitorSession.objects.filter(pk=payload.get("s"), agent=agent)
        .select_related("contact")
        .first()
    )
    if session is None:
        raise InvalidSessionToken("the session no longer exists")
    visitor_session_enforce_trust(session=session)
    return session


def visitor_session_enforce_trust(*, session: VisitorSession) -> None:
    """The trust rule (SPEC 6), applied wherever a session is used: a session that did not
    present a valid signature itself never stands for a verified contact, however its
    contact became verified (a merge, an import, a staff edit). It is detached and goes on
    as a new anonymous visitor; a deleted contact is let go the same way."""
    contact = session.contact
    if contact is None:
        return
    if contact.deleted_at is not None or (
        contact.identity == Identity.VERIFIED and not session.signed
    ):
        visitor_session_detach(session=session)


def visitor_session_touch(*, session: VisitorSession) -> None:
    now = timezone.now()
    VisitorSession.objects.filter(pk=session.pk).update(last_seen_at=now)
    session.last_seen_at = now


def session_token_proves(*, token: str, agent: Agent, session: VisitorSession) -> bool:
    """True when `token` is a valid session token of exactly this session: the caller is
    the browser that holds it, not someone who only learned its visitor id."""
    if not token or len(token) > 500:
        return False
    try:
        payload = signing.loads(
            token, salt=SESSION_SALT, max_age=settings.WIDGET_SESSION_MAX_AGE_SECONDS
        )
    except signing.BadSignature:
        return False
    return (
        isinstance(payload, dict)
        and payload.get("a") == agent.public_id
        and payload.get("s") == str(session.pk)
    )


KEEP = object()  # visitor_session_attach: leave the session context as it is


def visitor_session_attach(
    *, session: VisitorSession, contact, own: bool, signed: bool = False, context=KEEP
) -> None:
    """Point the session at `contact`; `own` records that this session created it, `signed`
    that it presented a valid signature for it just now. `context` (a signed-token
    identify's `user_metadata`, or None) replaces the session context; otherwise it stays
    while the contact does, and goes when the session changes contact. (A returning
    visitor already pointing there with the same context: nothing to write.)"""
    changes = visitor_session_attach_changes(
        session=session, contact=contact, own=own, signed=signed, context=context
    )
    if changes:
        VisitorSession.objects.filter(pk=session.pk).update(**changes)
        for name, value in changes.items():
            setattr(session, name, value)


def visitor_session_attach_changes(
    *, session: VisitorSession, contact, own: bool, signed: bool = False, context=KEEP
) -> dict:
    """What `visitor_session_attach` would write to the session (nothing: an empty dict)."""
    if contact.identity == Identity.VERIFIED and not signed:
        raise ValueError("only a signed session may attach to a verified contact")
    changes = {}
    if session.contact_id != contact.pk:
        changes.update(contact=contact)
    if session.created_contact != own:
        changes.update(created_contact=own)
    if session.signed != signed:
        changes.update(signed=signed)
    if context is KEEP:
        context = session.context if session.contact_id == contact.pk else None
    if context != session.context:
        changes.update(context=context, context_at=timezone.now() if context is not None else None)
    return changes


def visitor_session_detach(*, session: VisitorSession) -> None:
    """Forget the session's contact: the visitor goes on as a new anonymous one."""
    VisitorSession.objects.filter(pk=session.pk).update(
        contact=None, created_contact=False, signed=False, context=None, context_at=None
    )
    session.contact, session.created_contact, session.signed = None, False, False
    session.context = session.context_at = None
