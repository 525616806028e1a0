"""Times in the dashboard are in the viewer's zone: the one they chose on their account
page, else their browser's (the `tz` cookie), else UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import ContactFactory
from tests.helpers import contact_url

pytestmark = pytest.mark.django_db

# 12:00 UTC in January: 21:00 in Tokyo, 07:00 in New York (standard time).
NOON_UTC = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def person(agent):
    return ContactFactory(agent=agent, name="Ada Lovelace", created_at=NOON_UTC)


def created_title(client: Client, contact) -> str:
    """When the contact page says the contact was created, to the minute."""
    response = client.get(contact_url("detail", contact))
    assert response.status_code == 200
    return re.search(r'<dt>Created</dt><dd title="([^"]*)">', response.content.decode()).group(1)


def chosen_zone(user) -> str:
    """The zone the member saved ("" when none)."""
    found = type(user).objects.filter(pk=user.pk).values_list("rapport_settings__time_zone")
    return found.get()[0] or ""


def test_the_browser_zone_in_the_cookie_is_used_and_an_unknown_one_falls_back_to_utc(
    staff_client, person
):
    staff_client.cookies["tz"] = "Asia/Tokyo"
    assert created_title(staff_client, person) == "2024-01-15 21:00 JST"
    # The zone is the request's own: the next one, with a zone no one has, is in UTC.
    staff_client.cookies["tz"] = "Mars/Olympus_Mons"
    assert created_title(staff_client, person) == "2024-01-15 12:00 UTC"
    del staff_client.cookies["tz"]
    assert created_title(staff_client, person) == "2024-01-15 12:00 UTC"


def test_a_chosen_zone_wins_over_the_browser_and_survives_signing_in_again(
    staff_client, staff_user, person
):
    staff_client.cookies["tz"] = "Asia/Tokyo"
    response = staff_client.post(reverse("account"), {"time_zone": "America/New_York"})
    assert response.status_code == 302
    assert response.url == reverse("account")
    assert chosen_zone(staff_user) == "America/New_York"
    assert created_title(staff_client, person) == "2024-01-15 07:00 EST"
    page = staff_client.get(reverse("account")).content.decode()
    assert '<option value="America/New_York" selected>' in page

    # A new session, in a browser still in Tokyo: signing in brings the chosen zone back.
    browser = Client()
    browser.cookies["tz"] = "Asia/Tokyo"
    signed_in = browser.post(
        reverse("login"), {"username": staff_user.username, "password": "correct horse battery"}
    )
    assert signed_in.status_code == 302
    assert created_title(browser, person) == "2024-01-15 07:00 EST"

    # Back to following the browser.
    assert browser.post(reverse("account"), {"time_zone": ""}).status_code == 302
    assert created_title(browser, person) == "2024-01-15 21:00 JST"


def test_saving_a_zone_that_does_not_exist_is_refused(staff_client, staff_user):
    response = staff_client.post(reverse("account"), {"time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 400
    assert 'class="field-error"' in response.content.decode()
    assert chosen_zone(staff_user) == ""
