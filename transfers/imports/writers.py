"""Writers: how a batch of prepared rows becomes contacts.

`ServiceWriter` goes row by row through the contact services (every database; the
reference behaviour). `transfers.imports.copy_writer.CopyWriter` does the same with COPY
and set-based SQL on PostgreSQL, falling back to this class for a batch it cannot write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from attributes.models import AttributeDefinition
from contacts import normalize
from contacts.models import Contact
from contacts.selectors import contacts_with_email
from contacts.services import contact_create, contact_update, contact_upsert
from contacts.signals import changes_batched
from core.actors import Actor
from core.errors import DomainError
from transfers.imports.mapping import RowConverter, RowData
from transfers.imports.readers import SourceRow
from transfers.models import ContactImport


@dataclass
class Outcome:
    action: str  # created, updated, unchanged, error, skipped
    problems: list[dict[str, str]] = field(default_factory=list)


@dataclass
class PreparedRow:
    source: SourceRow
    row: RowData | None
    outcome: Outcome | None = None  # decided before writing (bad row, superseded)


def problems_from_error(
    exc: DomainError, converter: RowConverter, values: dict[str, Any]
) -> list[dict[str, str]]:
    """The service's field errors as {column, value, message}, named by the file's columns."""
    if not exc.fields:
        return [{"column": "", "value": "", "message": exc.message}]
    problems = []
    for name, messages in exc.fields.items():
        column = converter.column_for(name)
        value = values.get(column, "") if column else ""
        prefix = f"{name.split('.', 1)[1]}: " if name.startswith("attributes.") else ""
        for message in messages:
            if prefix and message.startswith(prefix):
                message = message[len(prefix) :]  # the column already names the attribute
            problems.append(
                {
                    "column": column or name,
                    "value": _short(value),
                    "message": message,
                }
            )
    return problems


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    return text[:200]


class ServiceWriter:
    """Row by row through the contact services: the reference behaviour, on every database."""

    def __init__(
        self,
        *,
        job: ContactImport,
        actor: Actor,
        definitions: dict[str, AttributeDefinition],
        converter: RowConverter,
    ) -> None:
        self.agent = job.agent
        self.actor = actor
        self.definitions = definitions
        self.converter = converter

    def clean(self, rows: list[PreparedRow]) -> None:
        """The services clean each row themselves."""

    def write(self, rows: list[PreparedRow], cleaned: Any = None) -> list[Outcome]:
        outcomes = []
        for prepared in rows:
            try:
                with transaction.atomic(), changes_batched(""):
                    outcome = self._write_one(prepared.row)
            except DomainError as exc:
                outcome = Outcome(
                    "error", problems_from_error(exc, self.converter, prepared.source.values)
                )
            outcomes.append(outcome)
        return outcomes

    def _write_one(self, row: RowData) -> Outcome:
        common = {"actor": self.actor, "definitions": self.definitions, "merge_related": True}
        contact = None
        if row.match_id is not None:
            contact = Contact.objects.filter(agent=self.agent, pk=row.match_id).first()
        if contact is None and row.external_id is None:
            contact = self._unique_match(row)
        if contact is not None:
            write = contact_update(contact=contact, data=row.data, restore=True, **common)
        elif row.external_id is not None:
            data = {k: v for k, v in row.data.items() if k != "external_id"}
            write = contact_upsert(
                agent=self.agent, external_id=row.data["external_id"], data=data, **common
            )
        else:
            common.pop("merge_related")
            write = contact_create(agent=self.agent, data=row.data, **common)
        return Outcome(write.outcome)

    def _unique_match(self, row: RowData) -> Contact | None:
        """The one live contact with the row's email (else phone); None for none or several."""
        try:
            email = normalize.normalize_email(row.data.get("email"))
            phone = normalize.normalize_phone(
                row.data.get("phone"), region=self.agent.default_phone_region
            )
        except normalize.FieldError:
            return None  # the service reports the bad value
        for qs in (
            contacts_with_email(agent=self.agent, email=email) if email else None,
            Contact.objects.filter(agent=self.agent, deleted_at__isnull=True, phone=phone)
            if phone
            else None,
        ):
            if qs is None:
                continue
            found = list(qs.order_by("id")[:2])
            if len(found) == 1:
                return found[0]
            if found:
                return None  # several contacts share it: create rather than guess
        return None
