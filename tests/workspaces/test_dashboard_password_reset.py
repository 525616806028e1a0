"""Password reset by an expiring, single-use link, with Django's own views in Rapport's
pages; the mail goes through the configured mailer."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "tidal-orbit-lantern-42"
LINK = re.compile(r"http://testserver(/password-reset/[^/\s]+/[^/\s]+/)")


def ask(client: Client, email: str):
    return client.post(reverse("password_reset"), {"email": email})


def test_the_sign_in_page_offers_forgot_password(db):
    html = Client().get(reverse("login")).content.decode()
    assert f'<a href="{reverse("password_reset")}">Forgot password?</a>' in html


def test_a_member_resets_their_password_with_the_emailed_link(admin_user, agent):
    old_session = Client()
    old_session.force_login(admin_user)

    response = ask(Client(), "Admin@Acme.test")
    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["admin@acme.test"]
    assert sent.subject == "Reset your Rapport password"
    assert "for 3 hours" in sent.body
    path = LINK.search(sent.body).group(1)

    client = Client()
    form = client.get(path, follow=True)
    assert b"Choose a new password" in form.content
    set_password_url = form.redirect_chain[-1][0]
    weak = client.post(set_password_url, {"new_password1": "123", "new_password2": "123"})
    assert weak.status_code == 200
    assert b"This password is too short." in weak.content
    done = client.post(
        set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert done.status_code == 302
    assert done["Location"] == reverse("password_reset_complete")
    assert b"Your password is changed" in client.get(done["Location"]).content
    admin_user.refresh_from_db()
    assert admin_user.check_password(NEW_PASSWORD)
    # The old sessions end; the link works once.
    contacts = reverse("contacts:list", args=[agent.public_id])
    assert old_session.get(contacts).status_code == 302
    again = Client().get(path, follow=True)
    assert b"This reset link does not work" in again.content


def test_an_unknown_address_gets_the_same_answer_and_no_mail(db):
    response = ask(Client(), "nobody@acme.test")
    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []


def test_an_account_known_only_by_its_sign_in_name_gets_the_mail(db):
    UserFactory(username="ops@acme.test", email="")
    ask(Client(), "OPS@acme.test")
    assert [m.to for m in mail.outbox] == [["ops@acme.test"]]


def test_accounts_without_a_password_or_inactive_get_nothing(db):
    user = UserFactory(username="boot@acme.test")
    user.set_unusable_password()
    user.save()
    UserFactory(username="gone@acme.test", is_active=False)
    ask(Client(), "boot@acme.test")
    ask(Client(), "gone@acme.test")
    assert mail.outbox == []


def test_a_bad_address_is_refused_beside_the_field(db):
    response = ask(Client(), "not an email")
    assert response.status_code == 400
    assert b'id="id_email_error"' in response.content
    assert mail.outbox == []


def test_requests_are_throttled(admin_user, settings):
    settings.LOGIN_MAX_FAILURES = 2
    client = Client()
    for _ in range(2):
        assert ask(client, "admin@acme.test").status_code == 302
    refused = ask(client, "admin@acme.test")
    assert refused.status_code == 429
    assert b"Too many reset requests" in refused.content
    assert len(mail.outbox) == 2


def test_without_a_mail_server_in_production_the_page_says_so(admin_user, settings):
    settings.PASSWORD_RESET_BY_EMAIL = False
    page = Client().get(reverse("password_reset"))
    assert b"This server sends no email" in page.content
    assert b'name="email"' not in page.content
    assert ask(Client(), "admin@acme.test").status_code == 503
    assert mail.outbox == []


def test_a_forged_link_does_not_work(admin_user):
    page = Client().get(
        reverse("password_reset_confirm", kwargs={"uidb64": "MQ", "token": "abc-def"}), follow=True
    )
    assert b"This reset link does not work" in page.content
    assert get_user_model().objects.get(pk=admin_user.pk).check_password("correct horse battery")
