from django.apps import AppConfig


class TransfersConfig(AppConfig):
    """Import, export and bulk actions: jobs over many contacts, above contacts."""

    name = "transfers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from transfers import erasure, metrics
        from transfers.bulk import services as bulk

        erasure.connect()
        bulk.connect()
        metrics.connect()
