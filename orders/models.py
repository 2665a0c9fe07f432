"""Orders: what a customer bought from one vendor's cart, how they receive it, and every change of
its state. Prices, names and the commission rate are snapshotted onto the order at placement."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.functional import cached_property
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class Fulfilment(models.TextChoices):
    MEET = "meet", _("Meet the vendor")
    DELIVERY = "delivery", _("Delivery to the door")
    PICKUP = "pickup", _("Pickup at a partner point")
    AT_CART = "at_cart", _("At the cart")


class PaymentMethod(models.TextChoices):
    CARD = "card", _("card, online")
    CASH = "cash", _("cash at the cart")


class Status(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", _("Waiting for payment")
    PLACED = "placed", _("Placed")
    ACCEPTED = "accepted", _("Accepted")
    EN_ROUTE = "en_route", _("On the way")
    READY = "ready", _("Ready")
    HANDED_OVER = "handed_over", _("Handed over")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Payment failed")
    REJECTED = "rejected", _("Rejected by the vendor")
    EXPIRED = "expired", _("Expired")
    CANCELLED = "cancelled", _("Cancelled")
    REFUNDED = "refunded", _("Refunded")


ACTIVE = (
    Status.PENDING_PAYMENT,
    Status.PLACED,
    Status.ACCEPTED,
    Status.EN_ROUTE,
    Status.READY,
    Status.HANDED_OVER,
)
FINAL = (
    Status.COMPLETED,
    Status.FAILED,
    Status.REJECTED,
    Status.EXPIRED,
    Status.CANCELLED,
    Status.REFUNDED,
)


class Order(models.Model):
    Status = Status
    Fulfilment = Fulfilment

    customer = models.ForeignKey(
        "customers.CustomerProfile", on_delete=models.PROTECT, related_name="orders"
    )
    vendor = models.ForeignKey("vendors.Vendor", on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING_PAYMENT
    )
    fulfilment = models.CharField(_("how to receive"), max_length=10, choices=Fulfilment.choices)
    # Delivery: a snapshot of the address (the customer may edit or delete it later).
    delivery_address = models.CharField(_("delivery address"), max_length=300, blank=True)
    delivery_lat = models.FloatField(null=True, blank=True)
    delivery_lng = models.FloatField(null=True, blank=True)
    pickup_point = models.ForeignKey(
        "vendors.PickupPoint", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Meet: the public (approximate) cell the customer chose near the vendor.
    meet_cell = models.CharField(_("meeting area"), max_length=16, blank=True)
    window_start = models.DateTimeField(_("from"), null=True, blank=True)
    window_end = models.DateTimeField(_("until"), null=True, blank=True)
    eta = models.DateTimeField(_("expected at"), null=True, blank=True)
    note = models.CharField(_("note for the vendor"), max_length=200, blank=True)

    currency = models.CharField(max_length=3, default="KRW")
    subtotal = models.BigIntegerField(_("items"))
    delivery_fee = models.BigIntegerField(_("delivery fee"), default=0)
    total = models.BigIntegerField(_("total"))
    commission_bps = models.PositiveIntegerField(
        _("commission (basis points)"),
        help_text=_("The vendor's plan at placement; a line's category may have its own."),
    )
    commission = models.BigIntegerField(
        _("commission"), default=0, help_text=_("The sum of the lines' commissions.")
    )
    platform_fee = models.BigIntegerField(
        _("platform's delivery fee"),
        default=0,
        help_text=_("The delivery fee, when the platform keeps it (DELIVERY_FEE_TO)."),
    )

    # How the money came: online by card (a Payment), or cash at the cart (no Payment; issue 16).
    payment_method = models.CharField(
        _("paid by"), max_length=4, choices=PaymentMethod.choices, default=PaymentMethod.CARD
    )
    # A walk-up buyer without an account (the shared walk-up customer, customers.services
    # walkup_customer): where their receipt goes, if they gave an address.
    receipt_email = models.EmailField(_("receipt to"), blank=True)
    # Bought standing at the cart (counter: the cart's QR or a basket the vendor made): handed
    # over as soon as it is paid. Other at-cart orders are collected at the cart later, by code.
    walkup = models.BooleanField(_("bought at the cart"), default=False)
    handover_code = models.CharField(max_length=6)
    checkout_token = models.UUIDField(unique=True)
    payment_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    placed_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    handed_over_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["vendor", "status", "-created_at"], name="order_vendor_status"),
            models.Index(fields=["customer", "-created_at"], name="order_customer_recent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(subtotal__gt=0) & Q(delivery_fee__gte=0),
                name="order_amounts_positive",
            ),
            models.CheckConstraint(
                condition=Q(total=F("subtotal") + F("delivery_fee")), name="order_total_adds_up"
            ),
            models.CheckConstraint(
                condition=Q(commission_bps__lte=10_000), name="order_commission_at_most_all"
            ),
            models.CheckConstraint(
                condition=Q(commission__gte=0, platform_fee__gte=0)
                & Q(commission__lte=F("subtotal"), platform_fee__lte=F("delivery_fee")),
                name="order_platform_part_within",
            ),
            models.CheckConstraint(
                condition=~Q(fulfilment="delivery") | Q(delivery_lat__isnull=False),
                name="order_delivery_has_address",
            ),
            models.CheckConstraint(
                condition=Q(payment_method="card")
                | Q(fulfilment="at_cart", payment_id__isnull=True),
                name="order_cash_only_at_the_cart",
            ),
            models.CheckConstraint(
                condition=~Q(fulfilment="pickup") | Q(pickup_point__isnull=False),
                name="order_pickup_has_point",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.vendor_id} {self.status}"

    @cached_property
    def short_total(self) -> int:
        """What the customer does not pay: the units the vendor could not supply."""
        return sum(line.short_amount for line in self.lines.all())

    @property
    def net_total(self) -> int:
        return self.total - self.short_total

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey("vendors.Product", on_delete=models.PROTECT, related_name="+")
    name_ko = models.CharField(max_length=100)
    name_en = models.CharField(max_length=100)
    unit_price = models.BigIntegerField()
    quantity = models.PositiveIntegerField()
    line_total = models.BigIntegerField()
    commission_bps = models.PositiveIntegerField(_("commission (basis points)"), default=0)
    commission = models.BigIntegerField(_("commission"), default=0)
    # Units the vendor could not supply (marked before the handover): never charged, refunded
    # automatically right after the capture (orders.services.order_short_lines_refund).
    short_quantity = models.PositiveIntegerField(_("not supplied"), default=0)
    short_reason = models.CharField(_("why not supplied"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["order", "product"], name="order_line_product"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity"),
            models.CheckConstraint(
                condition=Q(line_total=F("unit_price") * F("quantity")),
                name="order_line_total_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(commission__gte=0, commission__lte=F("line_total")),
                name="order_line_commission_within_total",
            ),
            models.CheckConstraint(
                condition=Q(short_quantity__lte=F("quantity")),
                name="order_line_short_within_quantity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name_ko} × {self.quantity}"

    @property
    def name(self) -> str:
        return self.name_en if (get_language() or "ko").startswith("en") else self.name_ko

    @property
    def supplied_quantity(self) -> int:
        return self.quantity - self.short_quantity

    @property
    def markable(self) -> int:
        """How many more units of this line the vendor may mark as not supplied: what is left of
        it, while something of the order stays to hand over (else the vendor cancels instead)."""
        left = sum(line.quantity - line.short_quantity for line in self.order.lines.all())
        return max(0, min(self.supplied_quantity, left - 1))

    @property
    def short_amount(self) -> int:
        """What the customer does not pay for this line: its units not supplied."""
        return self.unit_price * self.short_quantity


class OrderEvent(models.Model):
    """Append-only: who moved the order from which state to which, when and why."""

    class Role(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        VENDOR = "vendor", _("Vendor")
        STAFF = "staff", _("Staff")
        SYSTEM = "system", _("System")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, choices=Status.choices, blank=True)
    to_status = models.CharField(_("to status"), max_length=16, choices=Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    reason = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"#{self.order_id} {self.from_status or '∅'} → {self.to_status}"
