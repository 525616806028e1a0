"""What the bot may know about the person in a conversation, and action templates filled
with it (SPEC 6, Personalization).

Only a verified contact personalizes: anyone can type someone else's email into a chat, so
a self-reported or anonymous contact yields an anonymous context and empty placeholders,
never that contact's details.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from attributes.models import KEY_PATTERN, AttributeDefinition
from contacts.models import Contact, Identity
from core.times import iso
from helpdesk.models import Conversation
from identity.models import VisitorSession

CORE_PLACEHOLDERS = ("name", "email", "phone", "external_id")
ESCAPES = ("none", "url", "json", "html")
TEMPLATE_MAX_LENGTH = 20_000

# {{contact.<key>}} with optional spaces inside the braces. Other {{…}} placeholders belong
# to whoever else fills the action (the bot platform) and are left exactly as written.
_PLACEHOLDER = re.compile(r"\{\{\s*contact\.([^{}]*?)\s*\}\}")
_ATTR_KEY = re.compile(KEY_PATTERN)


def personalization_contact(conversation: Conversation) -> Contact | None:
    """The conversation's contact if it may personalize the bot: verified and not deleted."""
    contact = conversation.contact
    if contact is None or contact.identity != Identity.VERIFIED or contact.deleted_at:
        return None
    return contact


def conversation_session_context(
    conversation: Conversation, contact: Contact | None
) -> dict[str, Any] | None:
    """The session context (a signed-token identify's `user_metadata`) of the visitor session
    the conversation came from, for the bot: only while that session is still the one that
    signed in as this verified contact. It is the browser's word, not the signature's, so
    it is marked unverified; it never reaches the contact or its attributes."""
    if contact is None or conversation.visitor_session_id is None:
        return None
    row = (
        VisitorSession.objects.filter(
            pk=conversation.visitor_session_id,
            contact_id=contact.pk,
            signed=True,
            context__isnull=False,
        )
        .values("context", "context_at")
        .first()
    )
    if row is None:
        return None
    return {
        "data": row["context"],
        "verified": False,
        "source": "user_metadata",
        "updated_at": iso(row["context_at"]),
    }


@dataclass
class RenderedTemplate:
    text: str
    # Placeholders naming nothing that exists (a typo, an unknown or archived attribute).
    unknown_keys: list[str] = field(default_factory=list)
    # Known placeholders that rendered empty: no value, or no verified contact to ask.
    missing_keys: list[str] = field(default_factory=list)


def _template_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _escape(text: str, escape: str) -> str:
    if escape == "url":
        return quote(text, safe="")
    if escape == "json":
        return json.dumps(text, ensure_ascii=False)[1:-1]
    if escape == "html":
        return html.escape(text, quote=True)
    return text


def render_action_template(
    template: str,
    contact: Contact | None,
    *,
    definitions: Mapping[str, AttributeDefinition] | None = None,
    escape: str = "none",
) -> RenderedTemplate:
    """Fill {{contact.name}}, {{contact.email}}, {{contact.phone}}, {{contact.external_id}}
    and {{contact.attr.<key>}} in `template`.

    Values go in as plain text in a single pass: a value that itself reads
    "{{contact.email}}" or "<b>" is inserted verbatim, never expanded or interpreted
    (`escape` encodes values for a URL, a JSON string or HTML when the action needs it).
    `definitions` are the agent's attributes by key (loaded from the contact's agent when
    not given); archived ones count as unknown. Pass the verified contact only, or None.
    """
    if escape not in ESCAPES:
        raise ValueError(f"escape must be one of {', '.join(ESCAPES)}")
    if definitions is None and contact is not None:
        definitions = {d.key: d for d in AttributeDefinition.objects.filter(agent=contact.agent_id)}
    visible = (
        None
        if definitions is None
        else {key for key, definition in definitions.items() if not definition.archived}
    )
    unknown: dict[str, None] = {}
    missing: dict[str, None] = {}

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        name = f"contact.{key}"
        if key in CORE_PLACEHOLDERS:
            value = getattr(contact, key) if contact is not None else None
        elif key.startswith("attr.") and _ATTR_KEY.fullmatch(key[5:]):
            attr = key[5:]
            if visible is not None and attr not in visible:
                unknown[name] = None
                return ""
            value = (contact.attributes or {}).get(attr) if contact is not None else None
        else:
            unknown[name] = None
            return ""
        text = _template_value(value)
        if text == "":
            missing[name] = None
        return _escape(text, escape)

    text = _PLACEHOLDER.sub(fill, template)
    return RenderedTemplate(text=text, unknown_keys=list(unknown), missing_keys=list(missing))
