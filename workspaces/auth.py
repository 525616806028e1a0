"""Signing in by email, whatever its case: `Admin@Example.com` is `admin@example.com`."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from workspaces.models import SessionUser


class EmailBackend(ModelBackend):
    """Django's model backend, matching the user name (an email) case-insensitively.

    Only an unambiguous match signs in: if two accounts differ only by case, neither is
    guessed and the exact spelling is required.

    The user of each signed-in request is a SessionUser loaded with its settings in one
    query: its session hash includes the session epoch, so ending someone's sessions
    (workspaces.sessions) costs no request an extra query."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        users = get_user_model()._default_manager.filter(username__iexact=username.strip())[:2]
        matches = list(users)
        if len(matches) != 1:
            exact = [u for u in matches if u.get_username() == username]
            if len(exact) != 1:
                # Run the hasher anyway: the time taken says nothing about the account.
                get_user_model()().set_password(password)
                return None
            matches = exact
        user = matches[0]
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    def get_user(self, user_id):
        user = SessionUser.objects.select_related("rapport_settings").filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None

    async def aget_user(self, user_id):
        user = await (
            SessionUser.objects.select_related("rapport_settings").filter(pk=user_id).afirst()
        )
        return user if user is not None and self.user_can_authenticate(user) else None
