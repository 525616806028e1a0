from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Push events to API clients; sits above every app whose changes it reports."""

    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from webhooks import hooks

        hooks.connect()
