"""Core contact fields: normalization and validation, with no database access.

Each function returns the stored form or raises `FieldError` whose message is written for
the person who typed the value.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email

MAX_NAME = 255
MAX_EMAIL = 254
MAX_EXTERNAL_ID = 255
MAX_COMPANY = 255
MAX_URL = 2000
MAX_TAG = 64

STRIPE_ID_RE = re.compile(r"^cus_[A-Za-z0-9]{1,250}$")
_url_validator = URLValidator(schemes=["http", "https"])
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class FieldError(ValueError):
    pass


def _plain_text(value: Any, *, field: str, max_length: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise FieldError(f"{field} must be a string.")
    text = str(value).strip()
    if _CONTROL_RE.search(text):
        raise FieldError(f"{field} may not contain control characters.")
    if len(text) > max_length:
        raise FieldError(f"{field} is longer than {max_length} characters.")
    return text


def normalize_name(value: Any) -> str:
    return " ".join(_plain_text(value, field="name", max_length=MAX_NAME).split())


def normalize_company(value: Any) -> str:
    return _plain_text(value, field="company", max_length=MAX_COMPANY)


def normalize_external_id(value: Any) -> str | None:
    """Caller ids may be numbers (stored as strings); blank means "none"."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = _plain_text(value, field="external_id", max_length=MAX_EXTERNAL_ID)
    return text or None


def normalize_email(value: Any) -> str:
    """Trim, lower-case the domain (the local part is the mailbox owner's business)."""
    text = _plain_text(value, field="email", max_length=MAX_EMAIL)
    if not text:
        return ""
    if text.count("@") != 1:
        raise FieldError(f"{text!r} is not a valid email address.")
    local, domain = text.split("@")
    text = f"{local}@{domain.lower()}"
    try:
        validate_email(text)
    except ValidationError:
        raise FieldError(f"{text!r} is not a valid email address.") from None
    return text


def normalize_phone(value: Any, *, region: str) -> str:
    """E.164, with `region` assumed for numbers typed without a country code."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = _plain_text(value, field="phone", max_length=64)
    if not text:
        return ""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise FieldError(
            f"{text!r} is not a phone number; use international format such as +14155550123."
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise FieldError(
            f"{text!r} is not a valid phone number for region {region}; "
            "include the country code such as +44 20 7946 0958."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_url(value: Any, *, field: str = "avatar_url") -> str:
    text = _plain_text(value, field=field, max_length=MAX_URL)
    if not text:
        return ""
    try:
        _url_validator(text)
    except ValidationError:
        raise FieldError(f"{text!r} is not an absolute http(s) URL.") from None
    return text


def normalize_tag(value: Any) -> str:
    if not isinstance(value, str):
        raise FieldError("A tag must be a string.")
    text = " ".join(value.split())
    if not text:
        raise FieldError("A tag cannot be empty.")
    if len(text) > MAX_TAG:
        raise FieldError(f"Tag {text[:20]!r}… is longer than {MAX_TAG} characters.")
    if "," in text:
        # Commas separate tags in CSV import and export.
        raise FieldError(f"Tag {text!r} may not contain a comma.")
    if _CONTROL_RE.search(text):
        raise FieldError("A tag may not contain control characters.")
    return text


def normalize_stripe_id(value: Any) -> str:
    text = _plain_text(value, field="stripe_id", max_length=255)
    if not STRIPE_ID_RE.match(text):
        raise FieldError(f"{text!r} is not a Stripe customer id (it looks like cus_ABC123).")
    return text


def phone_digits(value: str) -> str:
    return re.sub(r"\D", "", value)
