from __future__ import annotations

import pytest

from contacts.normalize import (
    FieldError,
    normalize_email,
    normalize_external_id,
    normalize_name,
    normalize_phone,
    normalize_stripe_id,
    normalize_tag,
)
from core.redaction import ERASED_EMAIL, ERASED_NAME, ERASED_PHONE, scrub_text


def test_email_is_trimmed_and_its_domain_lowercased_only():
    assert normalize_email("  Jane.Doe@Example.COM ") == "Jane.Doe@example.com"


@pytest.mark.parametrize("bad", ["jane", "jane@", "@example.com", "a@b@c.com", "jane doe@x.com"])
def test_invalid_emails_are_refused_with_the_value(bad):
    with pytest.raises(FieldError, match="is not a valid email address"):
        normalize_email(bad)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("06 12 34 56 78", "FR", "+33612345678"),
    ],
)
def test_phones_are_stored_as_e164_using_the_agent_region(raw, region, e164):
    assert normalize_phone(raw, region=region) == e164


@pytest.mark.parametrize("bad", ["12", "not a phone", "+1 555", "+999 1234567"])
def test_unparseable_phones_are_a_clear_error(bad):
    with pytest.raises(FieldError, match="phone number"):
        normalize_phone(bad, region="US")


def test_names_collapse_whitespace_and_refuse_control_characters():
    assert normalize_name("  Jane   Doe ") == "Jane Doe"
    with pytest.raises(FieldError, match="control characters"):
        normalize_name("Jane\x00Doe")
    with pytest.raises(FieldError, match="longer than 255"):
        normalize_name("x" * 256)


def test_external_ids_may_be_numbers_and_blank_means_none():
    assert normalize_external_id(123) == "123"
    assert normalize_external_id(123.0) == "123"
    assert normalize_external_id("  ") is None


def test_stripe_ids_must_look_like_customer_ids():
    assert normalize_stripe_id("cus_ABC123") == "cus_ABC123"
    with pytest.raises(FieldError, match="not a Stripe customer id"):
        normalize_stripe_id("sub_123")


def test_tags_refuse_commas_and_empty_names():
    assert normalize_tag("  very   important ") == "very important"
    with pytest.raises(FieldError, match="comma"):
        normalize_tag("a,b")
    with pytest.raises(FieldError, match="empty"):
        normalize_tag("   ")


def test_scrub_text_removes_every_written_form_of_the_person():
    text = (
        "Hi, I'm Jane Doe (jane.DOE@example.com). Call me at +1 (415) 555-2671 "
        "or 415.555.2671. Thanks, Jane. Order 123456 is unrelated."
    )
    scrubbed = scrub_text(text, name="Jane Doe", email="jane.doe@example.com", phone="+14155552671")
    assert "Jane" not in scrubbed
    assert "Doe" not in scrubbed
    assert "jane" not in scrubbed.lower()
    assert "555" not in scrubbed
    assert scrubbed.count(ERASED_PHONE) == 2
    assert ERASED_EMAIL in scrubbed
    assert ERASED_NAME in scrubbed
    assert "Order 123456 is unrelated." in scrubbed
