"""Forms of the agent settings page: they validate input; the services write."""

from __future__ import annotations

import phonenumbers
from django import forms

from workspaces.models import Agent
from workspaces.timezones import known_zones


def phone_region_choices() -> list[tuple[str, str]]:
    return [
        (region, f"{region} (+{phonenumbers.country_code_for_region(region)})")
        for region in sorted(phonenumbers.SUPPORTED_REGIONS)
    ]


class AgentSettingsForm(forms.Form):
    name = forms.CharField(max_length=120, strip=True)
    default_phone_region = forms.ChoiceField(
        choices=phone_region_choices,
        help_text="Assumed for phone numbers typed without a country code (+…).",
    )

    def __init__(self, *args, agent: Agent, **kwargs) -> None:
        kwargs.setdefault(
            "initial", {"name": agent.name, "default_phone_region": agent.default_phone_region}
        )
        super().__init__(*args, **kwargs)
        self.agent = agent

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Give the agent a name.")
        taken = (
            Agent.objects.filter(workspace_id=self.agent.workspace_id, name=name)
            .exclude(pk=self.agent.pk)
            .exists()
        )
        if taken:
            raise forms.ValidationError("Another agent of this workspace has this name.")
        return name


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=80,
        strip=True,
        help_text="What uses it, e.g. “Billing sync” — to know which key to revoke later.",
    )


def time_zone_choices() -> list[tuple[str, str]]:
    return [("", "Follow my browser")] + [(z, z.replace("_", " ")) for z in sorted(known_zones())]


class AccountForm(forms.Form):
    time_zone = forms.ChoiceField(
        choices=time_zone_choices,
        required=False,
        label="Time zone",
        help_text="Times on every page are shown in this zone.",
    )
