from django.apps import AppConfig


class TransfersConfig(AppConfig):
    """Import and export: a channel of its own, above contacts (files in, files out)."""

    name = "transfers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from transfers import erasure
        from transfers.bulk import services as bulk

        erasure.connect()
        bulk.connect()
