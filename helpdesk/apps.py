from django.apps import AppConfig


class HelpdeskConfig(AppConfig):
    name = "helpdesk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from contacts import panels, signals
        from helpdesk import erasure, hooks
        from identity.signals import visitor_history_moving

        uid = "helpdesk"
        signals.contact_merging.connect(hooks.conversations_follow_merge, dispatch_uid=uid)
        signals.contact_erasing.connect(erasure.conversations_anonymize, dispatch_uid=uid)
        signals.contact_data_requested.connect(hooks.conversations_export, dispatch_uid=uid)
        visitor_history_moving.connect(hooks.session_conversations_move, dispatch_uid=uid)
        panels.register(hooks.conversations_panel)
