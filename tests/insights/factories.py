"""Rows of the record and summaries, for the pages and the admin; the record is otherwise written by
the real sales (tests/insights/test_record.py)."""

from datetime import timedelta

import factory
import h3
from django.utils import timezone
from factory.django import DjangoModelFactory

from insights.models import Channel, MissKind, MissRecord, SaleKind, SaleRecord, SalesCube
from tests.factories import MAPO

CELL = h3.latlng_to_cell(*MAPO, 9)


class SaleRecordFactory(DjangoModelFactory):
    class Meta:
        model = SaleRecord

    vendor_id = 1
    order_id = factory.Sequence(lambda n: 1_000_000 + n)
    line_id = factory.Sequence(lambda n: 1_000_000 + n)
    product_id = 1
    kind = SaleKind.SALE
    channel = Channel.ONLINE
    fulfilment = "meet"
    buyer = factory.Sequence(lambda n: n + 1)
    units = 1
    amount = 1200
    occurred_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    day = factory.LazyAttribute(lambda o: timezone.localtime(o.occurred_at).date())
    weekday = factory.LazyAttribute(lambda o: o.day.weekday())
    hour = factory.LazyAttribute(lambda o: timezone.localtime(o.occurred_at).hour)
    cell = CELL


class MissRecordFactory(DjangoModelFactory):
    class Meta:
        model = MissRecord

    kind = MissKind.NONE_NEAR
    product_id = 1
    cell = CELL
    occurred_at = factory.LazyFunction(timezone.now)
    day = factory.LazyAttribute(lambda o: timezone.localtime(o.occurred_at).date())
    weekday = factory.LazyAttribute(lambda o: o.day.weekday())
    hour = factory.LazyAttribute(lambda o: timezone.localtime(o.occurred_at).hour)
    asker = factory.Sequence(lambda n: f"asker{n}")


class SalesCubeFactory(DjangoModelFactory):
    class Meta:
        model = SalesCube

    vendor_id = 1
    day = factory.LazyFunction(lambda: timezone.localdate())
    weekday = factory.LazyAttribute(lambda o: o.day.weekday())
    hour = 12
    product_id = 1
    cell = CELL
    channel = Channel.ONLINE
    units = 2
    amount = 2400
    sales = 1
