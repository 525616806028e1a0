from django.contrib.postgres.operations import BtreeGinExtension, TrigramExtension
from django.db import migrations

from config.migration_ops import PostgresOnlySQL
from contacts.search_index import TRIGRAM_INDEX_NAME, TRIGRAM_INDEX_SQL


class Migration(migrations.Migration):
    dependencies = [("contacts", "0001_initial")]

    operations = [
        TrigramExtension(),
        BtreeGinExtension(),
        PostgresOnlySQL(sql=TRIGRAM_INDEX_SQL, reverse_sql=f"DROP INDEX IF EXISTS {TRIGRAM_INDEX_NAME}"),
    ]
