"""The error pages people meet in the dashboard are Rapport's own: they say what happened
and lead back to the contacts."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.views.defaults import server_error

from tests.helpers import agent_url

pytestmark = pytest.mark.django_db


def back_link() -> str:
    return f'<a class="btn btn-primary" href="{reverse("home")}">Back to your contacts</a>'


@pytest.mark.parametrize("name", ["attributes:schema", "transfers:import"])
def test_a_staff_member_on_an_admin_page_gets_the_branded_403(staff_client, agent, name):
    response = staff_client.get(agent_url(name, agent))
    html = response.content.decode()
    assert response.status_code == 403
    assert "<h1>You can't do that here</h1>" in html
    assert "Only workspace admins can do this." in html
    assert back_link() in html
    assert "<title>Not allowed" in html


def test_an_unknown_address_gets_the_branded_404(staff_client):
    response = staff_client.get("/no/such/page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "<h1>Nothing here</h1>" in html
    assert back_link() in html


def test_a_server_error_gets_a_page_that_needs_nothing_but_the_stylesheet():
    response = server_error(RequestFactory().get("/a/anything/"))
    html = response.content.decode()
    assert response.status_code == 500
    assert "<h1>Something went wrong on our side</h1>" in html
    assert '<link rel="stylesheet" href="/static/css/rapport.css">' in html
    assert '<a class="btn btn-primary" href="/">Back to Rapport</a>' in html
