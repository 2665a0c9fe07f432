"""The public cell's hysteresis: a cell waiting to be published, and when it may be."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0002_storage"),
    ]

    operations = [
        migrations.AddField(
            model_name="vendorposition",
            name="pending_cell",
            field=models.CharField(blank=True, default="", max_length=16),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="vendorposition",
            name="pending_due_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
