"""The PostgreSQL backend of the test suite (o2o.test_settings): Django's, whose flush may empty
the ledger tables.

Migration payments 0005 refuses TRUNCATE of the ledger tables, and Django's flush, which every
transactional test (transaction=True, the live server) ends with, is one TRUNCATE. The flush here
runs it with `session_replication_role = replica`, set LOCAL to the flush's own transaction, so
the guard's triggers (ordinary user triggers) do not fire for it and for nothing else. Setting
that parameter takes a superuser, as the test database's user is; the application's user in
production is not one, and production runs Django's backend, so the guard holds there.

A backend rather than a `flush` command of a test app: a test with `available_apps` (the payments
tests' `over_http`) flushes while the app registry is narrowed to those apps, so Django's command
lookup then finds django.core's flush, not a test app's.
"""

from django.db import transaction
from django.db.backends.postgresql import base, operations


class DatabaseOperations(operations.DatabaseOperations):
    def execute_sql_flush(self, sql_list):
        connection = self.connection
        with transaction.atomic(using=connection.alias):
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('session_replication_role')")
                (before,) = cursor.fetchone()
                cursor.execute("SET LOCAL session_replication_role = replica")
            super().execute_sql_flush(sql_list)
            with connection.cursor() as cursor:
                # Back as it was before COMMIT too, in case this runs inside a larger transaction.
                cursor.execute("SELECT set_config('session_replication_role', %s, true)", [before])


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
