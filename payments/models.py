"""Payments, refunds and the provider webhooks received. Amounts are integers in the currency's
minor unit; the database keeps them in range. A payment refers to its order by id only (payments
never imports orders)."""

import re

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for the customer")
    AUTHORISED = "authorised", _("Authorised")
    CAPTURED = "captured", _("Captured")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
    REFUNDED = "refunded", _("Refunded")
    VOIDED = "voided", _("Voided")
    FAILED = "failed", _("Failed")


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("Sent to the provider")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class PaymentPurpose(models.TextChoices):
    ORDER = "order", _("Order")
    CANCELLATION_FEE = "cancellation_fee", _("Cancellation fee")


class Payment(models.Model):
    """One order's payment at a provider, or a regular's cancellation fee (purpose; then no order,
    the subscription instead). Its status moves only through payments.services:
    PENDING → AUTHORISED → CAPTURED → PARTIALLY_REFUNDED / REFUNDED; AUTHORISED → VOIDED;
    PENDING → FAILED."""

    Status = PaymentStatus
    Purpose = PaymentPurpose

    order_id = models.BigIntegerField(_("order"), unique=True, null=True, blank=True)
    purpose = models.CharField(
        _("purpose"), max_length=20, choices=PaymentPurpose.choices, default=PaymentPurpose.ORDER
    )
    # The subscription whose early cancellation this payment's fee is (purpose cancellation_fee).
    subscription_id = models.BigIntegerField(_("subscription"), null=True, blank=True)
    amount = models.BigIntegerField(_("amount"), help_text=_("In the currency's minor unit."))
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    provider = models.CharField(_("provider"), max_length=20)
    provider_ref = models.CharField(_("provider reference"), max_length=64, blank=True)
    checkout_url = models.URLField(_("checkout page"), max_length=500, blank=True)
    amount_captured = models.BigIntegerField(_("amount captured"), default=0)
    amount_refunded = models.BigIntegerField(_("amount refunded"), default=0)
    # The provider's fee for the capture, as it reported it with the capture (booked to the ledger's
    # provider_fees in the same transaction); the platform bears it, refunds leave it as it is.
    provider_fee = models.BigIntegerField(
        _("provider fee"), default=0, help_text=_("Charged by the provider for the capture.")
    )
    failure_code = models.CharField(_("failure code"), max_length=40, blank=True)
    failure_message = models.CharField(_("failure"), max_length=200, blank=True)
    card_brand = models.CharField(_("card brand"), max_length=20, blank=True)
    card_last4 = models.CharField(_("card ending"), max_length=4, blank=True)
    # The split, snapshotted by the orders app when the payment starts: who is owed the money and
    # the platform's part of it (commission, and a delivery fee when it goes to the platform).
    vendor_id = models.BigIntegerField(_("vendor"), null=True, blank=True, db_index=True)
    commission = models.BigIntegerField(_("commission"), default=0)
    platform_fee = models.BigIntegerField(
        _("platform's delivery fee"), default=0, help_text=_("A delivery fee kept by the platform.")
    )
    # A regular's commitment price advantage on this order (list price less the plan's price, all
    # lines): the platform pays it to the vendor at capture (ledger: subscription_advantage).
    price_advantage = models.BigIntegerField(
        _("commitment price advantage"),
        default=0,
        help_text=_("Paid to the vendor by the platform on top of what the customer paid."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    authorised_at = models.DateTimeField(_("authorised at"), null=True, blank=True)
    captured_at = models.DateTimeField(_("captured at"), null=True, blank=True)
    closed_at = models.DateTimeField(
        _("closed at"), null=True, blank=True, help_text=_("When it was voided or failed.")
    )

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(purpose="order", order_id__isnull=False, subscription_id__isnull=True)
                | Q(
                    purpose="cancellation_fee",
                    order_id__isnull=True,
                    subscription_id__isnull=False,
                    price_advantage=0,
                ),
                name="payment_purpose_names_its_object",
            ),
            models.UniqueConstraint(
                fields=["subscription_id"],
                condition=Q(purpose="cancellation_fee"),
                name="payment_one_cancellation_fee",
            ),
            models.CheckConstraint(
                condition=Q(price_advantage__gte=0), name="payment_price_advantage_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(amount_captured__gte=0, amount_captured__lte=F("amount")),
                name="payment_captured_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0, amount_refunded__lte=F("amount_captured")),
                name="payment_refunded_within_captured",
            ),
            models.CheckConstraint(
                condition=Q(provider_fee__gte=0, provider_fee__lte=F("amount_captured")),
                name="payment_provider_fee_within_captured",
            ),
            models.CheckConstraint(
                condition=Q(status__in=PaymentStatus.values), name="payment_status_valid"
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_ref"],
                condition=~Q(provider_ref=""),
                name="payment_provider_ref_unique",
            ),
            models.CheckConstraint(
                condition=Q(commission__gte=0, platform_fee__gte=0)
                & Q(commission__lte=F("amount") - F("platform_fee")),
                name="payment_split_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"payment {self.pk} (order {self.order_id})"

    @property
    def refundable(self) -> int:
        return self.amount_captured - self.amount_refunded


class RefundKind(models.TextChoices):
    ORDER = "order", _("Whole order returned")
    LINE = "line", _("Order line refunded")
    SHORT = "short", _("Units not supplied")
    DISPUTE = "dispute", _("Dispute resolved")
    PROVIDER = "provider", _("Refunded at the provider")
    OTHER = "other", _("Other")


class Refund(models.Model):
    Status = RefundStatus
    Kind = RefundKind

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField(_("amount"))
    reason = models.CharField(_("reason"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.OTHER)
    # The order line a LINE or SHORT refund gives back (a lazy reference: payments never
    # imports orders).
    order_line = models.ForeignKey(
        "orders.OrderLine",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refunds",
        verbose_name=_("order line"),
    )
    # The commission this refund gives back, when the caller knows it exactly (a refunded line);
    # empty: pro rata of the payment's commission.
    commission_hint = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    provider_ref = models.CharField(_("provider reference"), max_length=64, blank=True)
    failure_code = models.CharField(_("failure code"), max_length=40, blank=True)
    failure_message = models.CharField(_("failure"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    succeeded_at = models.DateTimeField(_("succeeded at"), null=True, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=RefundStatus.values), name="refund_status_valid"
            ),
            models.UniqueConstraint(
                fields=["provider_ref"],
                condition=~Q(provider_ref=""),
                name="refund_provider_ref_unique",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=("line", "short"), order_line__isnull=False)
                | (~Q(kind__in=("line", "short")) & Q(order_line__isnull=True)),
                name="refund_line_kinds_have_a_line",
            ),
            # One live (not failed) refund per line and kind: a double click can't refund twice.
            models.UniqueConstraint(
                fields=["order_line", "kind"],
                condition=Q(order_line__isnull=False) & ~Q(status="failed"),
                name="refund_one_live_per_line_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"refund {self.pk} of payment {self.payment_id}"

    @property
    def idempotency_key(self) -> str:
        return f"refund-{self.pk}"


class WebhookEvent(models.Model):
    """A provider's webhook, recorded once per event id (the unique constraint is what makes a
    second delivery do nothing)."""

    provider = models.CharField(_("provider"), max_length=20)
    event_id = models.CharField(_("event id"), max_length=100)
    type = models.CharField(_("type"), max_length=60)
    object_ref = models.CharField(_("about"), max_length=64, blank=True)
    payload = models.JSONField(_("payload"))
    payment = models.ForeignKey(
        Payment, on_delete=models.SET_NULL, null=True, blank=True, related_name="webhook_events"
    )
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_id} {self.type}"


# --- commission plans ----------------------------------------------------------------------------


class CommissionPlan(models.Model):
    """The platform's share, in basis points, from `valid_from` until `valid_until` (open-ended when
    empty). A plan names a vendor, a product category, both, or neither (the platform default); the
    most specific plan in force at placement is snapshotted onto each order line. Plans are never
    edited once in force: end one and start another, so every past order keeps its story."""

    vendor = models.ForeignKey(
        "vendors.Vendor",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="commission_plans",
        verbose_name=_("vendor"),
        help_text=_("Empty: every vendor."),
    )
    category = models.ForeignKey(
        "vendors.Category",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="commission_plans",
        verbose_name=_("category"),
        help_text=_("Empty: every category."),
    )
    bps = models.PositiveIntegerField(
        _("commission (basis points)"), help_text=_("100 basis points = 1 %.")
    )
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("commission plan")
        verbose_name_plural = _("commission plans")
        ordering = ["-valid_from"]
        indexes = [models.Index(fields=["vendor", "category", "-valid_from"], name="plan_lookup")]
        constraints = [
            models.CheckConstraint(condition=Q(bps__lte=10_000), name="plan_bps_at_most_all"),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="plan_period_forward",
            ),
        ]

    def __str__(self) -> str:
        scope = " / ".join(str(x) for x in (self.vendor, self.category) if x is not None) or str(
            _("platform default")
        )
        return f"{scope}: {self.bps / 100:g} %"


# --- the double-entry ledger ---------------------------------------------------------------------


class AccountKind(models.TextChoices):
    ASSET = "asset", _("Asset")
    LIABILITY = "liability", _("Liability")
    REVENUE = "revenue", _("Revenue")
    EXPENSE = "expense", _("Expense")


class LedgerAccount(models.Model):
    """An account of the ledger. Balances are derived from the entries (debits − credits for
    assets and expenses, credits − debits for liabilities and revenue)."""

    Kind = AccountKind

    code = models.CharField(_("code"), max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=10, choices=AccountKind.choices)
    currency = models.CharField(_("currency"), max_length=3)
    vendor = models.ForeignKey(
        "vendors.Vendor",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_accounts",
        verbose_name=_("vendor"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=AccountKind.values), name="ledger_account_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def debit_normal(self) -> bool:
        return self.kind in (AccountKind.ASSET, AccountKind.EXPENSE)


class JournalKind(models.TextChoices):
    CAPTURE = "capture", _("Capture")
    COMMISSION = "commission", _("Commission and vendor share")
    REFUND = "refund", _("Refund")
    REVERSAL = "reversal", _("Commission reversal")
    PROVIDER_FEE = "provider_fee", _("Provider fee")
    PAYOUT = "payout", _("Payout sent")
    PAYOUT_PAID = "payout_paid", _("Payout paid")
    PAYOUT_FAILED = "payout_failed", _("Payout failed")
    ADJUSTMENT = "adjustment", _("Manual adjustment")
    CANCELLATION_FEE = "cancellation_fee", _("Cancellation fee")
    # A cash sale at the cart (issue 16), when settings.CASH_COMMISSION: the vendor owes the
    # commission on money that never passed through the platform; undoing the sale gives it back.
    CASH_COMMISSION = "cash_commission", _("Commission on a cash sale")
    CASH_COMMISSION_UNDO = "cash_commission_undo", _("Cash sale undone")


class JournalTransaction(models.Model):
    """One money movement: two or more entries whose debits equal their credits. Append-only: the
    database refuses UPDATE and DELETE (see migration 0002), and so does Python. `key` makes each
    movement happen once (the capture of a payment, a refund, a payout's sending …)."""

    Kind = JournalKind

    key = models.CharField(_("idempotency key"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=JournalKind.choices, db_index=True)
    currency = models.CharField(_("currency"), max_length=3)
    memo = models.CharField(_("memo"), max_length=200, blank=True)
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="journal"
    )
    refund = models.ForeignKey(
        Refund, on_delete=models.PROTECT, null=True, blank=True, related_name="journal"
    )
    order_id = models.BigIntegerField(_("order"), null=True, blank=True, db_index=True)
    vendor_id = models.BigIntegerField(_("vendor"), null=True, blank=True)
    created_by = models.ForeignKey(
        "accounts.User",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("journal transaction")
        verbose_name_plural = _("journal transactions")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["vendor_id", "created_at"], name="journal_vendor_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=JournalKind.values), name="journal_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValueError("the ledger is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("the ledger is append-only")


class LedgerEntry(models.Model):
    """One side of a journal transaction: a positive amount debited or credited to one account."""

    DEBIT, CREDIT = "D", "C"

    transaction = models.ForeignKey(
        JournalTransaction, on_delete=models.PROTECT, related_name="entries"
    )
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    side = models.CharField(
        _("side"), max_length=1, choices=[(DEBIT, _("Debit")), (CREDIT, _("Credit"))]
    )
    amount = models.BigIntegerField(_("amount"))

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["pk"]
        indexes = [models.Index(fields=["account", "transaction"], name="entry_account_txn")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="entry_amount_positive"),
            models.CheckConstraint(condition=Q(side__in=["D", "C"]), name="entry_side_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.account_id} {self.amount}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValueError("the ledger is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("the ledger is append-only")


# --- settlements, payouts, disputes, reconciliation ----------------------------------------------
# Written by payments.settlement, payments.payouts, payments.disputes and payments.reconciliation
# only. The ledger stays append-only: what has been settled is recorded beside it (SettlementLine,
# one per journal transaction), never on it.


class SettlementKind(models.TextChoices):
    PERIOD = "period", _("Period")
    RETRY = "retry", _("Failed payout paid again")


class SettlementStatus(models.TextChoices):
    BUILDING = "building", _("Being built")
    HELD = "held", _("Held: a dispute is open")
    RELEASED = "released", _("Released for payout")
    NOTHING_DUE = "nothing_due", _("Nothing to pay")
    CARRIED_FORWARD = "carried_forward", _("Negative: carried forward")


class Settlement(models.Model):
    """What the platform owes one vendor for one period, computed from the ledger only: the
    vendor-payable journal transactions (capture splits, refund reversals, adjustments, returned
    payouts) booked before `period_end` and not settled before, each listed once as a
    SettlementLine. One settlement per vendor, currency and period (kind PERIOD); a RETRY
    settlement pays again the money of one failed payout (`retry_of`).

    Amounts are in the currency's minor unit, and always add up:
    net = gross − refunds − commission − delivery_fees + adjustments + returned.

    Status: BUILDING (lines being added) → RELEASED (a Payout of `net` is made), NOTHING_DUE
    (net 0), CARRIED_FORWARD (net below zero: its journal transactions are left for the next
    period's settlement, so it lists no lines) or HELD (a dispute on one of its orders is open; →
    RELEASED once none is)."""

    Kind = SettlementKind
    Status = SettlementStatus

    vendor = models.ForeignKey(
        "vendors.Vendor",
        on_delete=models.PROTECT,
        related_name="settlements",
        verbose_name=_("vendor"),
    )
    currency = models.CharField(_("currency"), max_length=3)
    kind = models.CharField(
        _("kind"), max_length=10, choices=SettlementKind.choices, default=SettlementKind.PERIOD
    )
    period_start = models.DateTimeField(_("period from"))
    period_end = models.DateTimeField(
        _("period until"), help_text=_("Journal transactions booked before this are included.")
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=SettlementStatus.choices,
        default=SettlementStatus.BUILDING,
        db_index=True,
    )
    gross = models.BigIntegerField(_("gross sales"), default=0, help_text=_("Captured."))
    refunds = models.BigIntegerField(_("refunds"), default=0, help_text=_("Given back."))
    commission = models.BigIntegerField(
        _("commission"), default=0, help_text=_("The platform's, after refunds gave some back.")
    )
    delivery_fees = models.BigIntegerField(
        _("delivery fees"), default=0, help_text=_("Kept by the platform, after refunds.")
    )
    price_advantage = models.BigIntegerField(
        _("commitment price advantage"),
        default=0,
        help_text=_("Paid by the platform on regulars' commitment prices, after refunds."),
    )
    adjustments = models.BigIntegerField(_("adjustments"), default=0)
    returned = models.BigIntegerField(
        _("returned payouts"), default=0, help_text=_("Failed payouts paid again.")
    )
    net = models.BigIntegerField(_("net"), default=0, help_text=_("What the vendor is owed."))
    line_count = models.PositiveIntegerField(_("lines"), default=0)
    retry_of = models.OneToOneField(
        "Payout",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="retried_by",
        verbose_name=_("retry of payout"),
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    built_at = models.DateTimeField(_("built at"), null=True, blank=True)
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)

    class Meta:
        verbose_name = _("settlement")
        verbose_name_plural = _("settlements")
        ordering = ["-period_start", "vendor_id"]
        indexes = [
            models.Index(fields=["vendor", "-period_start"], name="settlement_vendor_period")
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["vendor", "currency", "period_start"],
                condition=Q(kind="period"),
                name="settlement_once_per_vendor_period",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="settlement_period_forward"
            ),
            models.CheckConstraint(
                condition=Q(status__in=SettlementStatus.values), name="settlement_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind="period", retry_of__isnull=True)
                | Q(kind="retry", retry_of__isnull=False),
                name="settlement_retry_names_its_payout",
            ),
            models.CheckConstraint(
                condition=Q(
                    net=F("gross")
                    - F("refunds")
                    - F("commission")
                    - F("delivery_fees")
                    + F("price_advantage")
                    + F("adjustments")
                    + F("returned")
                ),
                name="settlement_parts_add_up",
            ),
        ]

    def __str__(self) -> str:
        return str(
            _("Settlement %(id)s of vendor %(vendor)s (%(period)s)")
            % {"id": self.pk, "vendor": self.vendor_id, "period": self.period_label}
        )

    @property
    def period_label(self) -> str:
        """The period's first day as the vendor lives it (TIME_ZONE, not UTC: a Korean period
        starts at 00:00 KST, the day before in UTC), in the language's short date format."""
        return date_format(timezone.localtime(self.period_start).date(), "SHORT_DATE_FORMAT")


class SettlementLine(models.Model):
    """One journal transaction of a settlement: an order's capture split (gross, commission,
    delivery fee, the vendor's share), a refund's reversal (the same, negative), an adjustment by
    staff or a failed payout's return. The UNIQUE journal transaction is what makes every
    movement settled exactly once. `net` is its effect on the vendor's payable balance."""

    settlement = models.ForeignKey(Settlement, on_delete=models.CASCADE, related_name="lines")
    journal_transaction = models.OneToOneField(
        JournalTransaction,
        on_delete=models.PROTECT,
        related_name="settlement_line",
        verbose_name=_("journal transaction"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=JournalKind.choices)
    order_id = models.BigIntegerField(_("order"), null=True, blank=True, db_index=True)
    refund_id = models.BigIntegerField(_("refund"), null=True, blank=True)
    gross = models.BigIntegerField(
        _("gross"), default=0, help_text=_("Captured (positive) or refunded (negative).")
    )
    commission = models.BigIntegerField(_("commission"), default=0)
    delivery_fee = models.BigIntegerField(_("platform's delivery fee"), default=0)
    price_advantage = models.BigIntegerField(
        _("commitment price advantage"),
        default=0,
        help_text=_("Paid by the platform (positive) or taken back on a refund (negative)."),
    )
    net = models.BigIntegerField(_("net"), default=0)
    booked_at = models.DateTimeField(_("booked at"))

    class Meta:
        verbose_name = _("settlement line")
        verbose_name_plural = _("settlement lines")
        ordering = ["booked_at", "journal_transaction_id"]
        indexes = [models.Index(fields=["settlement", "booked_at"], name="settlement_line_time")]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    kind__in=[JournalKind.COMMISSION, JournalKind.REVERSAL],
                    net=F("gross") - F("commission") - F("delivery_fee") + F("price_advantage"),
                )
                | Q(
                    kind__in=[JournalKind.ADJUSTMENT, JournalKind.PAYOUT_FAILED],
                    gross=0,
                    price_advantage=0,
                )
                # Commission owed on a cash sale (or given back when it is undone): nothing was
                # captured, the vendor's payable moves by the commission alone.
                | Q(
                    kind__in=[JournalKind.CASH_COMMISSION, JournalKind.CASH_COMMISSION_UNDO],
                    gross=0,
                    delivery_fee=0,
                    price_advantage=0,
                    net=-F("commission"),
                ),
                name="settlement_line_parts_add_up",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.journal_transaction_id}: {self.net}"


class PayoutAccount(models.Model):
    """Where a vendor's payouts are sent (a bank account). Set by staff; each payout keeps a copy
    of the account it was sent to."""

    vendor = models.OneToOneField(
        "vendors.Vendor",
        on_delete=models.PROTECT,
        related_name="payout_account",
        verbose_name=_("vendor"),
    )
    bank = models.CharField(_("bank"), max_length=40)
    account_number = models.CharField(_("account number"), max_length=34)
    holder = models.CharField(_("account holder"), max_length=80)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("payout account")
        verbose_name_plural = _("payout accounts")
        ordering = ["vendor_id"]

    def __str__(self) -> str:
        return f"{self.bank} {self.account_number}"


class PayoutStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    SENT = "sent", _("Sent to the bank")
    PAID = "paid", _("Paid")
    FAILED = "failed", _("Failed: money back in the payable balance")


class Payout(models.Model):
    """The money of one settlement sent to the vendor's bank account through the provider.
    PENDING → SENT → PAID | FAILED, each move one guarded service in payments.payouts, booked in
    the ledger in the same database transaction: SENT `payout`, PAID `payout_paid`, FAILED
    `payout_failed` (the money returns to the vendor's payable balance, and the next settlement,
    or a retry by staff, pays it again). The provider's idempotency key is `payout-<id>`."""

    Status = PayoutStatus

    settlement = models.OneToOneField(
        Settlement, on_delete=models.PROTECT, related_name="payout", verbose_name=_("settlement")
    )
    vendor = models.ForeignKey(
        "vendors.Vendor", on_delete=models.PROTECT, related_name="payouts", verbose_name=_("vendor")
    )
    amount = models.BigIntegerField(_("amount"), help_text=_("In the currency's minor unit."))
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=PayoutStatus.choices,
        default=PayoutStatus.PENDING,
        db_index=True,
    )
    provider = models.CharField(_("provider"), max_length=20)
    provider_ref = models.CharField(_("provider reference"), max_length=64, blank=True)
    bank = models.CharField(_("bank"), max_length=40, blank=True)
    account_number = models.CharField(_("account number"), max_length=34, blank=True)
    holder = models.CharField(_("account holder"), max_length=80, blank=True)
    failure_code = models.CharField(_("failure code"), max_length=40, blank=True)
    failure_message = models.CharField(_("failure"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payout_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=PayoutStatus.values), name="payout_status_valid"
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_ref"],
                condition=~Q(provider_ref=""),
                name="payout_provider_ref_unique",
            ),
        ]

    def __str__(self) -> str:
        return str(
            _("Payout %(id)s to vendor %(vendor)s (%(period)s)")
            % {"id": self.pk, "vendor": self.vendor_id, "period": self.settlement.period_label}
        )

    @property
    def idempotency_key(self) -> str:
        return f"payout-{self.pk}"


class DisputeStatus(models.TextChoices):
    OPEN = "open", _("Open")
    RESOLVED = "resolved", _("Resolved")
    REJECTED = "rejected", _("Rejected")


class Dispute(models.Model):
    """A customer's report of a problem with a captured order, within DISPUTE_WINDOW_DAYS of the
    capture; at most one open per order. While it is open, the settlement listing the order is
    held. Staff resolve it (perhaps refunding part of the payment) or reject it; see
    payments.disputes."""

    Status = DisputeStatus

    order_id = models.BigIntegerField(_("order"), db_index=True)
    vendor_id = models.BigIntegerField(_("vendor"), null=True, blank=True, db_index=True)
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="disputes", verbose_name=_("payment")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=DisputeStatus.choices, default=DisputeStatus.OPEN
    )
    reason = models.TextField(_("what went wrong"), max_length=1000)
    opened_by = models.ForeignKey(
        "accounts.User",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("opened by"),
    )
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    resolved_by = models.ForeignKey(
        "accounts.User",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    resolution_note = models.TextField(_("resolution"), max_length=1000, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    refund = models.ForeignKey(
        Refund,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="disputes",
        verbose_name=_("refund"),
    )

    class Meta:
        verbose_name = _("dispute")
        verbose_name_plural = _("disputes")
        ordering = ["-opened_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["order_id"], condition=Q(status="open"), name="dispute_one_open_per_order"
            ),
            models.CheckConstraint(
                condition=Q(status__in=DisputeStatus.values), name="dispute_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="open", resolved_at__isnull=True)
                | (~Q(status="open") & Q(resolved_at__isnull=False)),
                name="dispute_resolved_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"dispute {self.pk} on order {self.order_id}"


class DiscrepancyKind(models.TextChoices):
    JOURNAL_UNBALANCED = "journal_unbalanced", _("Journal transaction does not balance")
    CAPTURE_MISMATCH = "capture_mismatch", _("Captured amount differs from the ledger")
    REFUND_MISMATCH = "refund_mismatch", _("Refunded amount differs from the ledger")
    CLEARING_NOT_ZERO = "clearing_not_zero", _("Clearing account does not net to zero")
    INTENT_MISMATCH = "intent_mismatch", _("Payment differs from the provider's intent")
    INTENT_MISSING = "intent_missing", _("Payment not found at the provider")
    INTENT_UNKNOWN = "intent_unknown", _("Provider intent unknown to the platform")
    PAYOUT_MISMATCH = "payout_mismatch", _("Payout differs from the provider's")
    PAYOUT_MISSING = "payout_missing", _("Payout not found at the provider")
    PAYOUT_UNKNOWN = "payout_unknown", _("Provider payout unknown to the platform")
    PROVIDER_FEE_MISMATCH = "provider_fee_mismatch", _("Provider fee differs from the ledger")
    ORDER_PAYMENT_MISMATCH = "order_payment", _("Order and payment disagree")
    EFFECT_FAILED = "effect_failed", _("An effect could not be carried out")
    # subscriptions.delivery.deliveries_check: a due day of a subscription without exactly one
    # settled Delivery (missing, or still "due" after its day). object_ref subscription:<id>:<day>.
    DELIVERY_INCOMPLETE = (
        "delivery_incomplete",
        _("A subscription's due day has no settled delivery"),
    )


class DiscrepancyStatus(models.TextChoices):
    OPEN = "open", _("Open")
    RESOLVED = "resolved", _("Resolved")


class Discrepancy(models.Model):
    """A difference the reconciliation found between the ledger, the payments and the provider's
    records. Never fixed silently: staff look into it and mark it resolved with a note. At most
    one open per kind and object, however often the reconciliation runs (`last_seen_at` moves)."""

    Kind = DiscrepancyKind
    Status = DiscrepancyStatus

    kind = models.CharField(_("kind"), max_length=24, choices=DiscrepancyKind.choices)
    object_ref = models.CharField(
        _("about"), max_length=100, help_text=_("e.g. payment:12, journal:40, intent:pi_…")
    )
    expected = models.CharField(_("expected"), max_length=100, blank=True)
    actual = models.CharField(_("actual"), max_length=100, blank=True)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    detected_at = models.DateTimeField(_("detected at"), default=timezone.now, db_index=True)
    last_seen_at = models.DateTimeField(_("last seen at"), default=timezone.now)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=DiscrepancyStatus.choices,
        default=DiscrepancyStatus.OPEN,
        db_index=True,
    )
    resolved_by = models.ForeignKey(
        "accounts.User",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    resolution_note = models.TextField(_("resolution"), max_length=1000, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("discrepancy")
        verbose_name_plural = _("discrepancies")
        ordering = ["-detected_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "object_ref"],
                condition=Q(status="open"),
                name="discrepancy_one_open_per_object",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=DiscrepancyKind.values), name="discrepancy_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=DiscrepancyStatus.values),
                name="discrepancy_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.summary

    @property
    def about(self) -> str:
        """What it is about, readable: "payment 12" for payment:12."""
        kind, _sep, ref = self.object_ref.partition(":")
        return f"{kind.replace('_', ' ')} {ref}".strip()

    @property
    def summary(self) -> str:
        """One sentence: what differs, about what, expected and found."""
        text = _("%(kind)s, %(about)s.") % {"kind": self.get_kind_display(), "about": self.about}
        if self.expected or self.actual:
            text += " " + _("Expected: %(expected)s; found: %(actual)s.") % {
                "expected": _readable_figure(self.expected),
                "actual": _readable_figure(self.actual),
            }
        return str(text)


# How the reconciliation writes a payment's or an intent's state: "<status> captured N refunded M".
_PAYMENT_FIGURE = re.compile(
    r"^(?P<status>\w+) captured (?P<captured>-?\d+) refunded (?P<refunded>-?\d+)$"
)


def _readable_figure(figure: str) -> str:
    """A figure of a discrepancy as words: "captured captured 3200 refunded 0" reads "Captured:
    3200 captured, 0 refunded"."""
    if not figure:
        return "—"
    match = _PAYMENT_FIGURE.match(figure)
    if match is None:
        return figure
    status = match["status"]
    label = PaymentStatus(status).label if status in PaymentStatus.values else status
    return str(
        _("%(status)s: %(captured)s captured, %(refunded)s refunded")
        % {"status": label, "captured": match["captured"], "refunded": match["refunded"]}
    )


# --- the customer vault: saved cards and off-session charges --------------------------------------


class VaultCustomer(models.Model):
    """A platform customer's account at a payment provider, which owns their saved cards. Made
    once per (customer, provider) the first time they save a card there."""

    customer = models.ForeignKey(
        "customers.CustomerProfile", on_delete=models.CASCADE, related_name="vault_accounts"
    )
    provider = models.CharField(_("provider"), max_length=20)
    provider_ref = models.CharField(_("provider reference"), max_length=64)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer at the provider")
        verbose_name_plural = _("customers at the provider")
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "provider"], name="vault_customer_once_per_provider"
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_ref"], name="vault_customer_ref_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.provider_ref}"


class CardSetup(models.Model):
    """One visit to the provider's hosted "save a card" page, started by payments.vault
    .card_setup_start. Only the customer who started it can complete it (card_setup_complete reads
    the outcome from the provider, never from the browser); completed once."""

    customer = models.ForeignKey(
        "customers.CustomerProfile", on_delete=models.CASCADE, related_name="card_setups"
    )
    provider = models.CharField(_("provider"), max_length=20)
    provider_ref = models.CharField(_("provider reference"), max_length=64)
    url = models.URLField(_("setup page"), max_length=500)
    card = models.ForeignKey(
        "SavedCard", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("card setup")
        verbose_name_plural = _("card setups")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_ref"], name="card_setup_ref_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.provider_ref}"


class SavedCardStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    # Removed by the customer (detached at the provider too): never charged again.
    DETACHED = "detached", _("Removed")
    # Its last charge was declined hard or needed the card holder: kept, shown with a warning,
    # and not charged again until the customer fixes it (adds a card or confirms a payment).
    NEEDS_ATTENTION = "needs_attention", _("Needs attention")


class SavedCard(models.Model):
    """A card a customer saved at a provider for later off-session payments (subscriptions).
    We keep only the provider's token (payment_method_ref) and what the customer recognises the
    card by; the number never reaches the platform. At most one ACTIVE card per customer is the
    default. Status moves only through payments.vault (guarded UPDATEs)."""

    Status = SavedCardStatus

    customer = models.ForeignKey(
        "customers.CustomerProfile", on_delete=models.CASCADE, related_name="saved_cards"
    )
    provider = models.CharField(_("provider"), max_length=20)
    provider_customer_ref = models.CharField(_("customer at the provider"), max_length=64)
    payment_method_ref = models.CharField(_("card token"), max_length=64)
    brand = models.CharField(_("card brand"), max_length=20, blank=True)
    last4 = models.CharField(_("card ending"), max_length=4)
    exp_month = models.PositiveSmallIntegerField(_("expiry month"))
    exp_year = models.PositiveSmallIntegerField(_("expiry year"))
    is_default = models.BooleanField(_("default"), default=False)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("saved card")
        verbose_name_plural = _("saved cards")
        ordering = ["-is_default", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "payment_method_ref"], name="saved_card_token_unique"
            ),
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(is_default=True, status="active"),
                name="saved_card_one_default",
            ),
            models.CheckConstraint(
                condition=Q(exp_month__gte=1, exp_month__lte=12), name="saved_card_exp_month"
            ),
            models.CheckConstraint(
                condition=Q(status__in=SavedCardStatus.values), name="saved_card_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4}"


class CardChargeOutcome(models.TextChoices):
    SENT = "sent", _("Sent, no answer yet")
    AUTHORISED = "authorised", _("Authorised")
    CAPTURED = "captured", _("Captured")
    DECLINED = "declined", _("Declined")
    AUTHENTICATION_REQUIRED = "authentication_required", _("Needs the card holder")


class CardCharge(models.Model):
    """One attempt to charge a saved card off-session for an order's payment
    (payments.vault.payment_charge_off_session). The caller's idempotency key is unique: the same
    key never charges twice, it returns the recorded outcome (or, if the answer was lost, asks the
    provider again with the same key). Declines carry their kind, which decides a retry
    (charge_retry_at): "hard" never, "soft" on the schedule, "authentication_required" only when
    the card holder confirms on action_url. The order's payment stays PENDING after a decline; the
    caller decides what the order does."""

    Outcome = CardChargeOutcome

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="card_charges")
    card = models.ForeignKey(SavedCard, on_delete=models.PROTECT, related_name="charges")
    idempotency_key = models.CharField(_("idempotency key"), max_length=100, unique=True)
    outcome = models.CharField(
        _("outcome"), max_length=24, choices=Outcome.choices, default=Outcome.SENT
    )
    decline_kind = models.CharField(_("decline kind"), max_length=24, blank=True)
    failure_code = models.CharField(_("failure code"), max_length=40, blank=True)
    failure_message = models.CharField(_("failure"), max_length=200, blank=True)
    action_url = models.URLField(_("confirmation page"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("card charge")
        verbose_name_plural = _("card charges")
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=CardChargeOutcome.values), name="card_charge_outcome_valid"
            ),
            models.CheckConstraint(
                condition=Q(decline_kind__in=["", "hard", "soft", "authentication_required"]),
                name="card_charge_decline_kind_valid",
            ),
            # One attempt in flight per payment: two racing charges for one order can't both
            # reach the provider (and open two intents for it).
            models.UniqueConstraint(
                fields=["payment"], condition=Q(outcome="sent"), name="card_charge_one_in_flight"
            ),
        ]

    def __str__(self) -> str:
        return f"charge {self.idempotency_key}: {self.outcome}"
