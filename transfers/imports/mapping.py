"""Columns of an import file -> contact fields: the automatic mapping and the row converter.

A mapping is `{column: target}` with these targets:

- core fields `external_id`, `name`, `first_name`, `last_name` (joined into the name),
  `email`, `phone`, `avatar_url`, `company`; `id` (a Rapport contact id, to match on);
- `tags` (comma-separated, or a JSON list);
- `stripe_accounts` (the YAML or JSON list an export writes) or one account per row from
  `stripe_id`, `stripe_email` and `stripe_label`;
- `attr:<key>` an attribute of the agent, `new:<key>` an attribute the import creates
  (its type in the job's `new_attributes`), `ignore`.

Blank cells change nothing: an import fills and overwrites, it never clears a value.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

from attributes.coercion import infer_type
from attributes.models import KEY_PATTERN, AttributeDefinition, AttributeType
from contacts.normalize import phone_digits

IGNORE = "ignore"
CORE_TARGETS = {
    "external_id": "External ID",
    "name": "Name",
    "first_name": "First name (joined into the name)",
    "last_name": "Last name (joined into the name)",
    "email": "Email",
    "phone": "Phone",
    "avatar_url": "Avatar URL",
    "company": "Company",
    "id": "Rapport contact id (to match on)",
    "tags": "Tags (comma-separated)",
    "stripe_accounts": "Stripe accounts (list)",
    "stripe_id": "Stripe customer id (cus_…)",
    "stripe_email": "Stripe email",
    "stripe_label": "Stripe account label",
}
SINGLE_TARGETS = set(CORE_TARGETS)

# Column names people use for each field (after lower-casing and joining words with "_").
SYNONYMS = {
    "external_id": {
        "external_id", "externalid", "ext_id", "user_id", "userid", "customer_id",
        "customerid", "client_id", "account_id", "member_id", "uid",
    },
    "name": {"name", "full_name", "fullname", "contact_name", "display_name", "customer_name"},
    "first_name": {"first_name", "firstname", "given_name", "first", "forename"},
    "last_name": {"last_name", "lastname", "surname", "family_name", "last"},
    "email": {"email", "e_mail", "email_address", "emailaddress", "mail", "contact_email"},
    "phone": {
        "phone", "phone_number", "phonenumber", "telephone", "tel", "mobile", "mobile_phone",
        "cell", "cell_phone", "whatsapp",
    },
    "avatar_url": {"avatar_url", "avatar", "photo", "photo_url", "picture", "image_url"},
    "company": {
        "company", "company_name", "organization", "organisation", "organization_name", "org",
        "account_name",
    },
    "id": {"id", "rapport_id", "contact_id"},
    "tags": {"tags", "tag", "labels", "segments"},
    "stripe_accounts": {"stripe_accounts"},
    "stripe_id": {"stripe_id", "stripe_customer_id", "stripe_customer", "stripe_cus_id"},
    "stripe_email": {"stripe_email"},
    "stripe_label": {"stripe_label", "stripe_account_label"},
}  # fmt: skip
_BY_NAME = {name: target for target, names in SYNONYMS.items() for name in names}
# Columns an export writes that an import cannot set: they are ignored when mapped automatically.
READ_ONLY = {
    "identity", "verified_at", "first_seen_at", "last_seen_at", "created_at", "updated_at",
    "deleted_at", "conversation_count",
}  # fmt: skip

_KEY_RE = re.compile(KEY_PATTERN)


def normalize_header(column: str) -> str:
    """'E-mail Address ' -> 'e_mail_address'."""
    return re.sub(r"[^a-z0-9]+", "_", column.strip().lower()).strip("_")


def attribute_key_for(column: str) -> str | None:
    """A valid new attribute key from a column name, or None."""
    key = normalize_header(re.sub(r"^(attributes?|attr)[._]", "", column.strip(), flags=re.I))
    if key and not key[0].isalpha():
        key = f"a_{key}"
    key = key[:63]
    return key if _KEY_RE.match(key) else None


@dataclass
class Suggestion:
    mapping: dict[str, str]
    # key -> inferred type for columns offered as new attributes
    new_attributes: dict[str, str]


def auto_map(
    columns: list[str],
    definitions: Iterable[AttributeDefinition],
    sample: list[Mapping[str, Any]],
    *,
    create_unknown: bool = False,
) -> Suggestion:
    """Map columns by name: core fields and synonyms, attribute keys, then attribute labels."""
    definitions = list(definitions)
    taken = {d.key for d in definitions}  # archived keys cannot be created again either
    live = [d for d in definitions if not d.archived]
    by_key = {d.key: d for d in live}
    by_label = {normalize_header(d.label): d for d in live}
    mapping: dict[str, str] = {}
    new: dict[str, str] = {}
    used: set[str] = set()
    for column in columns:
        norm = normalize_header(column)
        stripped = normalize_header(re.sub(r"^(attributes?|attr)[._]", "", column, flags=re.I))
        target = _BY_NAME.get(norm)
        if target is not None and target not in used and stripped == norm:
            mapping[column] = target
            used.add(target)
            continue
        definition = by_key.get(stripped) or by_label.get(stripped) or by_label.get(norm)
        if definition is not None and f"attr:{definition.key}" not in used:
            mapping[column] = f"attr:{definition.key}"
            used.add(mapping[column])
            continue
        if norm in READ_ONLY:
            mapping[column] = IGNORE
            continue
        key = attribute_key_for(column)
        if key is None or key in taken or f"new:{key}" in used:
            mapping[column] = IGNORE
            continue
        new[key] = infer_type(row.get(column) for row in sample)
        target = f"new:{key}"
        mapping[column] = target if create_unknown else IGNORE
        if create_unknown:
            used.add(target)
    return Suggestion(mapping, new)


def target_choices(definitions: Iterable[AttributeDefinition]) -> list[tuple[str, str]]:
    """(value, label) of every target a column can be mapped to, for the mapping form."""
    choices = [(IGNORE, "Don't import")]
    choices += list(CORE_TARGETS.items())
    choices += [
        (f"attr:{d.key}", f"Attribute: {d.label} ({d.get_type_display()})")
        for d in definitions
        if not d.archived
    ]
    return choices


class MappingError(ValueError):
    """The mapping itself is wrong (two columns on one field, an unknown attribute…)."""


def validate_mapping(
    mapping: Mapping[str, str],
    columns: list[str],
    definitions: Mapping[str, AttributeDefinition],
    new_attributes: Mapping[str, str],
) -> dict[str, str]:
    """The mapping restricted to the file's columns, or MappingError saying what is wrong."""
    clean: dict[str, str] = {}
    taken: dict[str, str] = {}
    problems: list[str] = []
    for column in columns:
        target = mapping.get(column, IGNORE) or IGNORE
        if not isinstance(target, str):
            problems.append(f"Column “{column}”: the target must be a string.")
            continue
        if target == IGNORE:
            clean[column] = IGNORE
            continue
        if target.startswith("attr:"):
            definition = definitions.get(target[5:])
            if definition is None or definition.archived:
                problems.append(f"Column “{column}”: no attribute with key {target[5:]!r}.")
                continue
        elif target.startswith("new:"):
            key = target[4:]
            if not _KEY_RE.match(key):
                problems.append(
                    f"Column “{column}”: {key!r} is not a valid attribute key (lowercase "
                    "letters, digits and _, starting with a letter)."
                )
                continue
            if key in definitions:
                problems.append(
                    f"Column “{column}”: the attribute {key!r} already exists; map to it instead."
                )
                continue
            if new_attributes.get(key) not in AttributeType.values:
                problems.append(f"Column “{column}”: choose a type for the new attribute {key!r}.")
                continue
        elif target not in SINGLE_TARGETS:
            problems.append(f"Column “{column}”: unknown target {target!r}.")
            continue
        if target in taken:
            problems.append(
                f"Columns “{taken[target]}” and “{column}” are both mapped to the same field."
            )
            continue
        taken[target] = column
        clean[column] = target
    if "stripe_accounts" in taken and ({"stripe_id", "stripe_email", "stripe_label"} & set(taken)):
        problems.append("Map either a Stripe accounts list or stripe_id/stripe_email, not both.")
    if ({"stripe_email", "stripe_label"} & set(taken)) and "stripe_id" not in taken:
        problems.append("A Stripe email or label column needs a Stripe customer id column too.")
    if problems:
        raise MappingError(" ".join(problems))
    return clean


# --- Rows ----------------------------------------------------------------------------------


@dataclass
class RowData:
    """One row as contact input for the services, plus how to find its contact."""

    data: dict[str, Any] = field(default_factory=dict)
    match_id: uuid.UUID | None = None
    problems: list[dict[str, str]] = field(default_factory=list)

    @property
    def external_id(self) -> str | None:
        value = self.data.get("external_id")
        return str(value) if value not in (None, "") else None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _parse_accounts(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            raise ValueError(
                "is neither a YAML nor a JSON list of accounts (stripe_id, stripe_email, label)."
            ) from None
        except RecursionError:  # PyYAML builds nested lists recursively
            raise ValueError(
                "nests lists or objects far deeper than a list of accounts (stripe_id, "
                "stripe_email, label)."
            ) from None
    return value


class RowConverter:
    """Turns a row's {column: value} into contact input following one validated mapping."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.mapping = {c: t for c, t in mapping.items() if t != IGNORE}
        self.by_target = {t: c for c, t in self.mapping.items()}

    def column_for(self, field_name: str) -> str:
        """The column an error of the services (`email`, `attributes.plan`…) comes from."""
        if field_name.startswith("attributes."):
            key = field_name.split(".", 1)[1]
            return self.by_target.get(f"attr:{key}") or self.by_target.get(f"new:{key}", "")
        if field_name.startswith("stripe_accounts"):
            if "stripe_accounts" in self.by_target:
                return self.by_target["stripe_accounts"]
            sub = field_name.rsplit(".", 1)[-1]
            target = {"stripe_id": "stripe_id", "stripe_email": "stripe_email"}.get(sub)
            return self.by_target.get(target or "stripe_label", "") or self.by_target.get(
                "stripe_id", ""
            )
        if field_name == "name":
            return self.by_target.get("name") or self.by_target.get("first_name", "")
        return self.by_target.get(field_name, "")

    def key_of(self, values: Mapping[str, Any]) -> str | None:
        """What identifies the row's contact inside one file (the last row with a key wins):
        its Rapport id, else external id, else email, else phone digits. Read straight from
        the key columns: the scan pass calls this for every row of the file."""
        by_target = self.by_target
        column = by_target.get("id")
        if column is not None:
            value = values.get(column)
            if not _blank(value):
                try:
                    return f"i:{uuid.UUID(str(value).strip())}"
                except ValueError:
                    pass  # the row is an error: its key does not matter
        for target, prefix in (("external_id", "e:"), ("email", "m:")):
            column = by_target.get(target)
            if column is not None:
                value = values.get(column)
                if not _blank(value):
                    text = (value if isinstance(value, str) else _cell_text(value)).strip()
                    return prefix + (text.lower() if prefix == "m:" else text)
        column = by_target.get("phone")
        if column is not None:
            value = values.get(column)
            if not _blank(value):
                digits = phone_digits(str(value))
                return f"p:{digits}" if digits else None
        return None

    def convert(self, values: Mapping[str, Any]) -> RowData:
        row = RowData()
        data = row.data
        attributes: dict[str, Any] = {}
        names: dict[str, str] = {}
        stripe: dict[str, Any] = {}
        for column, target in self.mapping.items():
            value = values.get(column)
            if _blank(value):
                continue
            if isinstance(value, str):
                value = value.strip()
            if target.startswith(("attr:", "new:")):
                attributes[target.split(":", 1)[1]] = value
            elif target in ("first_name", "last_name"):
                names[target] = _cell_text(value)
            elif target == "id":
                try:
                    row.match_id = uuid.UUID(str(value))
                except ValueError:
                    row.problems.append(
                        {"column": column, "value": _cell_text(value)[:200],
                         "message": "is not a Rapport contact id (a UUID)."}
                    )  # fmt: skip
            elif target == "tags":
                data["tags"] = value
            elif target == "stripe_accounts":
                try:
                    data["stripe_accounts"] = _parse_accounts(value)
                except ValueError as exc:
                    row.problems.append(
                        {"column": column, "value": _cell_text(value)[:200], "message": str(exc)}
                    )
            elif target.startswith("stripe_"):
                stripe[target.removeprefix("stripe_")] = value
            else:
                data[target] = value
        if names and "name" not in data:
            data["name"] = " ".join(names[k] for k in ("first_name", "last_name") if k in names)
        if stripe:
            account = {"stripe_id": stripe.get("id"), "stripe_email": stripe.get("email", "")}
            if "label" in stripe:
                account["label"] = _cell_text(stripe["label"])
            data["stripe_accounts"] = [account]
        if attributes:
            data["attributes"] = attributes
        if not (row.match_id or data.get("external_id") or data.get("email") or data.get("phone")):
            row.problems.append(
                {
                    "column": "",
                    "value": "",
                    "message": "The row has no external ID, email or phone to find or create "
                    "the contact by.",
                }
            )
        return row


def raw_cells(raw: Any) -> Any:
    """A row as stored for the failed-rows file (bounded, JSON-safe)."""
    if isinstance(raw, list):
        return [str(c)[:10_000] for c in raw]
    return raw
