from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
validate_attribute_key = RegexValidator(
    KEY_PATTERN,
    "Keys start with a lowercase letter, then up to 62 lowercase letters, digits or underscores.",
)


class AttributeType(models.TextChoices):
    TEXT = "text", "Text"
    NUMBER = "number", "Number"
    BOOLEAN = "boolean", "Yes / no"
    DATE = "date", "Date"
    DATETIME = "datetime", "Date and time"
    SELECT = "select", "Select (one of a list)"
    URL = "url", "URL"


class AttributeDefinition(models.Model):
    agent = models.ForeignKey(
        "workspaces.Agent",
        on_delete=models.CASCADE,
        related_name="attribute_definitions",
        db_index=False,
    )
    key = models.CharField(max_length=63, validators=[validate_attribute_key])
    label = models.CharField(max_length=120)
    type = models.CharField(max_length=16, choices=AttributeType.choices)
    description = models.TextField(blank=True, default="")
    options = models.JSONField(default=list, blank=True)
    secure = models.BooleanField(
        default=False,
        help_text="Written only by trusted channels: signed JWT, API, admins and imports.",
    )
    archived = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "key"], name="uniq_attribute_key"),
        ]

    def __str__(self) -> str:
        return self.key
