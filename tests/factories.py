"""factory_boy factories for every model. Vendors and stock go through the services where the
service is what gives them their invariants (cells, slugs)."""

from datetime import timedelta

import factory
import h3
from django.contrib.auth import get_user_model
from django.utils import timezone
from factory.django import DjangoModelFactory

from customers.models import Address, CustomerProfile, FavouriteNearNotice, FavouriteVendor
from tracking.models import Ping, PingRejectCount, Presence, VendorPosition
from vendors.models import (
    Category,
    LotAdjustment,
    LotAllocation,
    OpeningHours,
    PickupPoint,
    Product,
    ServiceCell,
    Stock,
    StockLot,
    Vendor,
    VendorHours,
    WasteRecord,
)
from vendors.services import korea_today, lot_sell_by

PASSWORD = "correct-horse-battery"
MAPO = (37.5560, 126.9060)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    name = factory.Faker("name", locale="ko_KR")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class StaffFactory(UserFactory):
    is_staff = True
    is_superuser = True


class CustomerProfileFactory(DjangoModelFactory):
    class Meta:
        model = CustomerProfile

    user = factory.SubFactory(UserFactory)
    phone = "010-1234-5678"


class AddressFactory(DjangoModelFactory):
    class Meta:
        model = Address

    customer = factory.SubFactory(CustomerProfileFactory)
    label = "집"
    line1 = "서울 마포구 망원로 50"
    lat = MAPO[0]
    lng = MAPO[1]


class FavouriteVendorFactory(DjangoModelFactory):
    class Meta:
        model = FavouriteVendor

    customer = factory.SubFactory(CustomerProfileFactory)
    vendor = factory.SubFactory("tests.factories.VendorFactory")
    notify_near = False


class FavouriteNearNoticeFactory(DjangoModelFactory):
    class Meta:
        model = FavouriteNearNotice

    favourite = factory.SubFactory(FavouriteVendorFactory, notify_near=True)
    shift_started_at = factory.LazyFunction(timezone.now)
    address_label = "집"
    distance_m = 300


class VendorFactory(DjangoModelFactory):
    class Meta:
        model = Vendor

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"카트 {n}")
    slug = factory.Sequence(lambda n: f"cart-f{n}")
    home_lat = MAPO[0]
    home_lng = MAPO[1]
    status = Vendor.Status.APPROVED


class ServiceCellFactory(DjangoModelFactory):
    class Meta:
        model = ServiceCell

    vendor = factory.SubFactory(VendorFactory)
    cell = "8830e1ca29fffff"


class CategoryFactory(DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"cat-{n}")
    name_ko = "발효유"
    name_en = "Fermented milk"


class ProductFactory(DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"sku-{n}")
    name_ko = factory.Sequence(lambda n: f"발효유 {n}")
    name_en = factory.Sequence(lambda n: f"Fermented milk {n}")
    price = 1200
    category = factory.SubFactory(CategoryFactory)


class StockFactory(DjangoModelFactory):
    class Meta:
        model = Stock
        skip_postgeneration_save = True

    vendor = factory.SubFactory(VendorFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = 10

    @factory.post_generation
    def lot(obj, create, extracted, **kwargs):
        """The row's units in one lot of the default shelf life: the cart's quantity is the sum of
        its lots (vendors.models.StockLot). StockFactory(lot=False) makes a row without lots."""
        if create and extracted is not False and obj.quantity > 0:
            StockLotFactory(vendor=obj.vendor, product=obj.product, quantity=obj.quantity)


def stock_put(*, vendor, product, quantity: int, **lot) -> Stock:
    """Test set-up: the cart holds exactly `quantity` of the product, in one lot (expires_on /
    best_before / loaded_at passed on), replacing its lots, written without the services."""
    StockLot.objects.filter(vendor=vendor, product=product).delete()
    row, _created = Stock.objects.update_or_create(
        vendor=vendor, product=product, defaults={"quantity": quantity}
    )
    if quantity > 0:
        StockLotFactory(vendor=vendor, product=product, quantity=quantity, **lot)
    return row


class StockLotFactory(DjangoModelFactory):
    """A lot on its own: its units are NOT added to the Stock row (StockFactory makes both)."""

    class Meta:
        model = StockLot

    vendor = factory.SubFactory(VendorFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = 10
    quantity_loaded = factory.LazyAttribute(lambda o: max(o.quantity, 1))
    expires_on = factory.LazyFunction(lambda: korea_today() + timedelta(days=7))
    best_before = None
    sell_by = factory.LazyAttribute(
        lambda o: lot_sell_by(expires_on=o.expires_on, best_before=o.best_before)
    )


class LotAllocationFactory(DjangoModelFactory):
    class Meta:
        model = LotAllocation

    lot = factory.SubFactory(StockLotFactory)
    reference = factory.Sequence(lambda n: 10_000 + n)
    quantity = 1


class LotAdjustmentFactory(DjangoModelFactory):
    class Meta:
        model = LotAdjustment

    lot = factory.SubFactory(StockLotFactory)
    kind = LotAdjustment.Kind.CORRECTION
    reason = LotAdjustment.Reason.COUNT
    delta = -1


class WasteRecordFactory(LotAdjustmentFactory):
    class Meta:
        model = WasteRecord

    kind = LotAdjustment.Kind.WRITE_OFF
    reason = LotAdjustment.Reason.DAMAGED


class PickupPointFactory(DjangoModelFactory):
    class Meta:
        model = PickupPoint

    name = factory.Sequence(lambda n: f"픽업 {n}")
    address = "서울 마포구 양화로 45"
    lat = 37.5494
    lng = 126.9144


class OpeningHoursFactory(DjangoModelFactory):
    class Meta:
        model = OpeningHours

    point = factory.SubFactory(PickupPointFactory)
    weekday = 0
    opens = "09:00"
    closes = "21:00"


class VendorHoursFactory(DjangoModelFactory):
    class Meta:
        model = VendorHours

    vendor = factory.SubFactory(VendorFactory)
    weekday = 0
    opens = "07:00"
    closes = "19:00"


class VendorPositionFactory(DjangoModelFactory):
    class Meta:
        model = VendorPosition
        django_get_or_create = ("vendor",)

    vendor = factory.SubFactory(VendorFactory)
    on_shift = True
    presence = Presence.MOVING
    lat = MAPO[0]
    lng = MAPO[1]
    accuracy_m = 10.0
    recorded_at = factory.LazyFunction(timezone.now)
    last_ping_at = factory.LazyFunction(timezone.now)
    public_cell = factory.LazyAttribute(lambda o: h3.latlng_to_cell(o.lat, o.lng, 9))
    coarse_cell = factory.LazyAttribute(lambda o: h3.cell_to_parent(o.public_cell, 7))


class PingFactory(DjangoModelFactory):
    class Meta:
        model = Ping

    vendor = factory.SubFactory(VendorFactory)
    lat = MAPO[0]
    lng = MAPO[1]
    accuracy_m = 10.0
    recorded_at = factory.Sequence(lambda n: timezone.now() - timedelta(seconds=n))
    received_at = factory.LazyFunction(timezone.now)
    cell = factory.LazyAttribute(lambda o: h3.latlng_to_cell(o.lat, o.lng, 9))


class PingRejectCountFactory(DjangoModelFactory):
    class Meta:
        model = PingRejectCount

    day = factory.LazyFunction(timezone.localdate)
    vendor = factory.SubFactory(VendorFactory)
    reason = "bad_accuracy"
    count = 1


class EffectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "o2o.Effect"

    kind = "order.email"
    key = factory.Sequence(lambda n: f"test:{n}")
    payload = factory.LazyFunction(dict)
    next_attempt_at = factory.LazyFunction(timezone.now)
    deadline = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))
