from django.apps import AppConfig


class TransfersConfig(AppConfig):
    """Import, export and bulk actions: jobs over many contacts, above contacts."""

    name = "transfers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from transfers import erasure, metrics
        from transfers.bulk import services as bulk
        from transfers.exports import sqlite as sqlite_exports

        connection_created.connect(
            sqlite_exports.register_functions, dispatch_uid="transfers.exports.sqlite"
        )

        erasure.connect()
        bulk.connect()
        metrics.connect()
