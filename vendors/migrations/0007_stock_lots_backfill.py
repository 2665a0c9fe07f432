"""Cart stock from before lots: one lot per Stock row with units, expiring after the default shelf
life, so that every row's quantity is the sum of its lots (vendors.models.StockLot)."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import migrations
from django.utils import timezone


def backfill(apps, schema_editor):
    Stock = apps.get_model("vendors", "Stock")
    StockLot = apps.get_model("vendors", "StockLot")
    korea = ZoneInfo(settings.TIME_ZONE)
    expires_on = timezone.localdate(timezone=korea) + timedelta(
        days=settings.STOCK_DEFAULT_SHELF_DAYS
    )
    sell_by = datetime.combine(expires_on + timedelta(days=1), time.min, tzinfo=korea)
    rows = Stock.objects.filter(quantity__gt=0).values_list(
        "vendor_id", "product_id", "quantity", "updated_at"
    )
    batch = []
    for vendor_id, product_id, quantity, updated_at in rows.iterator(chunk_size=2000):
        batch.append(
            StockLot(
                vendor_id=vendor_id,
                product_id=product_id,
                quantity_loaded=quantity,
                quantity=quantity,
                expires_on=expires_on,
                sell_by=sell_by,
                loaded_at=updated_at,
            )
        )
        if len(batch) >= 2000:
            StockLot.objects.bulk_create(batch)
            batch = []
    StockLot.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [("vendors", "0006_stock_lots")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
