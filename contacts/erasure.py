"""Scrubbing a person's name, email and phone out of free text (GDPR erasure)."""

from __future__ import annotations

import re

import phonenumbers

ERASED_NAME = "[erased name]"
ERASED_EMAIL = "[erased email]"
ERASED_PHONE = "[erased phone]"

# Digit runs that may be written phone numbers: "+1 (415) 555-0123", "415.555.0123"…
_PHONE_CANDIDATE = re.compile(r"\+?\d[\d\s().\-]{4,}\d")


def _phone_tails(phone: str) -> set[str]:
    """Digit strings that identify `phone` when a written number ends with them."""
    digits = re.sub(r"\D", "", phone)
    tails = {digits} if len(digits) >= 6 else set()
    try:
        national = str(phonenumbers.parse(phone, None).national_number)
    except phonenumbers.NumberParseException:
        national = ""
    if len(national) >= 6:
        tails.add(national)
    return tails


def scrub_text(text: str, *, name: str = "", email: str = "", phone: str = "") -> str:
    """Replace every mention of the person in `text` with a neutral marker."""
    if not text:
        return text
    if email:
        text = re.sub(re.escape(email), ERASED_EMAIL, text, flags=re.IGNORECASE)
    if phone:
        tails = _phone_tails(phone)

        def _phone(match: re.Match[str]) -> str:
            digits = re.sub(r"\D", "", match.group(0))
            return ERASED_PHONE if any(digits.endswith(t) for t in tails) else match.group(0)

        if tails:
            text = _PHONE_CANDIDATE.sub(_phone, text)
    if name:
        text = re.sub(re.escape(name), ERASED_NAME, text, flags=re.IGNORECASE)
        # "Hi Jane" names the person as surely as "Jane Doe" does.
        for part in sorted(set(name.split()), key=len, reverse=True):
            if len(part) >= 3:
                text = re.sub(
                    rf"(?<!\w){re.escape(part)}(?!\w)", ERASED_NAME, text, flags=re.IGNORECASE
                )
    return text
