"""EMAIL_URL: one variable configures the mailer, and a value that cannot be read stops
the server at start-up instead of losing mail later."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings import parse_email_url

SMTP = "django.core.mail.backends.smtp.EmailBackend"


@pytest.mark.parametrize(
    ("url", "mailer"),
    [
        (
            "smtp://user:pa%40ss@mail.example.com:2525",
            {"BACKEND": SMTP, "OPTIONS": {"host": "mail.example.com", "port": 2525,
             "username": "user", "password": "pa@ss", "use_tls": False, "use_ssl": False,
             "timeout": 10}},
        ),
        (
            "smtp+tls://apikey:s3cret@smtp.sendgrid.net",
            {"BACKEND": SMTP, "OPTIONS": {"host": "smtp.sendgrid.net", "username": "apikey",
             "password": "s3cret", "use_tls": True, "use_ssl": False, "timeout": 10}},
        ),
        (
            "SMTP+SSL://mail.example.com:465/",
            {"BACKEND": SMTP, "OPTIONS": {"host": "mail.example.com", "port": 465,
             "use_tls": False, "use_ssl": True, "timeout": 10}},
        ),
        ("console://", {"BACKEND": "django.core.mail.backends.console.EmailBackend"}),
    ],
)  # fmt: skip
def test_each_scheme_becomes_a_mailer(url, mailer):
    assert parse_email_url(url) == mailer


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("smtps://mail.example.com", "unknown scheme 'smtps'"),
        ("mail.example.com", "unknown scheme ''"),
        ("smtp://", "the SMTP host is missing"),
        ("smtp://mail.example.com:99999", "the port is not a number"),
        ("smtp://mail.example.com:25?tls=1", "only scheme://user:password@host:port"),
        ("smtp://mail.example.com/inbox", "only scheme://user:password@host:port"),
    ],
)
def test_what_cannot_be_read_stops_the_start(url, message):
    with pytest.raises(ImproperlyConfigured) as refused:
        parse_email_url(url)
    assert message in str(refused.value)


def test_the_timeout_is_passed_on():
    assert parse_email_url("smtp://h", timeout=3)["OPTIONS"]["timeout"] == 3


def test_the_mailer_sends_through_smtp_with_the_parsed_options(settings, monkeypatch):
    """The parsed options reach Django's SMTP backend (a fake server records them)."""
    import smtplib

    from django.core import mail
    from django.core.mail import EmailMessage

    seen = {}

    class FakeSMTP:
        def __init__(self, host, port, **kwargs):
            seen.update(host=host, port=port, timeout=kwargs.get("timeout"))

        def ehlo(self):
            return 250, b"ok"

        def starttls(self, **kwargs):
            seen["starttls"] = True

        def login(self, user, password):
            seen["login"] = (user, password)

        def sendmail(self, from_addr, to_addrs, msg, **kwargs):
            seen["to"] = to_addrs
            return {}

        def quit(self):
            pass

        def close(self):
            pass

    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    settings.MAILERS = {"default": parse_email_url("smtp+tls://me:pw@mail.example.com:587")}
    assert mail.mailers.default.host == "mail.example.com"
    EmailMessage("Hi", "Body", to=["ada@example.com"]).send(using="default")
    assert seen == {
        "host": "mail.example.com",
        "port": 587,
        "timeout": 10,
        "starttls": True,
        "login": ("me", "pw"),
        "to": ["ada@example.com"],
    }


def test_a_production_server_without_email_url_refuses_to_send(settings):
    from django.core.mail import EmailMessage

    from workspaces.mail import EmailNotConfigured

    settings.MAILERS = {"default": {"BACKEND": "workspaces.mail.NoMailBackend"}}
    with pytest.raises(EmailNotConfigured, match="set EMAIL_URL"):
        EmailMessage("Hi", "Body", to=["ada@example.com"]).send(using="default")
