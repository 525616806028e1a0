"""The WSGI module leaves what it loaded out of the garbage collector's full passes."""

from __future__ import annotations

import subprocess
import sys


def test_loading_the_wsgi_application_freezes_what_it_loaded():
    probe = (
        "import gc; before = gc.get_freeze_count(); import config.wsgi; "
        "print(before, gc.get_freeze_count(), len(gc.get_objects(generation=2)))"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    before, frozen, left = map(int, result.stdout.split())

    assert before == 0
    assert frozen > 50_000  # Django and the apps
    assert left < frozen / 10  # what a full collection still walks
