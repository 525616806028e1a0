"""The contacts table's layout: which columns exist, how each cell reads, and the links that
change the table's state (sort, page, filters), all built from the request's query string.

Pure helpers with no database access: the view loads rows through `contacts.query` and the
selectors, then hands them here to become headers, cells and links the template only loops
over. The URL is the whole state; a person's remembered layout (TablePreference) only fills
in what the URL leaves out.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import urlencode

import phonenumbers
from django.http import QueryDict
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from attributes.coercion import AttributeValueError, display_value
from attributes.models import AttributeDefinition
from contacts.models import Identity
from contacts.query.conditions import (
    DATE_OPERATOR_LABELS,
    DATED_KINDS,
    FIELDS,
    OPERATOR_LABELS,
    OPERATORS_BY_KIND,
    PRESENCE_CHOICES,
    Target,
    attribute_target,
    describe,
    field_target,
    is_condition_param,
    operand_error,
    parse_operand,
    resolve,
    split_param,
)
from contacts.query.filterset import SEEN_CHOICES
from contacts.query.keyset import DEFAULT_ORDERING
from contacts.selectors import EXACT_COUNT_LIMIT

PAGE_SIZES = (25, 50, 100, 250)
DEFAULT_PAGE_SIZE = 50
MAX_COLUMNS = 60

# Parameters that make up the table's state; anything else in a URL is dropped from links.
# `at` is the position of a page's first row (1-based), carried along with the cursor so
# the footer can say "251–500 of about 3,000" without counting what came before.
# `segment` names the saved segment the state was opened from (contacts.views.segments);
# conditions (attr.<key>__<op>, <field>__<op>) and `match` are kept too.
STATE_KEYS = (
    "q", "tag", "identity", "seen", "deleted", "ordering", "cursor", "at", "per_page", "cols",
    "match", "segment",
)  # fmt: skip
FILTER_KEYS = ("q", "tag", "identity", "seen")

SEEN_LABELS = {
    "24h": "in the last 24 hours",
    "7d": "in the last 7 days",
    "30d": "in the last 30 days",
    "90d": "in the last 90 days",
    "over90d": "more than 90 days ago",
    "never": "never",
}
assert set(SEEN_LABELS) == set(SEEN_CHOICES)

IDENTITY_SOURCES = {
    "jwt": "signed JWT",
    "hmac": "HMAC identify",
    "api": "API",
    "staff": "a staff member",
    "import": "import",
    "widget": "chat widget",
    "system": "system",
}


@dataclass(frozen=True)
class Column:
    key: str  # "email" or "attr.plan"
    label: str
    sort: str | None = None  # ordering name, None when the column cannot sort
    kind: str = "text"  # text, mono, badge, tags, datetime, number, attr
    default_descending: bool = False
    definition: AttributeDefinition | None = None

    @property
    def is_attribute(self) -> bool:
        return self.definition is not None


# Name is always the first column (it links to the contact); these can be chosen.
CORE_COLUMNS: dict[str, Column] = {
    c.key: c
    for c in (
        Column("email", "Email", sort="email"),
        Column("phone", "Phone", sort="phone"),
        Column("company", "Company", sort="company"),
        Column("external_id", "External ID", sort="external_id", kind="mono"),
        Column("identity", "Identity", sort="identity", kind="badge"),
        Column("tags", "Tags", kind="tags"),
        Column(
            "conversations",
            "Conversations",
            sort="conversation_count",
            kind="number",
            default_descending=True,
        ),
        Column("last_seen_at", "Last seen", "last_seen_at", "datetime", default_descending=True),
        Column("first_seen_at", "First seen", "first_seen_at", "datetime", default_descending=True),
        Column("created_at", "Created", "created_at", "datetime", default_descending=True),
        Column("updated_at", "Updated", "updated_at", "datetime", default_descending=True),
    )
}
NAME_COLUMN = Column("name", "Name", sort="name")
DEFAULT_COLUMNS = ("email", "phone", "identity", "tags", "last_seen_at", "created_at")


def attribute_column(definition: AttributeDefinition) -> Column:
    kind = "number" if definition.type == "number" else "attr"
    return Column(
        f"attr.{definition.key}",
        definition.label,
        sort=f"attr.{definition.key}",
        kind=kind,
        default_descending=definition.type in ("number", "date", "datetime"),
        definition=definition,
    )


def available_columns(definitions: Iterable[AttributeDefinition]) -> list[Column]:
    """Every column the chooser offers: core fields, then non-archived attributes in order."""
    return [*CORE_COLUMNS.values(), *(attribute_column(d) for d in definitions if not d.archived)]


def clean_column_keys(keys: Iterable[str], available: Sequence[Column]) -> list[str]:
    """The known column keys among `keys`, without duplicates, in the order given."""
    known = {c.key for c in available}
    return [k for k in dict.fromkeys(k.strip() for k in keys) if k in known][:MAX_COLUMNS]


def parse_page_size(raw: Any) -> int | None:
    try:
        size = int(str(raw))
    except (TypeError, ValueError):
        return None
    return size if size in PAGE_SIZES else None


# --- State and links ----------------------------------------------------------------------


@dataclass
class TableState:
    """The table's state as read from the URL, plus the remembered layout it falls back to."""

    params: QueryDict
    columns: list[Column]
    page_size: int
    ordering: str
    deleted: bool
    columns_in_url: bool = False

    def url(self, base: str, **changes: Any) -> str:
        """`base` + this state's query string with `changes` (None removes a key). A new
        cursor drops the position unless one is given with it."""
        if "cursor" in changes:
            changes.setdefault("at", None)
        return base + querystring(self.params, **changes)

    @property
    def position(self) -> int:
        """1-based position of the page's first row (1 without a cursor)."""
        raw = str(self.params.get("at") or "")
        if not self.params.get("cursor") or not (raw.isascii() and raw.isdigit()):
            return 1
        return max(1, min(int(raw[:12]), 10**12))

    @property
    def query(self) -> str:
        """The state as a query string without a leading `?` (carried by forms)."""
        return self.params.urlencode()


def querystring(params: QueryDict, /, **changes: Any) -> str:
    """Like {% querystring %}, for keys the template tag cannot spell (attr.plan__gte)."""
    out = params.copy()
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, (list, tuple)):
            out.setlist(key, [str(v) for v in value])
        else:
            out[key] = str(value)
    text = out.urlencode()
    return f"?{text}" if text else ""


def state_params(raw: Mapping[str, Any]) -> QueryDict:
    """Only the parameters that belong to the table's state (drops noise from shared links)."""
    params = QueryDict(mutable=True)
    getlist = raw.getlist if hasattr(raw, "getlist") else lambda k: [raw[k]]
    for key in raw:
        if key in STATE_KEYS or is_condition_param(key):
            values = [v for v in getlist(key) if str(v).strip() != ""]
            if values:
                params.setlist(key, values)
    return params


def build_state(
    raw: Mapping[str, Any],
    *,
    definitions: Sequence[AttributeDefinition],
    remembered_columns: Sequence[str] | None,
    remembered_page_size: int | None,
) -> TableState:
    params = state_params(raw)
    available = available_columns(definitions)
    columns_in_url = "cols" in params
    if columns_in_url:
        keys = clean_column_keys(",".join(params.getlist("cols")).split(","), available)
    elif remembered_columns:
        keys = clean_column_keys(remembered_columns, available)
    else:
        keys = list(DEFAULT_COLUMNS)
    by_key = {c.key: c for c in available}
    size = parse_page_size(params.get("per_page")) or remembered_page_size or DEFAULT_PAGE_SIZE
    if size not in PAGE_SIZES:
        size = DEFAULT_PAGE_SIZE
    deleted = str(params.get("deleted", "")).lower() in ("true", "1", "yes")
    return TableState(
        params=params,
        columns=[by_key[k] for k in keys],
        page_size=size,
        ordering=params.get("ordering") or DEFAULT_ORDERING,
        deleted=deleted,
        columns_in_url=columns_in_url,
    )


@dataclass(frozen=True)
class Header:
    column: Column
    url: str | None
    aria_sort: str  # "ascending", "descending" or "" when the table is not sorted by it
    next_direction: str  # what clicking does, for the title


def headers(state: TableState, base: str) -> list[Header]:
    """Header cells with the link that sorts by each column (toggling when already sorted)."""
    result = []
    for column in [NAME_COLUMN, *state.columns]:
        if column.sort is None:
            result.append(Header(column, None, "", ""))
            continue
        if state.ordering == column.sort:
            aria, target = "ascending", f"-{column.sort}"
        elif state.ordering == f"-{column.sort}":
            aria, target = "descending", column.sort
        else:
            aria = ""
            target = f"-{column.sort}" if column.default_descending else column.sort
        url = state.url(base, ordering=target, cursor=None)
        direction = "descending" if target.startswith("-") else "ascending"
        result.append(Header(column, url, aria, direction))
    return result


# --- Cells ----------------------------------------------------------------------------------


@dataclass
class Cell:
    kind: str
    text: str = ""
    title: str = ""
    href: str = ""
    items: list[str] = field(default_factory=list)
    css: str = ""


@dataclass
class Row:
    contact: Any
    cells: list[Cell]
    detail_url: str
    initials: str = ""

    @property
    def html(self) -> SafeString:
        """The row's `<tr>`: the selection box, the contact's name linking to its page, then
        the columns' cells. Built here rather than in the template, as the admin's changelist
        does: a page of fifty rows is most of the page's template nodes, and resolving and
        escaping them one by one cost more than the rest of the page's rendering together.
        Every value is escaped (`html.escape`, quotes included)."""
        contact = self.contact
        name = escape(contact.display_name)
        deleted = ' <span class="badge badge-deleted">Deleted</span>' if contact.is_deleted else ""
        cells = "".join(cell_html(cell) for cell in self.cells)
        return mark_safe(  # noqa: S308 - every value above is escaped
            "<tr>"
            f'<td class="select"><input type="checkbox" name="id" value="{escape(str(contact.pk))}"'
            f' aria-label="Select {name}" data-row-check></td>'
            f'<td class="cell-main"><a class="contact-link" href="{escape(self.detail_url)}">'
            f'<span class="avatar avatar-sm" aria-hidden="true">{escape(self.initials)}</span>'
            f'<span class="long-name" title="{name}">{name}</span></a>{deleted}</td>'
            f"{cells}</tr>"
        )


_NO_TAGS = '<span class="faint">—</span>'


def cell_html(cell: Cell) -> str:
    """One cell as a `<td>`, every value escaped (`html.escape`, quotes included)."""
    title = f' title="{escape(cell.title)}"' if cell.title else ""
    text = escape(cell.text)
    if cell.kind == "badge":
        return f'<td><span class="badge badge-{escape(cell.css)}"{title}>{text}</span></td>'
    if cell.kind == "tags":
        chips = "".join(f'<span class="chip">{escape(name)}</span>' for name in cell.items)
        return f'<td class="tags-cell">{chips or _NO_TAGS}</td>'
    if cell.kind == "link":
        return (
            f'<td class="truncate"><a href="{escape(cell.href)}" rel="noopener noreferrer'
            f' nofollow" target="_blank"{title}>{text}</a></td>'
        )
    return f'<td class="{escape(cell.css)}"{title}>{text}</td>'


def initials(contact: Any) -> str:
    """Two letters for the avatar circle: from the name, else the email, else "?"."""
    words = [w for w in (contact.name or "").split() if w[:1].isalnum()]
    if len(words) >= 2:
        return (words[0][0] + words[-1][0]).upper()
    if words:
        return words[0][:2].upper()
    if contact.email:
        return contact.email[:2].upper()
    return "?"


@functools.lru_cache(maxsize=4096)
def display_phone(e164: str) -> str:
    """+14155552671 as "+1 415-555-2671" (stored E.164 stays what search and exports use).
    Remembered: parsing and formatting cost 60 µs, a table page shows fifty."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


_SECONDS = (("week", 7 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60))


def ago_text(value: datetime, now: datetime) -> str:
    """'just now', '5 minutes ago', '3 months ago' (the largest unit only), counted as
    Django's timesince counts (calendar months and years), without its translation
    machinery: a table page shows a hundred of these."""
    if now - value < timedelta(minutes=1):
        return "just now"
    value = value.astimezone(now.tzinfo) if value.tzinfo and now.tzinfo else value
    months = (now.year - value.year) * 12 + now.month - value.month
    if value.day > now.day or (value.day == now.day and value.time() > now.time()):
        months -= 1
    if months >= 12:
        return _units(months // 12, "year")
    if months >= 1:
        return _units(months, "month")
    seconds = (now - value).total_seconds()
    for unit, size in _SECONDS:
        if seconds >= size:
            return _units(int(seconds // size), unit)
    return "just now"


def _units(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'} ago"


def relative_time(value: datetime | None, now: datetime) -> Cell:
    if value is None:
        return Cell("datetime", "—", css="faint")
    title = value.strftime("%Y-%m-%d %H:%M UTC")
    return Cell("datetime", ago_text(value, now), title=title, css="nowrap")


def attribute_cell(definition: AttributeDefinition, value: Any) -> Cell:
    if value is None:
        return Cell("text", "—", css="faint")
    text = display_value(definition.type, value)
    if definition.type == "url":
        return Cell("link", text, title=text, href=text)
    if definition.type == "number":
        return Cell("text", text, css="num")
    if definition.type == "boolean":
        return Cell("text", text, css="yes" if value else "no")
    return Cell("text", text, title=text if len(text) > 40 else "")


def cell_for(column: Column, contact: Any, now: datetime, tags: Mapping[Any, list[str]]) -> Cell:
    """The cell of `column` for `contact`; `tags`: the page's tag names by contact id
    (contacts.serialization.tag_names_by_contact)."""
    if column.definition is not None:
        return attribute_cell(
            column.definition, (contact.attributes or {}).get(column.definition.key)
        )
    key = column.key
    if key == "identity":
        source = IDENTITY_SOURCES.get(contact.identity_source, contact.identity_source)
        return Cell(
            "badge",
            contact.identity_label,
            title=f"via {source}" if source else "",
            css=contact.identity,
        )
    if key == "tags":
        return Cell("tags", items=tags.get(contact.pk, []))
    if key == "conversations":
        return Cell("text", str(contact.conversation_count), css="num")
    if column.kind == "datetime":
        return relative_time(getattr(contact, key), now)
    value = getattr(contact, key) or ""
    if not value:
        return Cell("text", "—", css="faint")
    if key == "phone":
        return Cell("text", display_phone(value), title=value, css="nowrap")
    return Cell("text", value, css="mono" if column.kind == "mono" else "")


def build_rows(
    contacts: Iterable[Any],
    columns: Sequence[Column],
    detail_url,
    tags: Mapping[Any, list[str]],
) -> list[Row]:
    now = timezone.now()
    return [
        Row(
            contact,
            [cell_for(c, contact, now, tags) for c in columns],
            detail_url(contact),
            initials(contact),
        )
        for contact in contacts
    ]


# --- Summary and active filters ---------------------------------------------------------------


def format_estimate(count: int, exact: bool) -> str:
    """1,234 when exact; "about 12K" / "about 1.2M" when estimated; "more than 10,000"
    when only known to be above the exact-count limit (SQLite, see count_estimate)."""
    if exact:
        return f"{count:,}"
    if count == EXACT_COUNT_LIMIT + 1:
        return f"more than {EXACT_COUNT_LIMIT:,}"
    if count >= 999_500:  # what would read "1000K"
        return f"about {count / 1_000_000:.1f}M"
    if count >= 1_000:
        return f"about {count / 1_000:.0f}K"
    return f"about {count:,}"


@dataclass(frozen=True)
class Chip:
    label: str
    remove_url: str
    condition: bool = False  # a condition (match=all|any combines those)


def active_filter_chips(
    state: TableState, base: str, definitions: Mapping[str, AttributeDefinition]
) -> list[Chip]:
    """One removable chip per active filter, each linking to the state without it."""
    params = state.params
    # No chip for the search: the search box shows it (and keeps what is being typed).
    chips: list[Chip] = []
    tags = params.getlist("tag")
    for tag in tags:
        rest = [t for t in tags if t != tag]
        chips.append(Chip(f"Tag: {tag}", state.url(base, tag=rest or None, cursor=None)))
    identities = [i for v in params.getlist("identity") for i in v.split(",") if i]
    for identity in identities:
        label = Identity(identity).label if identity in Identity.values else identity
        rest = [i for i in identities if i != identity]
        chips.append(
            Chip(f"Identity: {label}", state.url(base, identity=rest or None, cursor=None))
        )
    seen = params.get("seen")
    if seen:
        chips.append(
            Chip(
                f"Last seen {SEEN_LABELS.get(seen, seen)}", state.url(base, seen=None, cursor=None)
            )
        )
    for key in params:
        if key in STATE_KEYS or not is_condition_param(key):
            continue
        try:
            target, op = resolve(key, definitions)
        except ValueError:
            target, op = Target(split_param(key)[0], split_param(key)[0], "text"), "eq"
        for value in params.getlist(key):
            rest = [v for v in params.getlist(key) if v != value]
            chips.append(
                Chip(
                    describe(target, op, value),
                    state.url(base, **{key: rest or None, "cursor": None}),
                    condition=True,
                )
            )
    return chips


def attribute_filter_param(key: str, op: str) -> str:
    return f"attr.{key}" if op == "eq" else f"attr.{key}__{op}"


@dataclass(frozen=True)
class BuilderOperator:
    value: str
    label: str
    types: str  # space-separated kinds (attribute types, field kinds) it applies to


@dataclass(frozen=True)
class BuilderField:
    value: str  # what the builder sends as fkey: a field name or attr.<key>
    label: str
    kind: str
    options: tuple[str, ...] = ()


def builder_fields(definitions: Iterable[AttributeDefinition]) -> dict[str, list[BuilderField]]:
    """What the filter builder can filter by: contact fields, then attributes in order."""
    return {
        "Contact": [BuilderField(name, label, kind) for name, (label, kind) in FIELDS.items()],
        "Attributes": [
            BuilderField(f"attr.{d.key}", d.label or d.key, d.type, tuple(d.options or ()))
            for d in definitions
            if not d.archived
        ],
    }


def builder_operators() -> list[BuilderOperator]:
    """The filter builder's conditions, each marked with the kinds of value it fits
    (the page's script shows only those; the server refuses the others anyway)."""
    from_kinds: dict[str, list[str]] = {}
    for kind, ops in OPERATORS_BY_KIND.items():
        for op in ops:
            from_kinds.setdefault(op, []).append(kind)
    out = []
    for op, label in OPERATOR_LABELS.items():
        kinds = [k for k in from_kinds.get(op, []) if k not in DATED_KINDS]
        if kinds:
            out.append(BuilderOperator(op, label, " ".join(kinds)))
    for op, label in DATE_OPERATOR_LABELS.items():
        kinds = [k for k in from_kinds.get(op, []) if k in DATED_KINDS]
        out.append(BuilderOperator(op, label, " ".join(kinds)))
    present = " ".join(from_kinds["exists"])
    out += [BuilderOperator(op, label, present) for op, label in PRESENCE_CHOICES.items()]
    return out


def _builder_target(key: str, definitions: Mapping[str, AttributeDefinition]) -> Target | None:
    """The builder's fkey: attr.<key>, a contact field, or (older links) an attribute key."""
    if key.startswith("attr."):
        definition = definitions.get(key[5:])
        return attribute_target(definition) if definition is not None else None
    if key in FIELDS:
        return field_target(key)
    definition = definitions.get(key)
    return attribute_target(definition) if definition is not None else None


def with_attribute_filter(
    raw: Mapping[str, Any], definitions: Mapping[str, AttributeDefinition], *, region: str = "US"
) -> tuple[str | None, str]:
    """The canonical query string when the filter builder was used (fkey/fop/fvalue, and
    fvalue2 for the end of a range, become <param>[__op]=value), and what is wrong with the
    condition ("" when nothing is): a condition that cannot be applied is refused here
    rather than added as a chip that filters nothing."""
    key = str(raw.get("fkey") or "").strip()
    if not key:
        return None, ""
    op = str(raw.get("fop") or "eq").strip()
    value = str(raw.get("fvalue") or "").strip()
    if op in PRESENCE_CHOICES:
        op, value = "exists", "true" if op == "exists" else "false"
    target = _builder_target(key, definitions)
    if target is None:
        return None, "Choose an attribute to filter by."
    if op == "between":
        end = str(raw.get("fvalue2") or "").strip()
        if not value or not end:
            return None, f"Give both ends of the range for {target.label}."
        value = f"{value},{end}"
    if not value:
        return None, f"Give a value for {target.label}."
    try:
        parse_operand(target, op, value, region=region)
    except (AttributeValueError, ValueError) as exc:
        return None, operand_error(target, exc)
    params = state_params(raw)
    params.pop("cursor", None)
    params.pop("at", None)
    params.appendlist(target.name_for(op), value)
    return urlencode(list(params.lists()), doseq=True), ""
