from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

# Sections of an agent's dashboard, in menu order: (label, url name, admins only). Every
# one exists: a renamed URL fails loudly here instead of silently dropping a menu item.
SECTIONS = (
    ("Contacts", "contacts:list", False),
    ("Inbox", "helpdesk:inbox", False),
    ("Import", "transfers:import", True),
    ("Attributes", "attributes:schema", True),
    ("Settings", "workspaces:settings", True),
)


# Tabs of an agent's settings (admins): (label, url name). A tab appears once its URL exists.
SETTINGS_TABS = (
    ("General & API keys", "workspaces:settings"),
    ("Identity verification", "identity:settings"),
    ("Members", "workspaces:members"),
    ("Webhooks", "webhooks:endpoints"),
)
# The settings tabs staff see too (read-only); for them, Settings opens the first of these.
STAFF_SETTINGS_TABS = frozenset({"workspaces:members"})


def _settings_tabs(request: HttpRequest, agent) -> list[dict[str, Any]]:
    tabs = []
    for label, name in SETTINGS_TABS:
        if agent.my_role != "admin" and name not in STAFF_SETTINGS_TABS:
            continue
        url = reverse(name, kwargs={"agent_public_id": agent.public_id})
        tabs.append({"label": label, "url": url, "active": False})
    # The deepest tab whose URL prefixes the current path is the active one (a webhook
    # endpoint's page is under Webhooks; every page is under General's settings/).
    candidates = [t for t in tabs if request.path.startswith(t["url"])]
    if candidates:
        max(candidates, key=lambda t: len(t["url"]))["active"] = True
    return tabs


def navigation(request: HttpRequest) -> dict[str, Any]:
    """The agents a signed-in user can switch between and the current agent's sections."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from workspaces.selectors import agents_for_user

    agents = agents_for_user(user=user)
    match = getattr(request, "resolver_match", None)
    current_id = match.kwargs.get("agent_public_id") if match else None
    current = next((a for a in agents if a.public_id == current_id), None)
    sections = []
    if current is not None:
        for label, name, admin_only in SECTIONS:
            if admin_only and current.my_role != "admin":
                if name != "workspaces:settings":
                    continue
                # Staff read the Members tab of Settings, and nothing else of it.
                name = next(n for _, n in SETTINGS_TABS if n in STAFF_SETTINGS_TABS)
            url = reverse(name, kwargs={"agent_public_id": current.public_id})
            sections.append({"label": label, "url": url, "active": False})
        # The deepest section whose URL prefixes the current path is the active one.
        candidates = [s for s in sections if request.path.startswith(s["url"])]
        if candidates:
            max(candidates, key=lambda s: len(s["url"]))["active"] = True
    return {
        "nav_agents": agents,
        "nav_agent": current,
        "nav_sections": sections,
        "settings_tabs": _settings_tabs(request, current) if current is not None else [],
    }
