"""Recognising a person in stored text, for GDPR erasure: every stored copy of a person's
identifiers, removed or redacted (SPEC 4, 9). Pure text work: which values identify the
person is gathered by contacts (contacts.identifiers).

Who the person is (`Identifiers.of`): each name, email, phone, external id, Stripe id and
Stripe email, avatar URL and text or URL attribute value the contact holds now or held
before: the audit trail's before/after values, which also hold the history of every contact
merged into it.

How they are recognised (`Redactor`):

- case-insensitively and as whole words: "Ann" never matches "Annabel"; anything shorter
  than 3 characters is ignored;
- a name with any spacing or a dot, underscore or dash between its words ("Zebulon
  Quixley", "zebulon_quixley.csv");
- a phone in every common writing of the same number: digits bare or separated by spaces,
  dots, dashes, slashes or parentheses, in national ("(415) 555-9876", "020 7946 0958") and
  international ("+1 415 555 9876", "0044 (0)20 7946 0958") form.

What is searched where:

- The person's own records are deleted: the contact, its tag and Stripe links, its visitor
  sessions and its audit events (one PII-free event records that an erasure happened), and
  the Django admin's log entries of it and of the contacts merged into it.
- Their conversations (and the anonymous ones their visitor sessions started) are kept,
  detached, with every identifier in transcripts and subjects replaced by a marker such as
  "[erased email]", each word of a name too ("Hi Zebulon"); a word that is also everyday
  English ("Will", "Mark", "Hope") only when written with a capital.
- The *keys* (emails, phones, external and Stripe ids, avatar URLs, names of two words or
  more) name the person on their own, so they are looked for in everything else: the
  agent's failed import rows (a row naming the person is theirs, and is deleted), its
  import jobs (a job whose upload or dry-run report names the person loses both files, keeps
  its counts, stops if it was queued or running, and has its file name, label and error
  redacted), and background task tracebacks (redacted). Single-word names and text
  attribute values ("London", "Engineer") would hit other people's rows there, so they are
  not.
- Staff sessions: a pending table notice ("Zebulon Quixley was deleted. Undo") or flash
  message mentioning a key, a single-word name or an attribute value is dropped; the rest of
  the session stays.
- Caches: nothing cached holds contact data (the widget's agent cache holds agents and
  secrets, the shared cache counters); a session kept in a cache in front of the database is
  dropped from the cache when rewritten.

Performance (agents with a million contacts): transcripts are read for this contact's
conversations only; failed import rows and task tracebacks are narrowed by the database
with one case-insensitive regular expression (the same on PostgreSQL and SQLite) before
Python confirms each candidate; files are read in chunks with a cheap substring test first.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
from django.core.files.storage import default_storage

ERASED_NAME = "[erased name]"


ERASED_EMAIL = "[erased email]"


ERASED_PHONE = "[erased phone]"


ERASED = "[erased]"


MIN_LENGTH = 3


# Fewer national digits than this is not a phone number anyone could be found by.
MIN_PHONE_DIGITS = 6


# Name words that are also everyday words or name particles: "I will", "mark as read",
# "van", "de la". They are redacted only when written with a capital ("Thanks Will!").
COMMON_WORDS = frozenset(
    """
    and the van von der den del della des dos das les los las bin ibn ben abu mac
    will may can mark bill pat rob sue art guy ray don jack joy hope faith grace rose
    june april august summer dawn frank miles page long young white black brown green
    gray grey king hill wood bell cook price rich west north south east hunter baker
    mason carter fisher walker chance sky star case lane park field new day love bond
    lord wise major noble sterling drew sunny just
    """.split()
)


# Between the digits of a written phone number: "(415) 555-9876", "415.555.9876", "0 20/79".
_PHONE_SEP = r"[\s()./-]{0,3}"


# The same, as the database's prefilter writes it (any few non-alphanumerics).
_DB_PHONE_SEP = "[^0-9A-Za-z]{0,3}"


_NAME_SEP = r"[\s._-]+"


# Whole words: not inside a run of letters and digits (an underscore separates, as in
# "zebulon_quixley.csv").
_NOT_AFTER_ALNUM = r"(?<![^\W_])"


_NOT_BEFORE_ALNUM = r"(?![^\W_])"


_WORDS = re.compile(r"[^\W\d_]+")


# Drops what may separate a phone's digits (`_PHONE_SEP`): every space character and ().-/
_NOT_PHONE_DIGIT = dict.fromkeys(
    [ord(c) for c in "()./-"] + [i for i in range(0x3000 + 1) if chr(i).isspace()]
)


# Files are read this much at a time, with this much kept over for a match across chunks.
_CHUNK = 1 << 20


_OVERLAP = 2048


@dataclass
class Identifiers:
    """Every value, current and past, that identifies one person."""

    names: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    # External ids, Stripe customer ids, avatar URLs: opaque values matched as written.
    ids: set[str] = field(default_factory=set)
    # Text and URL attribute values.
    values: set[str] = field(default_factory=set)
    # Contacts merged into this one over time (their ids, not personal data).
    merged_contact_ids: set[str] = field(default_factory=set)

    @staticmethod
    def add(target: set[str], *values: Any) -> None:
        for value in values:
            if isinstance(value, str) and len(value.strip()) >= MIN_LENGTH:
                target.add(" ".join(value.split()))


def strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


def dicts(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from dicts(item)


def _json_escaped(text: str) -> str:
    """How `text` reads inside JSON written with non-ASCII escaped (SQLite's JSON columns)."""
    return json.dumps(text)[1:-1]


def _literal(value: str, joiner: str) -> str:
    words = value.split()
    body = joiner.join(re.escape(w) for w in words)
    left = _NOT_AFTER_ALNUM if re.match(r"\w", words[0]) else ""
    right = _NOT_BEFORE_ALNUM if re.search(r"\w$", words[-1]) else ""
    return f"(?i:{left}{body}{right})"


def _db_literal(value: str, joiner: str) -> str:
    return joiner.join(re.escape(w) for w in value.split())


@dataclass(frozen=True)
class _Phone:
    national: str  # national significant number: 4155559876
    country: str  # country calling code: 1
    trunk: str  # national prefix dialled before it at home: 0 in the UK

    @classmethod
    def parse(cls, phone: str) -> _Phone | None:
        digits = re.sub(r"\D", "", phone)
        try:
            number = phonenumbers.parse("+" + digits, None)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not number.country_code:
            return cls(digits, "", "") if len(digits) >= MIN_PHONE_DIGITS else None
        national = phonenumbers.national_significant_number(number)
        if len(national) < MIN_PHONE_DIGITS:
            return None
        region = phonenumbers.region_code_for_number(number)
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region) if region else None
        trunk = (metadata.national_prefix or "") if metadata else ""
        return cls(national, str(number.country_code), trunk)

    def pattern(self) -> str:
        """Every usual writing of the number, in Python's regular expressions."""

        def spaced(digits: str) -> str:
            return _PHONE_SEP.join(digits)

        international = ""
        if self.country:
            prefix = rf"(?:(?:\+|00|011){_PHONE_SEP})?"
            international = rf"(?:{prefix}{spaced(self.country)}{_PHONE_SEP})?"
        trunk = ""
        if self.trunk and self.trunk != self.country:
            trunk = rf"(?:\(?{spaced(self.trunk)}\)?{_PHONE_SEP})?"
        return rf"(?<!\d){international}{trunk}\(?{spaced(self.national)}(?!\d)"

    def db_pattern(self) -> str:
        """A looser test the database can run (PostgreSQL and Python regular expressions)."""
        return _DB_PHONE_SEP.join(self.national)


@dataclass
class _Entry:
    pattern: str
    marker: str
    # What every match contains, for a cheap test before the pattern runs on a large text:
    # a lower-cased word, or (phones) the national digits once separators are dropped.
    hint: str = ""
    digits: str = ""
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.regex = re.compile(self.pattern)

    def in_large_text(self, text: str, folded: str, digits: str) -> bool:
        hinted = (self.hint and self.hint in folded) or (self.digits and self.digits in digits)
        return bool(hinted) and self.regex.search(text) is not None


class Redactor:
    """Finds and replaces one person's identifiers in text (see the module's docstring)."""

    def __init__(self, identifiers: Identifiers) -> None:
        keys: list[tuple[str, _Entry]] = []
        mentions: list[tuple[str, _Entry]] = []
        words: list[tuple[str, _Entry]] = []
        db_parts: list[str] = []
        self.phones: list[_Phone] = []

        def literal(target: list, value: str, marker: str, joiner: str = r"\s+") -> None:
            for form in dict.fromkeys((value, _json_escaped(value))):
                hint = max(form.split(), key=len).casefold()
                target.append((form, _Entry(_literal(form, joiner), marker, hint)))
                if target is keys:
                    db_parts.append(_db_literal(form, joiner))

        for email in identifiers.emails:
            literal(keys, email, ERASED_EMAIL)
        for value in identifiers.ids:
            literal(keys, value, ERASED)
        name_words: set[str] = set()
        for name in identifiers.names:
            name_words.update(w for w in _WORDS.findall(name) if len(w) >= MIN_LENGTH)
            if len(name.split()) > 1:
                literal(keys, name, ERASED_NAME, _NAME_SEP)
            elif name.casefold() not in COMMON_WORDS:  # "Will" alone: among the words below
                literal(mentions, name, ERASED_NAME)
        for value in identifiers.values:
            literal(mentions, value, ERASED)
        for phone in identifiers.phones:
            parsed = _Phone.parse(phone)
            if parsed is None:
                literal(keys, phone, ERASED_PHONE)
                continue
            self.phones.append(parsed)
            db_parts.append(parsed.db_pattern())
        for word in sorted(name_words, key=str.casefold):
            if word.casefold() in COMMON_WORDS:
                forms = "|".join(dict.fromkeys((word.title(), word.upper())))
                pattern = rf"{_NOT_AFTER_ALNUM}(?:{forms}){_NOT_BEFORE_ALNUM}"
            else:
                pattern = _literal(word, "")
            words.append((word, _Entry(pattern, ERASED_NAME, word.casefold())))

        def longest_first(entries: list[tuple[str, _Entry]]) -> list[_Entry]:
            return [e for _, e in sorted(entries, key=lambda item: (-len(item[0]), item[0]))]

        phone_entries = [_Entry(p.pattern(), ERASED_PHONE, digits=p.national) for p in self.phones]
        self._key_entries = longest_first(keys) + phone_entries
        self._mention_entries = longest_first(keys + mentions) + phone_entries
        self._all_entries = self._mention_entries + longest_first(words)
        self._key = _compile(self._key_entries)
        self._mention = _compile(self._mention_entries)
        self._all = _compile(self._all_entries)
        self.db_regex = "|".join(dict.fromkeys(db_parts))

    @property
    def has_keys(self) -> bool:
        return self._key is not None

    @property
    def mentions_anything(self) -> bool:
        return self._mention is not None

    def names_person(self, text: str) -> bool:
        """True when `text` holds one of the person's keys (see the module's docstring)."""
        return bool(text) and self._key is not None and self._key.search(text) is not None

    def mentions(self, text: str) -> bool:
        """True when `text` holds a key, a single-word name or a text attribute value."""
        return bool(text) and self._mention is not None and self._mention.search(text) is not None

    def names_person_quick(self, text: str) -> bool:
        """`names_person` for large texts (megabytes of an import file): each pattern runs
        only when a cheap substring test says it may match."""
        if self._key is None or not text:
            return False
        folded = text.casefold()
        digits = text.translate(_NOT_PHONE_DIGIT) if self.phones else ""
        return any(e.in_large_text(text, folded, digits) for e in self._key_entries)

    def scrub(self, text: str, *, keys_only: bool = False) -> str:
        """`text` with each identifier replaced by a marker such as "[erased email]";
        keys_only leaves single words and attribute values (text that is not the person's)."""
        regex, entries = (
            (self._key, self._key_entries) if keys_only else (self._all, self._all_entries)
        )
        if not text or regex is None:
            return text
        return regex.sub(lambda m: entries[int(m.lastgroup[1:])].marker, text)

    def scrub_json(self, value: Any, *, keys_only: bool = False) -> Any:
        if isinstance(value, str):
            return self.scrub(value, keys_only=keys_only)
        if isinstance(value, dict):
            return {k: self.scrub_json(v, keys_only=keys_only) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub_json(v, keys_only=keys_only) for v in value]
        return value


def _compile(entries: list[_Entry]) -> re.Pattern[str] | None:
    if not entries:
        return None
    return re.compile("|".join(f"(?P<g{i}>{e.pattern})" for i, e in enumerate(entries)))


def scrub_text(text: str, *, name: str = "", email: str = "", phone: str = "") -> str:
    """Replace every mention of the person in `text` with a neutral marker."""
    identifiers = Identifiers()
    Identifiers.add(identifiers.names, name)
    Identifiers.add(identifiers.emails, email)
    Identifiers.add(identifiers.phones, phone)
    return Redactor(identifiers).scrub(text)


def _file_names_person(path: Path, redactor: Redactor) -> bool:
    """Read the file in chunks (imports may be hundreds of megabytes), UTF-8 or UTF-16."""
    with path.open("rb") as binary:
        utf16 = binary.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
        binary.seek(0)
        encoding = "utf-16" if utf16 else "utf-8"
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        tail = ""
        while True:
            chunk = binary.read(_CHUNK)
            text = tail + decoder.decode(chunk, final=not chunk)
            if redactor.names_person_quick(text):
                return True
            if not chunk:
                return False
            tail = text[-_OVERLAP:]


def folder_names_person(folder: str, redactor: Redactor) -> bool:
    try:
        path = Path(default_storage.path(folder))
    except NotImplementedError:  # storage without local files: nothing stored here to read
        return False
    if not path.is_dir():
        return False
    return any(
        _file_names_person(item, redactor) for item in sorted(path.rglob("*")) if item.is_file()
    )
