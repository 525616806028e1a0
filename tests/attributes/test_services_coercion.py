from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from attributes.coercion import AttributeValueError, coerce_value, display_value, infer_type


@pytest.mark.parametrize(
    ("type_", "raw", "stored"),
    [
        ("text", "  hello  ", "hello"),
        ("text", 42, "42"),
        ("number", "42", 42),
        ("number", " 3.50 ", 3.5),
        ("number", 7, 7),
        ("number", 2.0, 2),
        ("number", "-0.25", -0.25),
        ("number", "1e3", 1000),
        ("number", Decimal("19.99"), 19.99),
        ("boolean", "yes", True),
        ("boolean", "TRUE", True),
        ("boolean", "1", True),
        ("boolean", "no", False),
        ("boolean", "off", False),
        ("boolean", 0, False),
        ("boolean", True, True),
        ("date", "2024-03-31", "2024-03-31"),
        ("date", dt.date(2024, 1, 2), "2024-01-02"),
        ("date", "2024-03-31T23:10:00Z", "2024-03-31"),
        ("datetime", "2024-03-31T14:30:00Z", "2024-03-31T14:30:00Z"),
        ("datetime", "2024-03-31T16:30:00+02:00", "2024-03-31T14:30:00Z"),
        ("datetime", "2024-03-31 14:30", "2024-03-31T14:30:00Z"),
        ("datetime", 1711895400, "2024-03-31T14:30:00Z"),
        ("select", "pro", "Pro"),
        ("url", "https://example.com/a?b=c", "https://example.com/a?b=c"),
    ],
)
def test_it_coerces_good_values(type_, raw, stored):
    value = coerce_value(type_, raw, key="field", options=["Free", "Pro"])
    assert value == stored
    assert type(value) is type(stored)


@pytest.mark.parametrize(
    ("type_", "raw", "reason"),
    [
        ("text", {"a": 1}, "a text value must be a string"),
        ("text", "x" * 10_001, "longer than 10000 characters"),
        ("number", "forty-two", "not a number"),
        ("number", "1,5", "not a number"),
        ("number", True, "true/false is not a number"),
        ("number", float("nan"), "the number must be finite"),
        ("number", "1e20", "more than 15 digits"),
        ("boolean", "maybe", "use true/false, yes/no or 1/0"),
        ("boolean", 2, "use true/false, yes/no or 1/0"),
        ("date", "31/03/2024", "ISO 8601 date"),
        ("date", "2024-02-30", "ISO 8601 date"),
        ("datetime", "yesterday", "ISO 8601"),
        ("datetime", -5, "out of range"),
        ("select", "Gold", "not one of the options (Free, Pro)"),
        ("url", "example.com", "not an absolute http(s) URL"),
        ("url", "javascript:alert(1)", "not an absolute http(s) URL"),
    ],
)
def test_it_rejects_bad_values_naming_attribute_type_and_value(type_, raw, reason):
    with pytest.raises(AttributeValueError) as excinfo:
        coerce_value(type_, raw, key="plan_x", options=["Free", "Pro"])
    message = str(excinfo.value)
    assert message.startswith("plan_x: ")
    assert reason in message
    assert f"expected {type_}" in message
    assert excinfo.value.key == "plan_x"
    assert excinfo.value.type == type_


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_means_no_value_for_every_type(blank):
    for type_ in ("text", "number", "boolean", "date", "datetime", "select", "url"):
        assert coerce_value(type_, blank, key="k", options=["A"]) is None


def test_datetimes_are_stored_with_one_width_so_they_sort_as_text():
    early = coerce_value("datetime", "2024-01-01T09:00:00.123456+00:00", key="k")
    late = coerce_value("datetime", "2024-01-01T10:00:00Z", key="k")
    assert early == "2024-01-01T09:00:00Z"
    assert early < late


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["yes", "no", "Yes"], "boolean"),
        (["1", "2", "3.5"], "number"),
        (["1", "0"], "number"),
        (["2024-01-01", "2023-12-31"], "date"),
        (["2024-01-01T10:00:00Z"], "datetime"),
        (["https://a.example", "http://b.example/x"], "url"),
        (["+14155550123"], "text"),
        (["Paris", "2"], "text"),
        ([], "text"),
        ([None, ""], "text"),
        ([True, False], "boolean"),
        ([3, 4.5], "number"),
    ],
)
def test_it_infers_the_narrowest_type_fitting_every_value(values, expected):
    assert infer_type(values) == expected


def test_display_value_is_human():
    assert display_value("boolean", True) == "Yes"
    assert display_value("datetime", "2024-01-01T10:00:00Z") == "2024-01-01 10:00:00 UTC"
    assert display_value("number", None) == ""
