from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Realistic demo and benchmark data (`manage.py seed_demo`): at the top, it uses
    every app below it."""

    name = "demo"
    default_auto_field = "django.db.models.BigAutoField"
