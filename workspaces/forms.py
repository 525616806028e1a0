"""Forms of the agent settings page: they validate input; the services write."""

from __future__ import annotations

import phonenumbers
from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import PasswordResetForm
from django.db.models import Q

from workspaces.invitations import split_name
from workspaces.models import Agent, Membership
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


# --- Members and invitations ------------------------------------------------------------------

ROLE_HELP = (
    "Staff work with contacts and the inbox. Admins can also import, edit attributes and "
    "settings, manage API keys and members, and erase contacts."
)


class InviteForm(forms.Form):
    email = forms.EmailField(
        max_length=254,
        label="Email",
        widget=forms.EmailInput(attrs={"autocomplete": "off", "autocapitalize": "off"}),
    )
    role = forms.ChoiceField(
        choices=Membership.Role.choices, initial=Membership.Role.STAFF, help_text=ROLE_HELP
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class NewAccountForm(forms.Form):
    """The invited person's name and password, checked by Django's password validators."""

    name = forms.CharField(
        max_length=150,
        label="Your name",
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
        help_text="How your team sees you in Rapport.",
    )
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not only digits, not a common password, not "
        "like your name or email.",
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, email: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Enter your name.")
        return name

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password1")
        again = cleaned.get("password2")
        if password and again and password != again:
            self.add_error("password2", "The two passwords are different.")
        if password:
            first, last = split_name(cleaned.get("name") or "")
            someone = get_user_model()(
                username=self.email, email=self.email, first_name=first, last_name=last
            )
            try:
                password_validation.validate_password(password, someone)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class SignInToAcceptForm(forms.Form):
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class MemberPasswordResetForm(PasswordResetForm):
    """Django's reset form, also finding accounts by the email they sign in with (their
    user name), since that is the address a member knows."""

    def get_users(self, email: str):
        email = email.strip()
        found = get_user_model()._default_manager.filter(
            Q(email__iexact=email) | Q(username__iexact=email), is_active=True
        )
        for user in found:
            if not user.has_usable_password():
                continue
            # The mail goes to the address that was typed, as the account knows it.
            user.email = user.email if user.email.lower() == email.lower() else user.username
            yield user
