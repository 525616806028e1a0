from django.apps import AppConfig


class HelpdeskConfig(AppConfig):
    name = "helpdesk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from helpdesk import hooks

        hooks.connect()
