"""Dashboard forms for contacts: typed inputs per attribute, errors mapped back to fields.

The forms only shape input; every rule (normalizing emails and phones, coercing attribute
values, who may write secure attributes) lives in `contacts.cleaning` and the services,
whose `ValidationFailed` field names map back onto these fields with `add_errors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms

from attributes.models import AttributeDefinition, AttributeType
from contacts.models import Contact
from core.errors import DomainError

CORE_LABELS = {
    "name": "Name",
    "email": "Email",
    "phone": "Phone",
    "company": "Company",
    "avatar_url": "Avatar URL",
    "external_id": "External ID",
}
ATTRIBUTE_PREFIX = "attr_"


def attribute_field_name(key: str) -> str:
    return f"{ATTRIBUTE_PREFIX}{key}"


def _initial_for(definition: AttributeDefinition, value: Any) -> Any:
    """The stored value as its input shows it."""
    if value is None:
        return False if definition.type == AttributeType.BOOLEAN else ""
    if definition.type == AttributeType.BOOLEAN:
        return bool(value)
    if definition.type == AttributeType.DATETIME and isinstance(value, str):
        return value.rstrip("Z")  # stored as UTC; datetime-local shows it without a zone
    return str(value)


def _attribute_field(definition: AttributeDefinition, *, disabled: bool) -> forms.Field:
    common = {
        "label": definition.label,
        "required": False,
        "disabled": disabled,
        "help_text": definition.description,
    }
    type_ = definition.type
    if type_ == AttributeType.BOOLEAN:
        return forms.BooleanField(**common)
    if type_ == AttributeType.SELECT:
        choices = [("", "—"), *[(o, o) for o in definition.options]]
        return forms.CharField(widget=forms.Select(choices=choices), **common)
    widgets = {
        AttributeType.NUMBER: forms.NumberInput(attrs={"step": "any"}),
        AttributeType.DATE: forms.DateInput(attrs={"type": "date"}),
        AttributeType.DATETIME: forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}),
        AttributeType.URL: forms.URLInput(attrs={"placeholder": "https://"}),
    }
    # Values stay text here: attributes.coercion decides what a valid number or date is, with
    # the same message the API and imports give.
    return forms.CharField(widget=widgets.get(type_, forms.TextInput()), strip=True, **common)


class ContactForm(forms.Form):
    """Core fields plus one typed input per non-archived attribute."""

    name = forms.CharField(required=False, max_length=255)
    email = forms.CharField(
        required=False, max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    phone = forms.CharField(
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"type": "tel", "placeholder": "+1 415 555 2671"}),
    )
    company = forms.CharField(required=False, max_length=255)
    avatar_url = forms.CharField(
        required=False, max_length=2000, widget=forms.URLInput(attrs={"placeholder": "https://"})
    )
    external_id = forms.CharField(
        required=False,
        max_length=255,
        help_text="Your own id for this person (user or customer id). It cannot change later.",
    )

    def __init__(
        self,
        *args: Any,
        definitions: Sequence[AttributeDefinition],
        contact: Contact | None = None,
        can_write_secure: bool,
        **kwargs: Any,
    ) -> None:
        self.contact = contact
        self.definitions = [d for d in definitions if not d.archived]
        initial = dict(kwargs.pop("initial", None) or {})
        if contact is not None:
            for name in CORE_LABELS:
                initial.setdefault(name, getattr(contact, name) or "")
            for definition in self.definitions:
                initial[attribute_field_name(definition.key)] = _initial_for(
                    definition, (contact.attributes or {}).get(definition.key)
                )
        super().__init__(*args, initial=initial, **kwargs)
        for name, label in CORE_LABELS.items():
            self.fields[name].label = label
        if contact is not None and contact.external_id:
            # Immutable once set (merge is the only way two ids meet).
            self.fields["external_id"].disabled = True
            self.fields["external_id"].help_text = "Set once; it cannot change."
        for definition in self.definitions:
            locked = definition.secure and not can_write_secure
            field = _attribute_field(definition, disabled=locked)
            if definition.type == AttributeType.SELECT and contact is not None:
                current = (contact.attributes or {}).get(definition.key)
                if current is not None and current not in definition.options:
                    field.widget.choices.append((str(current), f"{current} (no longer an option)"))
            field.secure = definition.secure
            field.locked = locked
            field.attribute_type = definition.get_type_display()
            self.fields[attribute_field_name(definition.key)] = field

    @property
    def core_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in CORE_LABELS]

    @property
    def attribute_fields(self) -> list[forms.BoundField]:
        return [self[attribute_field_name(d.key)] for d in self.definitions]

    def service_data(self) -> dict[str, Any]:
        """What to hand to contact_create/contact_update: on edit only the changed fields
        (so an untouched checkbox never writes "No" into a blank attribute)."""
        editing = self.contact is not None
        changed = set(self.changed_data)
        data: dict[str, Any] = {}
        for name in CORE_LABELS:
            if self.fields[name].disabled:
                continue
            value = self.cleaned_data.get(name, "")
            if editing and name not in changed:
                continue
            if not editing and not value:
                continue
            data[name] = value
        attributes: dict[str, Any] = {}
        for definition in self.definitions:
            name = attribute_field_name(definition.key)
            if self.fields[name].disabled or (editing and name not in changed):
                continue
            value = self.cleaned_data.get(name)
            if definition.type == AttributeType.BOOLEAN:
                if not editing and not value:
                    continue
                attributes[definition.key] = bool(value)
            elif value in ("", None):
                if editing:
                    attributes[definition.key] = None  # cleared
            else:
                attributes[definition.key] = value
        if attributes:
            data["attributes"] = attributes
        return data

    def add_errors(self, error: DomainError) -> None:
        """Show a service's field errors beside the inputs they belong to."""
        if not error.fields:
            self.add_error(None, error.message)
            return
        for key, messages in error.fields.items():
            name = key
            if key.startswith("attributes."):
                name = attribute_field_name(key.split(".", 1)[1])
            if name not in self.fields:
                name = None
            for message in messages:
                self.add_error(name, message)


class StripeAccountForm(forms.Form):
    label = forms.CharField(required=False, max_length=120)
    stripe_id = forms.CharField(
        required=False,
        max_length=255,
        label="Stripe customer id",
        widget=forms.TextInput(attrs={"placeholder": "cus_…", "autocomplete": "off"}),
    )
    stripe_email = forms.CharField(
        required=False, max_length=254, label="Stripe email", widget=forms.EmailInput()
    )

    def add_errors(self, error: DomainError) -> None:
        if not error.fields:
            self.add_error(None, error.message)
            return
        for key, messages in error.fields.items():
            for message in messages:
                self.add_error(key if key in self.fields else None, message)


class EraseForm(forms.Form):
    confirm = forms.CharField(max_length=300, label="Type to confirm")

    def __init__(self, *args: Any, expected: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expected = expected

    def clean_confirm(self) -> str:
        typed = " ".join(self.cleaned_data["confirm"].split())
        if typed.casefold() != self.expected.casefold():
            raise forms.ValidationError(
                f"Type {self.expected} exactly to confirm the erasure.", code="mismatch"
            )
        return typed
