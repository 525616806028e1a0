"""The one way Rapport writes a moment in JSON, CSV and exports: ISO 8601, UTC as `Z`."""

from __future__ import annotations

from datetime import datetime


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
