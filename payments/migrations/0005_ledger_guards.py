"""More ledger guards in the database (issue 12), on PostgreSQL only.

1. TRUNCATE of the journal transactions or ledger entries is refused. TRUNCATE fires no row
   triggers, so the append-only triggers of 0002 do not see it; a statement-level BEFORE TRUNCATE
   trigger does, also when the table is reached through TRUNCATE … CASCADE (of the ledger
   accounts, of the payments …). SettlementLine is not guarded: it is not append-only (a
   settlement carried forward deletes its lines, see payments.settlement._finish).
2. A journal transaction without a debit and a credit entry cannot commit: a deferred constraint
   trigger on the INSERT of its row looks for its entries at COMMIT. `ledger.post` writes the row
   then its entries in the same database transaction, so by COMMIT they are there; a row whose
   INSERT was rolled back to a savepoint (a key posted twice) queues no check. It complements the
   balance trigger of 0002, which fires on entries only and so never sees a transaction without
   any.

Both are ordinary (user) triggers: a superuser session with session_replication_role = replica
skips them, which is how the test suite's flush empties the database (tests/support/postgresql).
The application's database user is not a superuser, so the guards hold in production.
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION payments_ledger_no_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: TRUNCATE of % refused', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER payments_journaltransaction_no_truncate
    BEFORE TRUNCATE ON payments_journaltransaction
    FOR EACH STATEMENT EXECUTE FUNCTION payments_ledger_no_truncate();
CREATE TRIGGER payments_ledgerentry_no_truncate
    BEFORE TRUNCATE ON payments_ledgerentry
    FOR EACH STATEMENT EXECUTE FUNCTION payments_ledger_no_truncate();

CREATE OR REPLACE FUNCTION payments_journal_has_entries() RETURNS trigger AS $$
DECLARE
    debits integer;
    credits integer;
BEGIN
    SELECT COUNT(*) FILTER (WHERE side = 'D'), COUNT(*) FILTER (WHERE side = 'C')
      INTO debits, credits
      FROM payments_ledgerentry WHERE transaction_id = NEW.id;
    IF debits = 0 OR credits = 0 THEN
        RAISE EXCEPTION
            'journal transaction % (%) needs a debit and a credit entry (% debits, % credits)',
            NEW.id, NEW.key, debits, credits
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER payments_journaltransaction_has_entries
    AFTER INSERT ON payments_journaltransaction
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION payments_journal_has_entries();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS payments_journaltransaction_has_entries ON payments_journaltransaction;
DROP FUNCTION IF EXISTS payments_journal_has_entries();
DROP TRIGGER IF EXISTS payments_ledgerentry_no_truncate ON payments_ledgerentry;
DROP TRIGGER IF EXISTS payments_journaltransaction_no_truncate ON payments_journaltransaction;
DROP FUNCTION IF EXISTS payments_ledger_no_truncate();
"""


def _guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)


def _unguard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0004_provider_fees"),
    ]

    operations = [
        migrations.RunPython(_guard, _unguard),
    ]
