"""What every API endpoint shares: API-key authentication, per-key throttling, and the
agent and actor a request speaks for. (Errors: core.api.errors.)"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core import ratelimit
from core.actors import Actor
from core.api import AUTH_HEADER
from core.observability import bind
from workspaces.models import Agent, ApiKey
from workspaces.selectors import api_key_lookup
from workspaces.services import api_key_touch


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <api_key>`; `request.auth` is the ApiKey, its agent the scope."""

    def authenticate(self, request: Request):
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise exceptions.AuthenticationFailed("Use the header Authorization: Bearer <api_key>.")
        api_key = api_key_lookup(raw_key=raw.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed("The API key is unknown or has been revoked.")
        api_key_touch(api_key=api_key)
        bind(agent_id=api_key.agent_id, api_key_id=api_key.pk)
        return (ApiKeyUser(api_key), api_key)

    def authenticate_header(self, request: Request) -> str:
        return AUTH_HEADER


class ApiKeyUser:
    """Stands in for request.user on API calls: authenticated, scoped to one agent."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return str(self.api_key)


class HasApiKey(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ApiKey)


class ApiKeyRateThrottle(BaseThrottle):
    """Calls per API key (settings.API_RATE_LIMIT), counted across every server process."""

    def allow_request(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, ApiKey):
            return True
        verdict = ratelimit.hit("api", str(request.auth.pk), settings.API_RATE_LIMIT)
        self.retry_after = verdict.retry_after
        return verdict.allowed

    def wait(self) -> float | None:
        return getattr(self, "retry_after", None)


def api_agent(request: Request) -> Agent:
    """The agent the request's API key belongs to."""
    return request.auth.agent


def api_actor(request: Request) -> Actor:
    return Actor.api(request.auth)
