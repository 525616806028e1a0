from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    name = "workspaces"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported for their side effects: the OpenAPI extension, and the signal that
        # stamps every new session with its user's session epoch.
        from workspaces import api_schema, sessions  # noqa: F401
