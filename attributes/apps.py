from django.apps import AppConfig


class AttributesConfig(AppConfig):
    name = "attributes"
    default_auto_field = "django.db.models.BigAutoField"
