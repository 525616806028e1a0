"""The mailer of a production server without EMAIL_URL: it sends nothing and says why.

Rapport then never tries to mail (invitations show their link to copy, the password reset
page says it is unavailable); anything else that tries fails loudly instead of a mail
silently vanishing, as Django's dummy backend would let it.
"""

from __future__ import annotations

from django.core.mail.backends.base import BaseEmailBackend


class EmailNotConfigured(RuntimeError):
    pass


class NoMailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        if not email_messages:
            return 0
        raise EmailNotConfigured("No mail server is configured: set EMAIL_URL to send email.")
