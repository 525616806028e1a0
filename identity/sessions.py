"""Widget visitor sessions and the signed tokens that carry them between widget calls.

`identify` returns a session token; later widget calls (start a conversation, post a
message) present it so they attach to the right visitor and contact without trusting
anything the browser says about who it is.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from identity.models import VisitorSession
from workspaces.models import Agent

SESSION_SALT = "rapport.widget-session"
MAX_VISITOR_ID = 128


class InvalidSessionToken(Exception):
    """The token is malformed, forged, expired, or belongs to another agent."""


def visitor_session_get_or_create(*, agent: Agent, visitor_id: str) -> VisitorSession:
    """The session for this widget visitor id, created on first sight (race-free)."""
    visitor_id = (visitor_id or "").strip()[:MAX_VISITOR_ID]
    if not visitor_id:
        raise ValueError("visitor_id is required")
    session = VisitorSession.objects.filter(agent=agent, visitor_id=visitor_id).first()
    if session is not None:
        return session
    try:
        with transaction.atomic():
            return VisitorSession.objects.create(agent=agent, visitor_id=visitor_id)
    except IntegrityError:
        return VisitorSession.objects.get(agent=agent, visitor_id=visitor_id)


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
    return session


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


def visitor_session_attach(*, session: VisitorSession, contact, own: bool) -> None:
    """Point the session at `contact`; `own` records that this session created it."""
    now = timezone.now()
    VisitorSession.objects.filter(pk=session.pk).update(
        contact=contact, created_contact=own, last_seen_at=now
    )
    session.contact, session.created_contact, session.last_seen_at = contact, own, now


def visitor_session_detach(*, session: VisitorSession) -> None:
    """Forget the session's contact: the visitor goes on as a new anonymous one."""
    VisitorSession.objects.filter(pk=session.pk).update(contact=None, created_contact=False)
    session.contact, session.created_contact = None, False
