from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from o2o.geo import cell_of


class Vendor(models.Model):
    """A mobile vendor: one person, one cart. Sells only while APPROVED."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting approval")
        APPROVED = "approved", _("Approved")
        SUSPENDED = "suspended", _("Suspended")
        REJECTED = "rejected", pgettext_lazy("vendor application", "Rejected")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="vendor"
    )
    name = models.CharField(_("cart name"), max_length=80)
    slug = models.SlugField(unique=True, max_length=90, allow_unicode=False)
    bio = models.TextField(pgettext_lazy("vendor profile", "about"), blank=True, max_length=1000)
    photo = models.ImageField(_("photo"), upload_to="vendors/", blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    status_reason = models.CharField(_("reason"), max_length=200, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    home_lat = models.FloatField(_("home base latitude"))
    home_lng = models.FloatField(_("home base longitude"))
    home_cell = models.CharField(max_length=16, editable=False)
    delivery_fee = models.PositiveIntegerField(
        _("delivery fee"), default=1000, help_text=_("Charged on door deliveries, in KRW.")
    )
    # What the vendor reads: statements made outside a request (and their downloads) follow it; the
    # language switch sets it (o2o/language.py).
    language = models.CharField(
        _("language"),
        max_length=8,
        choices=settings.LANGUAGES,
        default=settings.LANGUAGE_CODE,
    )
    # Set once the vendor publishes working hours themselves (VendorHours), even none: from then on
    # their own rows are the truth and the platform's VENDOR_HOURS no longer stands in.
    hours_published = models.BooleanField(_("publishes own working hours"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("vendor")
        verbose_name_plural = _("vendors")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(home_lat__gte=-90, home_lat__lte=90)
                & Q(home_lng__gte=-180, home_lng__lte=180),
                name="vendor_home_lat_lng_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # The cell is an index column derived from the coordinates, kept in step here.
        self.home_cell = cell_of(self.home_lat, self.home_lng)
        super().save(*args, **kwargs)

    @property
    def can_sell(self) -> bool:
        return self.status == self.Status.APPROVED


class ServiceCell(models.Model):
    """One H3 cell (at SERVICE_AREA_RES) of a vendor's service area."""

    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="service_cells")
    cell = models.CharField(max_length=16, db_index=True)

    class Meta:
        verbose_name = _("service area cell")
        verbose_name_plural = _("service area cells")
        constraints = [
            models.UniqueConstraint(fields=["vendor", "cell"], name="service_cell_unique")
        ]

    def __str__(self) -> str:
        return self.cell


class Category(models.Model):
    slug = models.SlugField(unique=True)
    name_ko = models.CharField(_("name (Korean)"), max_length=50)
    name_en = models.CharField(_("name (English)"), max_length=50)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["position", "slug"]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.name_en if (get_language() or "ko").startswith("en") else self.name_ko


class Product(models.Model):
    """A product of the platform catalogue; each vendor carries some of it on the cart (Stock)."""

    sku = models.SlugField(_("SKU"), unique=True, max_length=40)
    name_ko = models.CharField(_("name (Korean)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    description_ko = models.TextField(_("description (Korean)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    photo = models.ImageField(_("photo"), upload_to="products/", blank=True)
    price = models.PositiveIntegerField(_("price"), help_text=_("In minor units of the currency"))
    currency = models.CharField(max_length=3, default="KRW", editable=False)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    is_active = models.BooleanField(_("on sale"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["category__position", "name_ko"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="product_price_positive"),
        ]

    def __str__(self) -> str:
        return self.name_ko

    @property
    def name(self) -> str:
        return self.name_en if (get_language() or "ko").startswith("en") else self.name_ko

    @property
    def description(self) -> str:
        en = (get_language() or "ko").startswith("en")
        return (self.description_en or self.description_ko) if en else self.description_ko


class Stock(models.Model):
    """What is on a vendor's cart now. The database keeps quantity >= 0."""

    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="stock")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="stock")
    quantity = models.IntegerField(_("quantity"), default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("cart stock")
        verbose_name_plural = _("cart stock")
        constraints = [
            models.UniqueConstraint(fields=["vendor", "product"], name="stock_vendor_product"),
            models.CheckConstraint(
                condition=Q(quantity__gte=0), name="stock_quantity_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.vendor} · {self.product}: {self.quantity}"


class PickupPoint(models.Model):
    """A partner shop where a customer can collect an order later."""

    name = models.CharField(_("name"), max_length=100)
    address = models.CharField(_("address"), max_length=200)
    lat = models.FloatField(_("latitude"))
    lng = models.FloatField(_("longitude"))
    cell = models.CharField(max_length=16, db_index=True, editable=False)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("pickup point")
        verbose_name_plural = _("pickup points")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(lat__gte=-90, lat__lte=90, lng__gte=-180, lng__lte=180),
                name="pickup_lat_lng_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.cell = cell_of(self.lat, self.lng)
        super().save(*args, **kwargs)


class OpeningHours(models.Model):
    class Weekday(models.IntegerChoices):
        MON = 0, _("Monday")
        TUE = 1, _("Tuesday")
        WED = 2, _("Wednesday")
        THU = 3, _("Thursday")
        FRI = 4, _("Friday")
        SAT = 5, _("Saturday")
        SUN = 6, _("Sunday")

    point = models.ForeignKey(PickupPoint, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    opens = models.TimeField(_("opens"))
    closes = models.TimeField(_("closes"))

    class Meta:
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")
        ordering = ["weekday", "opens"]
        constraints = [
            models.CheckConstraint(condition=Q(closes__gt=models.F("opens")), name="hours_order"),
            models.UniqueConstraint(fields=["point", "weekday", "opens"], name="hours_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M}"


class VendorHours(models.Model):
    """When a vendor usually works, by weekday (Korea time): what customers may order ahead for
    while the cart is off shift. A vendor with no rows keeps the platform's VENDOR_HOURS."""

    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=OpeningHours.Weekday.choices)
    opens = models.TimeField(_("starts"))
    closes = models.TimeField(_("ends"))

    class Meta:
        verbose_name = _("working hours")
        verbose_name_plural = _("working hours")
        ordering = ["weekday", "opens"]
        constraints = [
            models.CheckConstraint(
                condition=Q(closes__gt=models.F("opens")), name="vendor_hours_order"
            ),
            models.UniqueConstraint(
                fields=["vendor", "weekday", "opens"], name="vendor_hours_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M}"


class StockLot(models.Model):
    """Units of one product loaded on a cart together, with one expiry.

    The rule, held by every service in vendors.services inside one transaction: a cart's
    Stock.quantity is the sum of the remaining `quantity` of all its lots of that product, expired
    ones included (they are on the cart until the vendor writes them off). A lot is sellable while
    `sell_by` is in the future; sales take sellable lots only, the soonest `sell_by` first (then
    the oldest lot). Writers lock the Stock row first, then its lots, so lots are never oversold.

    `sell_by` is fixed at loading: the best-before time for chilled items, else the end of the
    expiry date in Korea (the start of the next day, Asia/Seoul), whichever comes first.
    """

    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="lots")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="lots")
    quantity_loaded = models.PositiveIntegerField(_("quantity loaded"))
    quantity = models.IntegerField(_("quantity left"))
    expires_on = models.DateField(_("expiry date"))
    best_before = models.DateTimeField(_("best before"), null=True, blank=True)
    sell_by = models.DateTimeField(_("sellable until"), editable=False)
    loaded_at = models.DateTimeField(_("loaded at"), default=timezone.now)
    loaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("loaded by"),
    )

    class Meta:
        verbose_name = _("stock lot")
        verbose_name_plural = _("stock lots")
        ordering = ["vendor", "product", "sell_by", "id"]
        indexes = [models.Index(fields=["vendor", "product", "sell_by"], name="lot_sell_order")]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=0), name="lot_quantity_non_negative"),
            models.CheckConstraint(condition=Q(quantity_loaded__gt=0), name="lot_loaded_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.product} · {self.expires_on:%Y-%m-%d}: {self.quantity}"

    @property
    def is_expired(self) -> bool:
        return self.sell_by <= timezone.now()


class LotAllocation(models.Model):
    """Which lot an order's units came from, so that a release puts them back where they were.

    `reference` is the order's id: vendors knows orders only by id (imports run one way)."""

    lot = models.ForeignKey(StockLot, on_delete=models.CASCADE, related_name="allocations")
    reference = models.BigIntegerField(_("order"), db_index=True)
    quantity = models.PositiveIntegerField(_("quantity"))
    released = models.PositiveIntegerField(_("released"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("lot allocation")
        verbose_name_plural = _("lot allocations")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="allocation_positive"),
            models.CheckConstraint(
                condition=Q(released__gte=0, released__lte=models.F("quantity")),
                name="allocation_released_range",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.reference} · {self.lot}: {self.quantity}"


class LotAdjustment(models.Model):
    """A change to a lot by hand: a count correction or a write-off (waste), with its reason.

    `delta` is signed (a correction may add units); a write-off always takes units (< 0)."""

    class Kind(models.TextChoices):
        CORRECTION = "correction", _("Correction")
        WRITE_OFF = "write_off", _("Write-off")

    class Reason(models.TextChoices):
        EXPIRED = "expired", _("Expired")
        DAMAGED = "damaged", _("Damaged")
        TEMPERATURE = "temperature", _("Kept too warm")
        RECALL = "recall", _("Recall")
        COUNT = "count", _("Counted again")
        OTHER = "other", _("Other")

    lot = models.ForeignKey(StockLot, on_delete=models.CASCADE, related_name="adjustments")
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    reason = models.CharField(_("reason"), max_length=12, choices=Reason.choices)
    delta = models.IntegerField(_("change"))
    note = models.CharField(_("note"), max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("lot adjustment")
        verbose_name_plural = _("lot adjustments")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(delta=0), name="adjustment_non_zero"),
            models.CheckConstraint(
                condition=~Q(kind="write_off") | Q(delta__lt=0), name="write_off_takes_units"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.delta} ({self.get_reason_display()})"

    @property
    def units(self) -> int:
        return abs(self.delta)


class WasteRecord(LotAdjustment):
    """Write-offs only, for staff's waste report (Django admin)."""

    class Meta:
        proxy = True
        verbose_name = _("waste")
        verbose_name_plural = _("waste")
