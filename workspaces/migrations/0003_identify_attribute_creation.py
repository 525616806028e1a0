"""Attribute creation from identify is decided per kind of payload: signed payloads create
new attributes by default, unsigned custom_data keeps the agent's previous choice."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workspaces", "0002_user_settings"),
    ]

    operations = [
        migrations.RenameField(
            model_name="agent",
            old_name="create_attributes_from_identify",
            new_name="create_attributes_from_unsigned",
        ),
        migrations.AlterField(
            model_name="agent",
            name="create_attributes_from_unsigned",
            field=models.BooleanField(
                default=False,
                help_text="Unknown keys in unsigned custom_data become new attributes (type inferred).",
            ),
        ),
        migrations.AddField(
            model_name="agent",
            name="create_attributes_from_signed",
            field=models.BooleanField(
                default=True,
                help_text="Unknown keys in a signed identify become new attributes (type inferred).",
            ),
        ),
    ]
