"""Access checks for dashboard views: re-run on every request, GET and POST alike."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from core.actors import Actor
from core.observability import bind
from workspaces.selectors import AgentAccess, agent_access_for_user


def get_agent_access(
    request: HttpRequest, agent_public_id: str, *, admin: bool = False
) -> AgentAccess:
    """The agent if the user belongs to its workspace (404 otherwise, even if it exists);
    with admin=True, staff members get 403."""
    access = agent_access_for_user(user=request.user, public_id=agent_public_id)
    bind(agent_id=access.agent.pk)
    if admin and not access.is_admin:
        raise PermissionDenied("Only workspace admins can do this.")
    return access


def staff_actor(request: HttpRequest, access: AgentAccess) -> Actor:
    return Actor.staff(request.user, is_admin=access.is_admin)
