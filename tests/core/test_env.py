"""Reading numbers from the environment: a bad value stops the start with its name."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_float


@pytest.mark.parametrize(("raw", "expected"), [(None, 0.5), ("", 0.5), ("0", 0.0), ("1.25", 1.25)])
def test_a_number_or_the_default(monkeypatch, raw, expected):
    if raw is None:
        monkeypatch.delenv("BULK_PAUSE_RATIO", raising=False)
    else:
        monkeypatch.setenv("BULK_PAUSE_RATIO", raw)
    assert env_float("BULK_PAUSE_RATIO", 0.5, minimum=0) == expected


@pytest.mark.parametrize("raw", ["half", "nan", "inf", "-0.1"])
def test_anything_else_is_refused_by_name(monkeypatch, raw):
    monkeypatch.setenv("BULK_PAUSE_RATIO", raw)
    with pytest.raises(ImproperlyConfigured, match="BULK_PAUSE_RATIO"):
        env_float("BULK_PAUSE_RATIO", 0.5, minimum=0)
