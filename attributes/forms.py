"""Forms of the attribute schema page; rules (key shape, options, limits) live in the services."""

from __future__ import annotations

from typing import Any

from django import forms

from attributes.models import AttributeType
from core.errors import DomainError


def _options_list(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class _ServiceErrors:
    def add_errors(self, error: DomainError) -> None:
        if not error.fields:
            self.add_error(None, error.message)
            return
        for key, messages in error.fields.items():
            for message in messages:
                self.add_error(key if key in self.fields else None, message)


class AttributeCreateForm(_ServiceErrors, forms.Form):
    label = forms.CharField(max_length=120, required=False, help_text="Shown in the dashboard.")
    key = forms.CharField(
        max_length=63,
        help_text="Used by the API, imports and identify (e.g. plan). It cannot change later.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    type = forms.ChoiceField(choices=AttributeType.choices, initial=AttributeType.TEXT)
    options = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Free\nPro\nEnterprise"}),
        help_text="For select attributes: one option per line.",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    secure = forms.BooleanField(
        required=False,
        help_text="Only signed identify tokens, the API, imports and admins may write it.",
    )

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "key": data["key"].strip(),
            "label": data["label"],
            "type": data["type"],
            "description": data["description"],
            "options": _options_list(data["options"]),
            "secure": data["secure"],
        }


class AttributeEditForm(_ServiceErrors, forms.Form):
    label = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    options = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="One option per line. An option that contacts hold cannot be removed.",
    )
    secure = forms.BooleanField(
        required=False,
        help_text="Only signed identify tokens, the API, imports and admins may write it.",
    )

    def __init__(self, *args: Any, definition, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "label": definition.label,
                "description": definition.description,
                "options": "\n".join(definition.options),
                "secure": definition.secure,
            },
        )
        super().__init__(*args, **kwargs)
        self.definition = definition
        if definition.type != AttributeType.SELECT:
            del self.fields["options"]

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        changes = {
            "label": data["label"],
            "description": data["description"],
            "secure": data["secure"],
        }
        if "options" in self.fields:
            changes["options"] = _options_list(data["options"])
        return changes
