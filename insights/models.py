"""The record of every sale and of every miss, and the summaries the pages read.

`SaleRecord` is append-only: one row per order line when the sale completes (the units handed
over and their amount), and a negative row when money or units come back (a refund, a cash sale
undone). Each row carries the time and the public cell where it was handed over, never an exact
position, and a `buyer`: the customer's id, or minus the order's id for a buyer without an account
(a guest at the cart, a cash sale), so one anonymous buyer never stands for many.

`SalesCube` and `CellBuyers` are kept from it by `insights.summaries.summaries_refresh` (Celery,
every minute): only rows not yet summarised (`batch` NULL) are read, added in, and marked, in one
transaction. `summaries_rebuild` recomputes both from the record, and equals the incremental result.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    ONLINE = "online", _("Ordered online")
    REGULAR = "regular", _("Regulars")
    WALKUP = "walkup", _("Paid at the cart by QR")
    CASH = "cash", _("Cash at the cart")


class SaleKind(models.TextChoices):
    SALE = "sale", _("Sale")
    REFUND = "refund", _("Refund")
    VOID = "void", _("Sale undone")


class MissKind(models.TextChoices):
    NONE_NEAR = "none_near", _("Searched, no cart near had it")
    SOLD_OUT = "sold_out", _("Tried to buy, sold out")


PENDING = Q(batch__isnull=True)


class SaleRecord(models.Model):
    vendor_id = models.BigIntegerField(_("vendor"))
    order_id = models.BigIntegerField(_("order"))
    line_id = models.BigIntegerField(_("order line"))
    product_id = models.BigIntegerField(_("product"))
    kind = models.CharField(_("kind"), max_length=8, choices=SaleKind.choices)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    fulfilment = models.CharField(_("how received"), max_length=10)
    buyer = models.BigIntegerField(_("buyer"))
    units = models.IntegerField(_("units"))
    amount = models.BigIntegerField(_("amount"), help_text=_("In the currency's minor unit."))
    currency = models.CharField(max_length=3, default="KRW")
    # When and where the goods changed hands (a refund keeps its sale's): local (TIME_ZONE) day,
    # weekday (Monday 0) and hour; the public cell, or "" when none was known.
    occurred_at = models.DateTimeField(_("handed over at"))
    day = models.DateField(_("day"))
    weekday = models.PositiveSmallIntegerField(_("weekday"))
    hour = models.PositiveSmallIntegerField(_("hour"))
    cell = models.CharField(_("area"), max_length=16, blank=True)
    # The refund or undo this row records (a refund id; the order id for an undo), so each is
    # recorded once.
    source_id = models.BigIntegerField(null=True, blank=True)
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    batch = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("sale record")
        verbose_name_plural = _("sale records")
        constraints = [
            models.UniqueConstraint(
                fields=["line_id"], condition=Q(kind="sale"), name="salerecord_sale_once"
            ),
            models.UniqueConstraint(
                fields=["line_id", "kind", "source_id"],
                condition=~Q(kind="sale"),
                name="salerecord_reversal_once",
            ),
            models.CheckConstraint(
                condition=(Q(kind="sale", units__gte=0, amount__gte=0))
                | (~Q(kind="sale") & Q(units__lte=0, amount__lte=0)),
                name="salerecord_sign",
            ),
            models.CheckConstraint(condition=Q(hour__lte=23), name="salerecord_hour"),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="salerecord_weekday"),
        ]
        indexes = [
            models.Index(fields=["id"], condition=PENDING, name="salerecord_pending"),
            # The refresh reads its batch back by its marker (a rebuild marks with 0: not indexed).
            models.Index(fields=["batch"], condition=Q(batch__gt=0), name="salerecord_batch"),
            models.Index(fields=["vendor_id", "day"], name="salerecord_vendor_day"),
            models.Index(fields=["order_id"], name="salerecord_order"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.order_id}/{self.line_id} {self.units} {self.amount}"


class MissRecord(models.Model):
    kind = models.CharField(_("kind"), max_length=10, choices=MissKind.choices)
    product_id = models.BigIntegerField(_("product"))
    # The cart that had it sold out (0: none, a search).
    vendor_id = models.BigIntegerField(_("vendor"), default=0)
    cell = models.CharField(_("area"), max_length=16)
    occurred_at = models.DateTimeField(_("when"))
    day = models.DateField(_("day"))
    weekday = models.PositiveSmallIntegerField(_("weekday"))
    hour = models.PositiveSmallIntegerField(_("hour"))
    # Who asked, as a one-way key (a session or account), so one person counts once per product,
    # area and hour however often they ask.
    asker = models.CharField(max_length=32)
    recorded_at = models.DateTimeField(auto_now_add=True)
    batch = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("miss")
        verbose_name_plural = _("misses")
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "product_id", "vendor_id", "cell", "day", "hour", "asker"],
                name="missrecord_once_per_hour",
            ),
        ]
        indexes = [
            models.Index(fields=["id"], condition=PENDING, name="missrecord_pending"),
            models.Index(fields=["batch"], condition=Q(batch__gt=0), name="missrecord_batch"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.product_id} {self.cell} {self.day} {self.hour}"


class SalesCube(models.Model):
    """Sales by vendor × day × hour × product × cell × channel (weekday follows from day)."""

    vendor_id = models.BigIntegerField()
    day = models.DateField()
    weekday = models.PositiveSmallIntegerField()
    hour = models.PositiveSmallIntegerField()
    product_id = models.BigIntegerField()
    cell = models.CharField(max_length=16, blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    units = models.BigIntegerField(default=0)
    amount = models.BigIntegerField(default=0)
    sales = models.IntegerField(default=0, help_text=_("Sale lines, less those undone."))

    class Meta:
        verbose_name = _("sales summary")
        verbose_name_plural = _("sales summaries")
        constraints = [
            models.UniqueConstraint(
                fields=["vendor_id", "day", "hour", "product_id", "cell", "channel"],
                name="salescube_key",
            ),
        ]
        indexes = [
            models.Index(fields=["day", "cell"], name="salescube_day_cell"),
            models.Index(fields=["vendor_id", "weekday", "day"], name="salescube_vendor_weekday"),
            # The insight page: one vendor's last weeks (insights/vendor.py).
            models.Index(fields=["vendor_id", "day"], name="salescube_vendor_day"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.vendor_id} {self.day} {self.hour}h {self.product_id} {self.cell} {self.units}"
        )


class CellBuyers(models.Model):
    """Who bought from a vendor in a cell on a day, in which hour (a buyer key, never shown): the
    distinct counts the minimum-count rule needs over any period and any hours."""

    vendor_id = models.BigIntegerField()
    day = models.DateField()
    hour = models.PositiveSmallIntegerField(default=0)
    cell = models.CharField(max_length=16, blank=True)
    buyer = models.BigIntegerField()

    class Meta:
        verbose_name = _("buyers in an area")
        verbose_name_plural = _("buyers in an area")
        constraints = [
            models.UniqueConstraint(
                fields=["vendor_id", "day", "cell", "hour", "buyer"], name="cellbuyers_key"
            ),
        ]
        indexes = [models.Index(fields=["day", "cell"], name="cellbuyers_day_cell")]

    def __str__(self) -> str:
        return f"{self.vendor_id} {self.day} {self.cell}"


class MissCube(models.Model):
    """Misses by day × hour × cell × product × kind."""

    day = models.DateField()
    weekday = models.PositiveSmallIntegerField()
    hour = models.PositiveSmallIntegerField()
    cell = models.CharField(max_length=16)
    product_id = models.BigIntegerField()
    kind = models.CharField(max_length=10, choices=MissKind.choices)
    misses = models.IntegerField(default=0)

    class Meta:
        verbose_name = _("miss summary")
        verbose_name_plural = _("miss summaries")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "hour", "cell", "product_id", "kind"], name="misscube_key"
            ),
        ]
        indexes = [models.Index(fields=["day", "cell"], name="misscube_day_cell")]

    def __str__(self) -> str:
        return f"{self.kind} {self.day} {self.hour}h {self.product_id} {self.cell} {self.misses}"


class SummaryState(models.Model):
    """One row: the lock the refresh and the rebuild take, and when each last ran."""

    refreshed_at = models.DateTimeField(null=True, blank=True)
    rebuilt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("summary state")
        verbose_name_plural = _("summary state")

    def __str__(self) -> str:
        return f"refreshed {self.refreshed_at}, rebuilt {self.rebuilt_at}"
