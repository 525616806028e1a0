"""URL helpers shared by the dashboard tests."""

from __future__ import annotations

from django.urls import reverse


def list_url(agent) -> str:
    return reverse("contacts:list", kwargs={"agent_public_id": agent.public_id})


def contact_url(name: str, contact, agent=None, **kwargs) -> str:
    agent = agent or contact.agent
    return reverse(
        f"contacts:{name}",
        kwargs={"agent_public_id": agent.public_id, "contact_id": contact.pk, **kwargs},
    )


def agent_url(name: str, agent, **kwargs) -> str:
    return reverse(name, kwargs={"agent_public_id": agent.public_id, **kwargs})


HX = {"HTTP_HX_REQUEST": "true"}
