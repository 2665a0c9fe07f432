"""Subscription.card_id (a plain id) becomes Subscription.card, a ForeignKey to payments.SavedCard,
keeping the column `card_id`: the state swaps the field, the database only gains the foreign key
constraint and its index. Ids that name no card (none should exist: nothing wrote them but the
service, which now checks) are cleared first, so the constraint can be added. Also
Subscription.pause_reason (why the platform paused it)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0009_discrepancy_delivery_incomplete"),
        ("subscriptions", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "UPDATE subscriptions_subscription SET card_id = NULL "
                    "WHERE card_id IS NOT NULL "
                    "AND card_id NOT IN (SELECT id FROM payments_savedcard)",
                    reverse_sql=migrations.RunSQL.noop,
                ),
                # The same column, now a foreign key: the schema editor adds the constraint and
                # the index (PostgreSQL), or rebuilds the table (SQLite, the embedded default).
                migrations.AlterField(
                    model_name="subscription",
                    name="card_id",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        db_column="card_id",
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="payments.savedcard",
                    ),
                ),
            ],
            state_operations=[
                migrations.RemoveField(model_name="subscription", name="card_id"),
                migrations.AddField(
                    model_name="subscription",
                    name="card",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="subscriptions",
                        to="payments.savedcard",
                        verbose_name="saved card",
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="subscription",
            name="pause_reason",
            field=models.CharField(blank=True, max_length=200, verbose_name="why paused"),
        ),
    ]
