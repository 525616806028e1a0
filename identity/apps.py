from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "identity"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from contacts import signals
        from identity import hooks

        signals.contact_merging.connect(hooks.sessions_follow_merge, dispatch_uid="identity")
        signals.contact_forgetting.connect(hooks.sessions_forget, dispatch_uid="identity")
        signals.contact_data_requested.connect(hooks.sessions_export, dispatch_uid="identity")
