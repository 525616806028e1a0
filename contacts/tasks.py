"""Background work of the contacts app (run by `manage.py db_worker`)."""

from __future__ import annotations

from django.tasks import task

from contacts.imports.engine import import_run


@task
def run_import(import_id: str) -> str:
    """Run or resume one import job (see contacts.imports.engine)."""
    return import_run(import_id)
