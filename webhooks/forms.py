"""The endpoint form of Settings → Webhooks. It only collects the input (no length or
format rules of its own): the services check the URL, the events and the description, and
their refusals are shown beside each field."""

from __future__ import annotations

from django import forms

from webhooks.models import ALL_EVENTS, EVENT_TYPES

# What each event says happened, as the checkboxes show it.
EVENT_HELP = {
    "contact.created": "a contact was added",
    "contact.updated": "a contact's fields, attributes, tags or Stripe accounts changed",
    "contact.deleted": "a contact was deleted (it can be restored)",
    "contact.restored": "a deleted contact was restored",
    "contact.merged": "two contacts became one",
    "contact.erased": "a contact was erased for good",
    "contact.identified": "a contact's identity was verified or rose",
    "conversation.created": "a conversation started",
    "conversation.status_changed": "a conversation was escalated, closed or reopened",
    "import.completed": "an import finished",
}
# (value, what it means): the form shows the value as code beside its meaning.
EVENT_CHOICES = [(ALL_EVENTS, "All events")] + [
    (event, EVENT_HELP.get(event, "")) for event in EVENT_TYPES
]


class EndpointForm(forms.Form):
    url = forms.CharField(
        label="URL",
        required=False,
        strip=False,
        widget=forms.URLInput(
            attrs={"placeholder": "https://example.com/webhooks/rapport", "spellcheck": "false"}
        ),
        help_text="Events are POSTed here as JSON, signed.",
    )
    description = forms.CharField(
        required=False,
        strip=False,
        widget=forms.TextInput(attrs={"placeholder": "e.g. CRM sync"}),
        help_text="Who receives them, to recognise the endpoint later (optional).",
    )
    events = forms.MultipleChoiceField(
        required=False,
        choices=EVENT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
    )

    @classmethod
    def for_endpoint(cls, endpoint) -> EndpointForm:
        return cls(
            initial={
                "url": endpoint.url,
                "description": endpoint.description,
                "events": list(endpoint.events),
            }
        )

    def values(self) -> dict:
        """What the services take (valid or not: they say what is wrong)."""
        data = self.cleaned_data
        return {
            "url": data.get("url", ""),
            "description": data.get("description", ""),
            "events": list(data.get("events") or []),
        }

    def add_refusal(self, fields: dict[str, list[str]]) -> None:
        """A service's ValidationFailed fields, each beside its field."""
        for name, problems in fields.items():
            self.add_error(name if name in self.fields else None, problems)
