"""How erasure recognises a person's identifiers in text (core.redaction.Redactor)."""

from __future__ import annotations

from core.redaction import ERASED, ERASED_NAME, ERASED_PHONE, Identifiers, Redactor, scrub_text


def test_phones_are_recognised_in_every_usual_writing():
    redactor = Redactor(Identifiers(phones={"+14155559876", "+442079460958", "+4915112345678"}))
    written = [
        "(415) 555-9876",
        "415.555.9876",
        "415 555 9876",
        "4155559876",
        "+1 415 555 9876",
        "+1 (415) 555-9876",
        "1-415-555-9876",
        "001 415 555 9876",
        "+14155559876",
        "020 7946 0958",
        "+44 20 7946 0958",
        "+44 (0)20 7946 0958",
        "0044 20 7946 0958",
        "0151 12345678",
        "+49 151 1234 5678",
    ]
    for text in written:
        assert redactor.scrub(f"call {text} today") == f"call {ERASED_PHONE} today", text
    for other in ("415 555 987", "24155559876", "order 41555598761", "212 555 9876"):
        assert redactor.scrub(other) == other


def test_names_match_whole_words_and_everyday_words_only_capitalised():
    redactor = Redactor(Identifiers(names={"Will Ann Harrowgate"}, values={"Lighthouse Keeper"}))
    text = (
        "Will said: I will ask Annabel. ann HARROWGATE, will_ann_harrowgate.csv, "
        "a lighthouse keeper"
    )
    assert redactor.scrub(text) == (
        f"{ERASED_NAME} said: I will ask Annabel. {ERASED_NAME} {ERASED_NAME}, "
        f"{ERASED_NAME}.csv, a {ERASED}"
    )
    # Beyond the person's own records only what names them on its own counts.
    assert redactor.names_person("will_ann_harrowgate.csv")
    assert not redactor.names_person("Ann Harrowgate, a lighthouse keeper")
    assert redactor.scrub("Ann, a lighthouse keeper", keys_only=True) == "Ann, a lighthouse keeper"


def test_emails_and_ids_match_whatever_the_case_but_only_whole():
    redactor = Redactor(Identifiers(emails={"zeb@example.org"}, ids={"cus_ZQ1", "zq-7"}))
    text = "ZEB@Example.ORG, xzeb@example.org, cus_zq1, cus_ZQ12, zq-7."
    assert redactor.scrub(text) == (
        f"[erased email], xzeb@example.org, {ERASED}, cus_ZQ12, {ERASED}."
    )


def test_name_words_shorter_than_three_letters_are_left():
    assert scrub_text("Al and Bo met Al Bo", name="Al Bo") == f"Al and Bo met {ERASED_NAME}"
