"""Storage tuned for the ping stream, per database.

PostgreSQL: ping history gets a BRIN index on received_at (append-only, time-ordered: tiny and
nearly free to maintain; the purge reads it), and vendor positions leave 30% of each page free so
the every-ping UPDATE can be a HOT update. Other databases (SQLite in the demo): a B-tree index.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX ping_received_brin ON tracking_ping USING brin (received_at)"
        )
        schema_editor.execute("ALTER TABLE tracking_vendorposition SET (fillfactor = 70)")
    else:
        schema_editor.execute("CREATE INDEX ping_received_idx ON tracking_ping (received_at)")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS ping_received_brin")
        schema_editor.execute("ALTER TABLE tracking_vendorposition RESET (fillfactor)")
    else:
        schema_editor.execute("DROP INDEX IF EXISTS ping_received_idx")


class Migration(migrations.Migration):
    dependencies = [("tracking", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
