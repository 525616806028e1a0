"""Who is writing to a contact, and what that channel is trusted to do.

Every service takes an `Actor`; the rules of SPEC 2-3 (who may verify a contact, who may
write secure attributes) are decided here once instead of in each view or endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Channel(StrEnum):
    STAFF = "staff"
    API = "api"
    IMPORT = "import"
    JWT = "jwt"
    HMAC = "hmac"
    WIDGET = "widget"
    SYSTEM = "system"


# Channels whose word is enough to make a contact verified.
VERIFYING = {Channel.STAFF, Channel.API, Channel.IMPORT, Channel.JWT, Channel.HMAC, Channel.SYSTEM}
# Channels that may write secure attributes (staff only when admin: see can_write_secure).
SECURE_WRITERS = {Channel.API, Channel.IMPORT, Channel.JWT, Channel.SYSTEM}


@dataclass(frozen=True)
class Actor:
    channel: Channel
    label: str = ""
    user_id: int | None = None
    is_admin: bool = False

    @property
    def verifies(self) -> bool:
        return self.channel in VERIFYING

    @property
    def trusted(self) -> bool:
        """Trusted channels may read and change verified contacts; the widget may not."""
        return self.channel != Channel.WIDGET

    @property
    def can_write_secure(self) -> bool:
        return self.channel in SECURE_WRITERS or (self.channel == Channel.STAFF and self.is_admin)

    @classmethod
    def staff(cls, user, *, is_admin: bool) -> Actor:
        return cls(Channel.STAFF, label=user.get_username(), user_id=user.pk, is_admin=is_admin)

    @classmethod
    def api(cls, api_key) -> Actor:
        return cls(Channel.API, label=f"API key {api_key.name} ({api_key.prefix}…)")

    @classmethod
    def importer(cls, label: str) -> Actor:
        return cls(Channel.IMPORT, label=label)

    @classmethod
    def jwt(cls) -> Actor:
        return cls(Channel.JWT, label="identify (signed JWT)")

    @classmethod
    def hmac(cls) -> Actor:
        return cls(Channel.HMAC, label="identify (HMAC)")

    @classmethod
    def widget(cls) -> Actor:
        return cls(Channel.WIDGET, label="widget (self-reported)")

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(Channel.SYSTEM, label=label)
