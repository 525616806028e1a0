"""Typed custom attribute values: the one place that turns input into stored JSON.

Forms, the API, imports and identify all call `coerce_value`, so `"42"` means the number
42 everywhere and a bad value is refused with the same precise message everywhere.

Stored representations (chosen so that JSON ordering is the natural ordering, which lets
the database sort and compare them without casts):
- text: str          - number: int when integral, else float
- boolean: bool      - date: "YYYY-MM-DD"
- datetime: "YYYY-MM-DDTHH:MM:SSZ" (always UTC, always the same width)
- select: one of the definition's options, spelled as defined
- url: absolute http(s) URL
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

MAX_TEXT_LENGTH = 10_000
MAX_URL_LENGTH = 2_000
# Numbers beyond 15 significant digits would not survive a round trip through JSON doubles.
MAX_NUMBER_DIGITS = 15

TRUE_WORDS = {"true", "yes", "y", "1", "on", "t"}
FALSE_WORDS = {"false", "no", "n", "0", "off", "f"}

_url_validator = URLValidator(schemes=["http", "https"])
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class AttributeValueError(ValueError):
    """A value that cannot be stored for an attribute; the message names all three."""

    def __init__(self, key: str, type_: str, value: Any, reason: str) -> None:
        self.key = key
        self.type = type_
        self.value = value
        self.reason = reason
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{key}: {reason} (expected {type_}, got {shown})")

    def for_people(self, label: str, options: list[str] | None = None) -> str:
        """The same refusal as a person at a form reads it: "MRR must be a number"."""
        expected = {
            "number": "a number",
            "boolean": "yes or no",
            "date": "a date, such as 2024-03-31",
            "datetime": "a date and time",
            "url": "a web address starting with https://",
        }.get(self.type)
        if self.type == "select" and options:
            return f"{label} must be one of: {', '.join(options)}."
        if self.type == "datetime" and "years 1 to 9999" in self.reason:
            return f"{label} must be a date between the years 1 and 9999."
        if self.type == "number" and "not a number" not in self.reason:
            return f"{label}: {self.reason}."  # a number, but one that cannot be kept
        if expected:
            return f"{label} must be {expected}."
        return f"{label}: {self.reason}."


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def coerce_value(type_: str, value: Any, *, key: str, options: list[str] | None = None) -> Any:
    """Return the stored form of `value` for an attribute of `type_`; None means "no value"."""
    if _is_blank(value):
        return None
    coercer = _COERCERS.get(type_)
    if coercer is None:
        raise AttributeValueError(key, type_, value, f"unknown attribute type {type_!r}")
    return coercer(value, key, options or [])


def _text(value: Any, key: str, options: list[str]) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise AttributeValueError(key, "text", value, "a text value must be a string")
    text = str(value).strip()
    if len(text) > MAX_TEXT_LENGTH:
        raise AttributeValueError(
            key, "text", value, f"text is longer than {MAX_TEXT_LENGTH} characters"
        )
    if "\x00" in text:
        raise AttributeValueError(key, "text", value, "text may not contain NUL characters")
    return text


def _number(value: Any, key: str, options: list[str]) -> int | float:
    if isinstance(value, bool):
        raise AttributeValueError(key, "number", value, "true/false is not a number")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise AttributeValueError(key, "number", value, "the number must be finite")
        number = Decimal(repr(value))
    elif isinstance(value, (str, Decimal)):
        text = str(value).strip().replace("_", "")
        if isinstance(value, str) and not _NUMBER_RE.match(text):
            raise AttributeValueError(key, "number", value, "not a number")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise AttributeValueError(key, "number", value, "not a number") from None
        if not number.is_finite():
            raise AttributeValueError(key, "number", value, "the number must be finite")
    else:
        raise AttributeValueError(key, "number", value, "not a number")
    number = number.normalize()
    _sign, digits, exponent = number.as_tuple()
    integral_digits = len(digits) + exponent if isinstance(exponent, int) else len(digits)
    if integral_digits > MAX_NUMBER_DIGITS:
        raise AttributeValueError(
            key, "number", value, f"the number has more than {MAX_NUMBER_DIGITS} digits"
        )
    if number == number.to_integral_value():
        return int(number)
    return float(number)


def _boolean(value: Any, key: str, options: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise AttributeValueError(key, "boolean", value, "use true/false, yes/no or 1/0")


def _date(value: Any, key: str, options: list[str]) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            pass
        # A full ISO timestamp names a day too; its date part is what a date attribute holds.
        if len(text) > 10 and text[10] in "T ":
            try:
                return dt.datetime.fromisoformat(text).date().isoformat()
            except ValueError:
                pass
    raise AttributeValueError(key, "date", value, "use an ISO 8601 date such as 2024-03-31")


def _datetime(value: Any, key: str, options: list[str]) -> str:
    moment: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        # Unix timestamps are how many systems (and Intercom's API) send times.
        if not math.isfinite(value) or not 0 <= value < 253402300800:
            raise AttributeValueError(key, "datetime", value, "the timestamp is out of range")
        moment = dt.datetime.fromtimestamp(value, tz=dt.UTC)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("z", "Z")):
            text = text[:-1] + "+00:00"
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            moment = None
    if moment is None:
        raise AttributeValueError(
            key, "datetime", value, "use ISO 8601 such as 2024-03-31T14:30:00Z or a Unix time"
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC; 0001-01-01T00:00:00+14:00 in
        # year 0. Neither exists for Python or the databases.
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except OverflowError:
        raise AttributeValueError(
            key, "datetime", value, "the time is outside the years 1 to 9999 in UTC"
        ) from None


def _select(value: Any, key: str, options: list[str]) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise AttributeValueError(key, "select", value, "choose one of the options")
    text = str(value).strip()
    for option in options:
        if option.casefold() == text.casefold():
            return option
    shown = ", ".join(options[:10]) + (", …" if len(options) > 10 else "")
    raise AttributeValueError(key, "select", value, f"not one of the options ({shown})")


def _url(value: Any, key: str, options: list[str]) -> str:
    if not isinstance(value, str):
        raise AttributeValueError(key, "url", value, "a URL must be a string")
    text = value.strip()
    if len(text) > MAX_URL_LENGTH:
        raise AttributeValueError(key, "url", value, f"longer than {MAX_URL_LENGTH} characters")
    try:
        _url_validator(text)
    except ValidationError:
        raise AttributeValueError(
            key, "url", value, "not an absolute http(s) URL such as https://example.com/"
        ) from None
    return text


_COERCERS = {
    "text": _text,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "select": _select,
    "url": _url,
}


def infer_type(values: Iterable[Any]) -> str:
    """Guess the attribute type that fits every non-blank value in `values` (text if none)."""
    samples = [v for v in values if not _is_blank(v)]
    if not samples:
        return "text"
    for candidate in ("boolean", "number", "date", "datetime", "url"):
        if all(_fits(candidate, v) for v in samples):
            return candidate
    return "text"


def _fits(type_: str, value: Any) -> bool:
    if type_ == "boolean" and isinstance(value, str):
        # "1"/"0" alone are more likely numbers; words make a column boolean.
        return value.strip().lower() in (TRUE_WORDS | FALSE_WORDS) - {"1", "0"}
    if type_ == "boolean" and not isinstance(value, bool):
        return False
    if type_ == "number" and isinstance(value, str) and value.strip().startswith("+"):
        return False  # phone-like strings stay text
    if type_ == "datetime" and isinstance(value, (int, float)):
        return False  # bare numbers are numbers
    if type_ == "date" and isinstance(value, str) and len(value.strip()) != 10:
        return False
    try:
        coerce_value(type_, value, key="_")
    except AttributeValueError:
        return False
    return True


def display_value(type_: str, value: Any) -> str:
    """A short human rendering of a stored value (tables, sidebars, CSV)."""
    if value is None:
        return ""
    if type_ == "boolean":
        return "Yes" if value else "No"
    if type_ == "datetime" and isinstance(value, str):
        return value.replace("T", " ").replace("Z", " UTC")
    return str(value)
