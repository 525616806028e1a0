"""Sections other apps add to a contact's page (the help desk lists the conversations).

Contacts renders them without knowing who provides them: an app registers a provider in
its `AppConfig.ready`; each provider returns a `Panel` (a template and its context) for a
contact, and the page includes them in registration order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from contacts.models import Contact
from workspaces.models import Agent


@dataclass
class Panel:
    template: str
    context: dict[str, Any] = field(default_factory=dict)


Provider = Callable[[Agent, Contact], Panel]
_providers: list[Provider] = []


def register(provider: Provider) -> Provider:
    if provider not in _providers:
        _providers.append(provider)
    return provider


def panels_for(agent: Agent, contact: Contact) -> list[Panel]:
    return [provider(agent, contact) for provider in _providers]
