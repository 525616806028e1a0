"""The SQLite search index (contacts.search_index): an FTS5 trigram table over search_text
kept by triggers. Nothing on PostgreSQL, whose trigram index came with 0002."""

from django.db import migrations

from contacts.search_index import fts_install, fts_uninstall


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        fts_install(schema_editor.connection)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        fts_uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("contacts", "0009_self_reported_lookups")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
