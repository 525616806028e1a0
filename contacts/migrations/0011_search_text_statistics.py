"""PostgreSQL keeps a ten times finer histogram of search_text: the contacts table's summary
line shows the planner's estimate of a large search's matches instead of counting them
(`contacts.selectors.table_count`), and with the default 100 buckets that estimate moves
in steps of 1 % of the table (90,000 at ten million contacts, for 1,500 matches as for
120,000). Nothing on SQLite."""

from django.db import migrations

TARGET = 1000


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE contacts_contact ALTER COLUMN search_text SET STATISTICS {TARGET}"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE contacts_contact ALTER COLUMN search_text SET STATISTICS -1"
        )


class Migration(migrations.Migration):
    dependencies = [("contacts", "0010_sqlite_search_index")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
