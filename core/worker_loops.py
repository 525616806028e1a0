"""Loops the task worker (`manage.py worker`) runs beside its tasks, each on a thread of
its own. An app above registers one in its `AppConfig.ready` (the webhooks relay), so the
worker command, which lives below it, starts it without importing it.

A loop is `loop(stop: threading.Event)`: it runs until `stop` is set, keeps going through
its own errors, and closes its database connections when it ends."""

from __future__ import annotations

import threading
from collections.abc import Callable

Loop = Callable[[threading.Event], None]
_loops: dict[str, Loop] = {}


def register(name: str, loop: Loop) -> None:
    _loops[name] = loop


def registered() -> dict[str, Loop]:
    return dict(_loops)
