"""Regulars: a customer's standing order with one vendor, and each of its deliveries.

- `Subscription`: who (customer), from whom (vendor), where (an address in the vendor's area), what
  (`SubscriptionItem` lines with a unit price snapshotted when chosen), when (the schedule: weekdays
  as a bitmask, or every N days from an anchor; `schedule_from` is the first day the current
  schedule governs — earlier days are already recorded as `Delivery` rows), on which plan (a key
  of settings.SUBSCRIPTION_PLANS; the plan's terms are snapshotted on the row so a later change of
  settings never re-prices a running commitment), and the customer's policies for a short cart and
  for not being at home. The state is one field, changed only by subscriptions.services with the
  allowed from-state in the UPDATE's WHERE.
- `SubscriptionSkip`: a day the customer asked not to be delivered (unique per subscription+day).
- `Delivery`: the exactly-once record of one due day of one subscription, unique on
  (subscription, date). Beat inserts it ("due", or "skipped" when a skip exists) with
  INSERT … ON CONFLICT DO NOTHING; the order made for it hangs off `order`
  (subscriptions/delivery.py: the evening notice, the morning order and its off-session charge,
  the nightly completeness check that proves each due day has exactly one settled row).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .calendar import Schedule, weekdays_of

PLAN_LABELS = {
    "anytime": _("Cancel anytime"),
    "commit_3m": _("3-month commitment"),
    "commit_6m": _("6-month commitment"),
}


def plan_choices() -> list[tuple[str, str]]:
    """The plans offered (settings.SUBSCRIPTION_PLANS), labelled for people."""
    return [(kind, str(PLAN_LABELS.get(kind, kind))) for kind in settings.SUBSCRIPTION_PLANS]


class FeeStatus(models.TextChoices):
    CHARGING = "charging", _("being charged")
    PAID = "paid", _("paid")
    UNPAID = "unpaid", _("not paid")
    WAIVED = "waived", _("waived")


class Subscription(models.Model):
    FeeStatus = FeeStatus

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        PAUSED = "paused", _("paused")
        CANCELLED = "cancelled", _("cancelled")

    class Shortage(models.TextChoices):
        SUPPLY_WHAT_YOU_CAN = "supply", _("Deliver what there is, charge only that")
        SKIP = "skip", _("Skip the delivery")

    class NotAtHome(models.TextChoices):
        LEAVE_AT_DOOR = "door", _("Leave it at the door")
        TRY_TOMORROW = "tomorrow", _("Try again tomorrow")
        REFUND = "refund", _("Refund it")

    customer = models.ForeignKey(
        "customers.CustomerProfile", on_delete=models.PROTECT, related_name="subscriptions"
    )
    vendor = models.ForeignKey(
        "vendors.Vendor", on_delete=models.PROTECT, related_name="subscriptions"
    )
    address = models.ForeignKey(
        "customers.Address", on_delete=models.PROTECT, related_name="subscriptions"
    )
    plan = models.CharField(_("plan"), max_length=20)
    # The plan's terms when subscribed (settings may change later; a commitment keeps its terms).
    plan_months = models.PositiveSmallIntegerField(default=0)
    discount_bps = models.PositiveIntegerField(default=0)
    cancel_fee_bps = models.PositiveIntegerField(default=0)
    starts_on = models.DateField(_("starts on"))
    commitment_ends_on = models.DateField(
        _("commitment ends on"), null=True, blank=True, help_text=_("First day without commitment")
    )
    # The schedule: weekdays bitmask (bit 0 = Monday) XOR every N days from an anchor date.
    weekdays = models.PositiveSmallIntegerField(_("weekdays"), default=0)
    every_n_days = models.PositiveSmallIntegerField(_("every N days"), null=True, blank=True)
    anchor = models.DateField(_("counted from"), null=True, blank=True)
    schedule_from = models.DateField(_("schedule in force from"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE
    )
    # A pause is the half-open window [paused_from, paused_until); paused_until None: until resumed.
    paused_from = models.DateField(_("paused from"), null=True, blank=True)
    paused_until = models.DateField(
        _("paused until"), null=True, blank=True, help_text=_("The first day delivered again")
    )
    # Why it is paused when the platform paused it (a delivery's payment failed:
    # subscription_pause_for_payment); blank for the customer's own pause. Cleared on resume.
    pause_reason = models.CharField(_("why paused"), max_length=200, blank=True)
    shortage_policy = models.CharField(
        _("when stock is short"),
        max_length=10,
        choices=Shortage.choices,
        default=Shortage.SUPPLY_WHAT_YOU_CAN,
    )
    not_at_home_policy = models.CharField(
        _("when nobody is at home"),
        max_length=10,
        choices=NotAtHome.choices,
        default=NotAtHome.LEAVE_AT_DOOR,
    )
    # The saved card each delivery is charged to off-session (one of the customer's, ACTIVE when
    # chosen: subscription_create checks). PROTECT, not SET_NULL: a SavedCard is never deleted
    # (removing one is its DETACHED status, and its CardCharge history points at it), so deleting
    # one is a mistake to refuse loudly, not a reason to leave a subscription silently chargeless.
    # Null only for rows made before cards existed; the charge treats that as "no usable card".
    # The column is still `card_id` (it was a plain BigIntegerField before migration 0002).
    card = models.ForeignKey(
        "payments.SavedCard",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="subscriptions",
        verbose_name=_("saved card"),
    )
    # The wellbeing check (opt-in, by the subscriber or with the subscriber's consent): at each
    # delivery the vendor notes "all well" or a concern; a concern or deliveries piling up at the
    # door tell the named contact at once. Never shown publicly; every flag is a WellbeingFlag.
    wellbeing_check = models.BooleanField(_("wellbeing check"), default=False)
    wellbeing_contact_name = models.CharField(_("contact's name"), max_length=100, blank=True)
    wellbeing_contact_email = models.EmailField(_("contact's e-mail"), blank=True)
    wellbeing_consent_at = models.DateTimeField(_("subscriber agreed at"), null=True, blank=True)
    cancellation_fee = models.BigIntegerField(_("cancellation fee"), default=0)
    # The fee's collection (subscriptions/fees.py): charged off-session to the card after the
    # cancel's commit, tried again after a soft decline; "unpaid" keeps why, for staff.
    fee_status = models.CharField(
        _("cancellation fee status"),
        max_length=10,
        choices=FeeStatus.choices,
        blank=True,
        default="",
    )
    fee_note = models.CharField(_("cancellation fee note"), max_length=200, blank=True)
    currency = models.CharField(max_length=3, default="KRW", editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "vendor"], name="subscription_status_vendor")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(every_n_days__isnull=True, anchor__isnull=True, weekdays__gt=0)
                    & Q(weekdays__lte=127)
                )
                | Q(every_n_days__gte=1, anchor__isnull=False, weekdays=0),
                name="subscription_one_schedule",
            ),
            models.CheckConstraint(
                condition=Q(cancellation_fee__gte=0), name="subscription_fee_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(fee_status="") | Q(status="cancelled", cancellation_fee__gt=0),
                name="subscription_fee_status_only_with_a_fee",
            ),
            models.CheckConstraint(
                condition=Q(status="cancelled", cancelled_at__isnull=False)
                | (~Q(status="cancelled") & Q(cancelled_at__isnull=True)),
                name="subscription_cancelled_at_iff_cancelled",
            ),
            models.CheckConstraint(
                condition=Q(wellbeing_check=False)
                | Q(wellbeing_consent_at__isnull=False) & ~Q(wellbeing_contact_email=""),
                name="subscription_wellbeing_has_consent_and_contact",
            ),
            models.CheckConstraint(
                condition=Q(status="paused", paused_from__isnull=False)
                | (~Q(status="paused") & Q(paused_from__isnull=True, paused_until__isnull=True)),
                name="subscription_pause_window_iff_paused",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.customer} ← {self.vendor}"

    @property
    def schedule(self) -> Schedule:
        return Schedule(weekdays=self.weekdays, every_n_days=self.every_n_days, anchor=self.anchor)

    @property
    def weekday_list(self) -> list[int]:
        return weekdays_of(self.weekdays)

    @property
    def plan_label(self) -> str:
        return str(PLAN_LABELS.get(self.plan, self.plan))


class SubscriptionItem(models.Model):
    """One product of a subscription, with its quantity per delivery and the unit price the
    customer agreed to (snapshotted; a later price change is a separate, announced change)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey("vendors.Product", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveSmallIntegerField(_("quantity"))
    unit_price = models.PositiveIntegerField(_("unit price"))

    class Meta:
        verbose_name = _("subscription item")
        verbose_name_plural = _("subscription items")
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "product"], name="subscription_item_once"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="subscription_item_qty"),
        ]

    def __str__(self) -> str:
        return f"{self.product} × {self.quantity}"

    @property
    def line_total(self) -> int:
        return self.quantity * self.unit_price


class SubscriptionSkip(models.Model):
    """A due day the customer will not take."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="skips")
    date = models.DateField(_("date"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("skipped day")
        verbose_name_plural = _("skipped days")
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "date"], name="subscription_skip_once")
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.date}"


class SubscriptionPause(models.Model):
    """Every pause a subscription had, kept after it ends: the half-open window [starts_on,
    ends_on) (ends_on: the first day delivered again; null while open-ended). The nightly
    completeness check reads these, so the days of a pause that is over are not taken for missed
    deliveries. Written by subscriptions.services with each pause and resume."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="pauses")
    starts_on = models.DateField(_("from"))
    ends_on = models.DateField(_("until"), null=True, blank=True)
    reason = models.CharField(_("why"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("pause")
        verbose_name_plural = _("pauses")
        ordering = ["starts_on", "pk"]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.starts_on}–{self.ends_on or ''}"


class Delivery(models.Model):
    """One due day of one subscription: exactly one row per (subscription, date).

    due -> ordered (its order made by subscriptions.delivery.deliveries_place) | skipped (the customer skipped, or stock was
    short under the "skip" policy) | failed (no order could be made or paid; `reason` says why) |
    cancelled (the subscription was paused or cancelled after the row was made).
    An ordered Delivery may still end failed (its charge was declined for good: the order failed
    and the subscription paused) or cancelled (paused before its charge). `reason` says why, in
    words for staff (the customer's e-mail has its own).

    Its order and charge: subscriptions/delivery.py (the services) and subscriptions/effects.py
    (the `subscription.charge` effect, one row per try, keyed delivery:<id>:charge:<n>).
    """

    class Status(models.TextChoices):
        DUE = "due", _("due")
        ORDERED = "ordered", _("ordered")
        SKIPPED = "skipped", _("skipped")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="deliveries"
    )
    date = models.DateField(_("date"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DUE
    )
    order = models.OneToOneField(
        "orders.Order",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="subscription_delivery",
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["date", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "date"], name="delivery_once_per_day"),
            models.CheckConstraint(
                condition=Q(status="ordered", order__isnull=False) | ~Q(status="ordered"),
                name="delivery_ordered_has_order",
            ),
        ]
        indexes = [models.Index(fields=["date", "status"], name="delivery_date_status")]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.date} {self.status}"


class RoundAction(models.Model):
    """One tap on the vendor's round (subscriptions/round.py), made on the phone with its own id
    (`client_id`, a UUID the phone makes) and replayed when the phone is back online: the id makes
    a replay return the first answer instead of acting twice. `outcome` is what came of it:
    the stop's result, or "superseded" when another tap (another phone) had settled the stop first
    (`stop_outcome` then says what that was). One applied result per order and round day."""

    class Action(models.TextChoices):
        DELIVERED = "delivered", _("delivered")
        NOT_HOME = "not_home", _("nobody at home")

    class Outcome(models.TextChoices):
        DELIVERED = "delivered", _("delivered")
        LEFT_AT_DOOR = "left_at_door", _("left at the door")
        RETRY_TOMORROW = "retry_tomorrow", _("to be tried again tomorrow")
        REFUNDED = "refunded", _("not left, refunded")
        SUPERSEDED = "superseded", _("already settled by another tap")
        REFUSED = "refused", _("refused")

    client_id = models.UUIDField(unique=True)
    vendor = models.ForeignKey("vendors.Vendor", on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="+")
    round_date = models.DateField(_("round of"))
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    applied = models.BooleanField(default=False)
    detail = models.CharField(_("detail"), max_length=200, blank=True)
    tapped_at = models.DateTimeField(_("tapped at"), help_text=_("phone's clock"))
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("round action")
        verbose_name_plural = _("round actions")
        ordering = ["-recorded_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "round_date"],
                condition=Q(applied=True),
                name="round_action_one_result_per_stop",
            )
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.round_date} {self.outcome}"


class WellbeingFlag(models.Model):
    """What the vendor saw at a subscriber's door, for the wellbeing check: recorded always, and
    a concern or uncollected deliveries tell the named contact (e-mail and a partner event)."""

    class Kind(models.TextChoices):
        WELL = "well", _("saw them, all well")
        CONCERN = "concern", _("a concern")
        UNCOLLECTED = "uncollected", _("earlier deliveries still at the door")

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="wellbeing_flags"
    )
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    note = models.CharField(_("note"), max_length=200, blank=True)
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    contact_told = models.BooleanField(_("contact told"), default=False)

    class Meta:
        verbose_name = _("wellbeing flag")
        verbose_name_plural = _("wellbeing flags")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.kind}"

    @property
    def is_alert(self) -> bool:
        return self.kind != self.Kind.WELL


class WellbeingRequest(models.Model):
    """Someone close to a subscriber (family, the district office) asks for the wellbeing check on
    the subscriber's deliveries. Nothing happens without the subscriber's consent: they get an
    e-mail with a link (the token), and only their "yes" turns the check on with the requester as
    the contact (subscriptions/wellbeing.py). The asker is never told whether the e-mail address
    they gave belongs to a subscriber: a request that matches no one is not even stored."""

    class Relation(models.TextChoices):
        FAMILY = "family", _("family member")
        DISTRICT_OFFICE = "district", _("district office or community centre")
        OTHER = "other", _("someone else close to them")

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting for the subscriber")
        ACCEPTED = "accepted", _("agreed")
        DECLINED = "declined", _("declined")

    customer = models.ForeignKey(
        "customers.CustomerProfile", on_delete=models.CASCADE, related_name="wellbeing_requests"
    )
    token = models.UUIDField(_("token"), unique=True, editable=False)
    requester_name = models.CharField(_("asked by"), max_length=100)
    requester_email = models.EmailField(_("their e-mail"))
    relation = models.CharField(_("relation"), max_length=10, choices=Relation.choices)
    message = models.CharField(_("message"), max_length=300, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="wellbeing_requests",
        help_text=_("The subscription the subscriber turned the check on for."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    decided_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("wellbeing check request")
        verbose_name_plural = _("wellbeing check requests")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="pending", decided_at__isnull=True, subscription__isnull=True)
                | Q(status="declined", decided_at__isnull=False, subscription__isnull=True)
                | Q(status="accepted", decided_at__isnull=False, subscription__isnull=False),
                name="wellbeing_request_answer_consistent",
            )
        ]

    def __str__(self) -> str:
        return f"{self.requester_email} → {self.customer_id} ({self.status})"
