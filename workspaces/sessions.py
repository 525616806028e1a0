"""Ending a person's sessions at once, on every device and whatever the session backend.

Each user has a session epoch (UserSettings.session_epoch) that is part of the hash Django
keeps in every session and checks on every request (SessionUser.get_session_auth_hash).
Adding one to it makes every existing session fail that check, so the next request of
each is signed out. No session store is scanned, and no request pays a query for it:
the backend (workspaces.auth) loads the epoch with the user, in the same query.
"""

from __future__ import annotations

from django.contrib.auth import HASH_SESSION_KEY, user_logged_in
from django.db.models import F
from django.dispatch import receiver
from django.http import HttpRequest

from workspaces.models import SessionUser, UserSettings, session_auth_hash


def current_epoch(*, user) -> int:
    """The user's session epoch as stored now."""
    found = UserSettings.objects.filter(user_id=user.pk).values_list("session_epoch", flat=True)
    return found.first() or 0


def sessions_end(*, user) -> None:
    """Sign `user` out of every session: each one's next request is signed out."""
    UserSettings.objects.get_or_create(user_id=user.pk)
    UserSettings.objects.filter(user_id=user.pk).update(session_epoch=F("session_epoch") + 1)


@receiver(user_logged_in, dispatch_uid="workspaces.sessions.stamp_epoch")
def stamp_epoch(sender, request: HttpRequest | None, user, **kwargs) -> None:
    """Whoever signed the user in (our sign-in page, an accepted invitation, Django's
    admin, a test's force_login), the new session carries the current epoch's hash."""
    if request is None or not hasattr(request, "session"):
        return
    request.session[HASH_SESSION_KEY] = session_auth_hash(user.password, current_epoch(user=user))


def session_keep(request: HttpRequest) -> None:
    """After the signed-in person's own sessions were ended, keep this one signed in."""
    fresh = SessionUser.objects.select_related("rapport_settings").get(pk=request.user.pk)
    request.session[HASH_SESSION_KEY] = fresh.get_session_auth_hash()
