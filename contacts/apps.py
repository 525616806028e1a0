from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ContactsConfig(AppConfig):
    name = "contacts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from contacts import hooks

        hooks.connect()
        post_migrate.connect(_search_index_after_migrate, sender=self)


def _search_index_after_migrate(using: str, **kwargs) -> None:
    # A later migration that remakes the contacts table on SQLite (how SQLite alters a
    # table) drops the search index's triggers and renumbers the rows: make them again.
    from django.db import connections

    from contacts.search_index import fts_install

    fts_install(connections[using])
