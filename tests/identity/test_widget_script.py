"""The widget script as a file: its size budget and its strings (the panel itself is tested
in Chromium, test_browser_widget_panel.py)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

from django.conf import settings

WIDGET = Path(settings.BASE_DIR) / "static" / "widget" / "rapport.js"


def test_the_widget_script_stays_under_20_kb_gzipped():
    size = len(gzip.compress(WIDGET.read_bytes(), compresslevel=9))
    assert size <= 20 * 1024, f"rapport.js is {size} bytes gzipped; the budget is 20 KB"


def test_the_panel_strings_have_every_key_in_every_language():
    source = WIDGET.read_text(encoding="utf-8")
    table = source.split("var STRINGS = ", 1)[1].split("};", 1)[0] + "}"
    # The table is plain JSON but for unquoted keys and trailing commas.
    as_json = re.sub(r"(\w+):\s", r'"\1": ', table)
    as_json = re.sub(r",(\s*[}\]])", r"\1", as_json)
    strings = json.loads(as_json)
    assert set(strings) >= {"en", "fr"}
    for code, texts in strings.items():
        assert set(texts) == set(strings["en"]), code
