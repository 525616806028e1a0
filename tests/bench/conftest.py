"""The benchmark's sections under test write their generated CSV to a folder of the test's
own: never to var/, whose files a benchmark running beside the tests reads."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _bench_files_of_the_tests_own(monkeypatch, tmp_path):
    monkeypatch.setattr("bench.imports.FILE", tmp_path / "bench-import.csv")
    monkeypatch.setattr("bench.load.IMPORT_FILE", tmp_path / "bench-load-import.csv")
    monkeypatch.setattr("bench.webhooks.IMPORT_FILE", tmp_path / "bench-webhooks-import.csv")
