"""Payments in the admin: read-only records; every change goes through an action that calls a
service (capture, void, refund what is left, sync with the provider)."""

from collections.abc import Callable
from datetime import datetime, time

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from o2o.money import format_money
from vendors.models import Vendor

from . import disputes, ledger, payouts, reconciliation, selectors, services, settlement
from .models import (
    CardCharge,
    CardSetup,
    CommissionPlan,
    Discrepancy,
    Dispute,
    JournalTransaction,
    LedgerAccount,
    LedgerEntry,
    Payment,
    Payout,
    PayoutAccount,
    Refund,
    SavedCard,
    Settlement,
    SettlementLine,
    VaultCustomer,
    WebhookEvent,
)
from .tasks import payout_send_later


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by services: viewable, never added, edited or deleted by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0
    fields = ("amount", "reason", "status", "provider_ref", "created_at", "succeeded_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _run(modeladmin, request, queryset, action: Callable[[Payment], object], done: str) -> None:
    count = 0
    for payment in queryset.order_by("pk"):
        try:
            action(payment)
        except ValidationError as exc:
            modeladmin.message_user(request, f"{payment}: {exc.messages[0]}", messages.WARNING)
        else:
            count += 1
    if count:
        modeladmin.message_user(
            request,
            ngettext("%(n)d payment: %(done)s", "%(n)d payments: %(done)s", count)
            % {"n": count, "done": done},
            messages.SUCCESS,
        )


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("pk", "order_id", "money", "status", "provider", "provider_ref", "created_at")
    list_filter = ("status", "provider")
    search_fields = ("=order_id", "provider_ref")
    date_hierarchy = "created_at"
    inlines = [RefundInline]
    actions = ["capture", "void", "refund_rest", "sync"]
    fields = (
        "order_id",
        ("amount", "currency"),
        "status",
        ("provider", "provider_ref"),
        "checkout_url",
        ("amount_captured", "amount_refunded", "provider_fee"),
        ("card_brand", "card_last4"),
        ("failure_code", "failure_message"),
        ("created_at", "authorised_at", "captured_at", "closed_at", "updated_at"),
    )

    def has_change_permission(self, request, obj=None) -> bool:
        # The list's actions need "change"; a single record is only ever viewed.
        return obj is None and request.user.has_perm("payments.change_payment")

    @admin.display(description=_("amount"), ordering="amount")
    def money(self, obj: Payment) -> str:
        return format_money(obj.amount, obj.currency)

    @admin.action(description=_("Capture the authorised money"), permissions=["change"])
    def capture(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            lambda p: services.payment_capture(payment_id=p.pk),
            str(_("captured")),
        )

    @admin.action(description=_("Void (release) the authorisation"), permissions=["change"])
    def void(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            lambda p: services.payment_void(payment_id=p.pk),
            str(_("voided")),
        )

    @admin.action(description=_("Refund everything not yet refunded"), permissions=["change"])
    def refund_rest(self, request, queryset):
        def refund(p: Payment) -> object:
            return services.payment_refund(
                payment_id=p.pk, amount=p.refundable, reason=f"by {request.user.email} (admin)"
            )

        _run(self, request, queryset, refund, str(_("refunded")))

    @admin.action(description=_("Sync with the provider"), permissions=["change"])
    def sync(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            lambda p: services.payment_sync(payment_id=p.pk),
            str(_("synced")),
        )


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("pk", "payment", "amount", "status", "reason", "provider_ref", "created_at")
    list_filter = ("status",)
    search_fields = ("provider_ref", "reason")
    raw_id_fields = ("payment",)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "provider", "type", "object_ref", "received_at", "processed_at")
    list_filter = ("provider", "type")
    search_fields = ("event_id", "object_ref")
    date_hierarchy = "received_at"


# --- commission plans ----------------------------------------------------------------------------


@admin.register(CommissionPlan)
class CommissionPlanAdmin(admin.ModelAdmin):
    """Staff add plans; a plan already in force can only be ended (valid until), never rewritten,
    so every order keeps the rate it was placed with (snapshotted on its lines anyway)."""

    list_display = ("__str__", "vendor", "category", "bps", "valid_from", "valid_until", "note")
    list_filter = ("category",)
    search_fields = ("vendor__name", "note")
    raw_id_fields = ("vendor",)
    date_hierarchy = "valid_from"

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.valid_from <= timezone.now():
            return ("vendor", "category", "bps", "valid_from", "created_at")
        return ("created_at",)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.valid_from <= timezone.now():
            return False
        return super().has_delete_permission(request, obj)


# --- the ledger (read-only: it is written by services only) --------------------------------------


class LedgerEntryInline(admin.TabularInline):
    model = LedgerEntry
    extra = 0
    fields = ("account", "side", "amount")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "kind", "currency", "vendor", "balance")
    list_filter = ("kind", "currency")
    search_fields = ("code", "name")

    @admin.display(description=_("balance"))
    def balance(self, obj: LedgerAccount) -> str:
        return format_money(ledger.balance(obj), obj.currency)


@admin.register(JournalTransaction)
class JournalTransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "kind",
        "key",
        "order_id",
        "vendor_id",
        "memo",
        "created_by",
        "created_at",
    )
    list_filter = ("kind", "currency")
    search_fields = ("key", "=order_id", "memo")
    date_hierarchy = "created_at"
    inlines = [LedgerEntryInline]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("pk", "transaction", "account", "side", "amount")
    list_filter = ("side", "account__kind")
    search_fields = ("account__code", "transaction__key")
    list_select_related = ("transaction", "account")


# --- settlements, payouts, disputes, discrepancies -----------------------------------------------


def _each(modeladmin, request, queryset, action: Callable, done: Callable[[int], str]) -> None:
    """Run a service on each selected object; a refusal is a warning naming the object."""
    count = 0
    for obj in queryset.order_by("pk"):
        try:
            action(obj)
        except ValidationError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.messages[0]}", messages.WARNING)
        else:
            count += 1
    if count:
        modeladmin.message_user(request, done(count), messages.SUCCESS)


def _note_page(modeladmin, request, queryset, *, form, action, title, intro, submit):
    """The intermediate page of an action that asks for a note (and perhaps more) first."""
    return TemplateResponse(
        request,
        "admin/payments/note_action.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "intro": intro,
            "submit": submit,
            "opts": modeladmin.model._meta,
            "objects": queryset.order_by("pk"),
            "form": form,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        },
    )


def _wait_text(wait: selectors.PayoutWait | None) -> str:
    """A few words in a list's column; the whole sentence as its tooltip and on the record."""
    if wait is None:
        return "—"
    return format_html('<span title="{}">{}</span>', wait.message, wait.short)


class SettlementLineInline(admin.TabularInline):
    model = SettlementLine
    extra = 0
    fields = (
        "booked_at",
        "kind",
        "order_id",
        "refund_id",
        "gross",
        "commission",
        "delivery_fee",
        "net",
        "journal_transaction",
    )
    readonly_fields = fields
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class PayoutInline(admin.StackedInline):
    model = Payout
    extra = 0
    fields = ("status", "amount", "provider_ref", "failure_message", "sent_at", "paid_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Settlement)
class SettlementAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "vendor",
        "period_start",
        "kind",
        "status",
        "gross",
        "refunds",
        "commission",
        "net_money",
        "line_count",
    )
    list_filter = ("status", "kind", "currency")
    search_fields = ("=vendor__id", "vendor__name")
    list_select_related = ("vendor",)
    date_hierarchy = "period_start"
    inlines = [PayoutInline, SettlementLineInline]
    change_list_template = "admin/payments/settlement/change_list.html"

    def get_list_display(self, request):
        shown = list(super().get_list_display(request))
        shown.insert(shown.index("status") + 1, "wait_reason")  # on a phone's first screen
        return shown

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "wait_detail"]

    @admin.display(description=_("net"), ordering="net")
    def net_money(self, obj: Settlement) -> str:
        return format_money(obj.net, obj.currency)

    @admin.display(description=_("why the payout waits"))
    def wait_reason(self, obj: Settlement) -> str:
        return _wait_text(selectors.settlement_wait(settlement=obj))

    @admin.display(description=_("why the payout waits"))
    def wait_detail(self, obj: Settlement) -> str:
        wait = selectors.settlement_wait(settlement=obj)
        return wait.message if wait else "—"

    def get_urls(self):
        view = self.admin_site.admin_view(self.settle_now_view)
        return [
            path("settle-now/", view, name="payments_settlement_settle_now"),
            *super().get_urls(),
        ]

    @staticmethod
    def _queue_payouts(*, vendor_id: int | None) -> tuple[int, int]:
        """Queue the sending (durable effects) of the payouts due (of one vendor, or all) that
        can go now; (queued, waiting for something) by payouts.payout_waits_for."""
        queued = waiting = 0
        due = Payout.objects.filter(pk__in=payouts.payouts_due()).select_related("settlement")
        if vendor_id is not None:
            due = due.filter(vendor_id=vendor_id)
        with transaction.atomic():
            for payout in due.order_by("pk"):
                if payouts.payout_waits_for(payout) is None:
                    payout_send_later(payout.pk)
                    queued += 1
                else:
                    waiting += 1
        return queued, waiting

    def settle_now_view(self, request):
        """Staff settle an ended period now, for every vendor or one, after confirming: the same
        service the beat's run uses (settlement.settlements_settle); payouts due are queued to
        be sent as durable effects."""
        if not request.user.has_perm("payments.change_payout"):
            raise PermissionDenied
        form = SettleNowForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            period = form.cleaned_data["period"]
            vendor = form.cleaned_data["vendor"]
            counts = settlement.settlements_settle(
                period=period, vendor_id=vendor.pk if vendor else None
            )
            queued, waiting = self._queue_payouts(vendor_id=vendor.pk if vendor else None)
            made = sum(
                v for k, v in counts.items() if k not in ("nothing_new", "released_from_hold")
            )
            start = date_format(timezone.localtime(period.start).date(), "DATE_FORMAT")
            summary = [
                _("Settled the period from %(start)s.") % {"start": start},
                ngettext("%d settlement made.", "%d settlements made.", made) % made,
                ngettext("%d payout queued to send.", "%d payouts queued to send.", queued)
                % queued,
            ]
            if counts["released_from_hold"]:
                n = counts["released_from_hold"]
                summary.append(ngettext("%d released from hold.", "%d released from hold.", n) % n)
            self.message_user(request, " ".join(str(x) for x in summary), messages.SUCCESS)
            if waiting:
                self.message_user(
                    request,
                    ngettext(
                        "%d payout waits: see why in the payouts list.",
                        "%d payouts wait: see why in the payouts list.",
                        waiting,
                    )
                    % waiting,
                    messages.WARNING,
                )
            return redirect("admin:payments_settlement_changelist")
        return TemplateResponse(
            request,
            "admin/payments/settle_now.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Settle now"),
                "opts": self.model._meta,
                "form": form,
            },
        )


class SettleNowForm(forms.Form):
    """Which ended period to settle (a day in it, local time) and for whom, confirmed."""

    day = forms.DateField(
        label=_("A day of the period"),
        help_text=_("Local date (Korea time). The period that contains it must have ended."),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    vendor = forms.ModelChoiceField(
        label=_("Vendor"),
        queryset=Vendor.objects.order_by("name"),
        required=False,
        empty_label=_("Every vendor"),
    )
    confirm = forms.BooleanField(
        label=_(
            "Settle this period now. Settlements are never edited afterwards; their payouts are "
            "sent to the vendors' bank accounts."
        )
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["day"].initial = settlement.last_ended_period().start.date()

    def clean(self) -> dict:
        data = super().clean() or {}
        day = data.get("day")
        if day is not None:
            moment = timezone.make_aware(datetime.combine(day, time(12)))
            period = settlement.period_of(moment)
            if period.end > timezone.now():
                raise forms.ValidationError(
                    _("The period of %(day)s has not ended yet; it is settled after %(end)s.")
                    % {
                        "day": date_format(day, "SHORT_DATE_FORMAT"),
                        "end": date_format(timezone.localtime(period.end), "SHORT_DATETIME_FORMAT"),
                    }
                )
            data["period"] = period
        return data


@admin.register(SettlementLine)
class SettlementLineAdmin(ReadOnlyAdmin):
    list_display = ("pk", "settlement", "kind", "order_id", "gross", "commission", "net")
    list_filter = ("kind",)
    search_fields = ("=order_id", "=settlement__id")
    list_select_related = ("settlement",)


@admin.register(PayoutAccount)
class PayoutAccountAdmin(admin.ModelAdmin):
    """Where each vendor's payouts go. A payout keeps a copy of the account it was sent to."""

    list_display = ("vendor", "bank", "account_number", "holder", "updated_at")
    search_fields = ("vendor__name", "account_number", "holder")
    raw_id_fields = ("vendor",)


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    """Payouts move only through payments.payouts. "Retry" pays a FAILED payout's money again at
    once, as a new payout (of a RETRY settlement); left alone, the next period's settlement pays
    it."""

    list_display = (
        "pk",
        "vendor",
        "money",
        "status",
        "settlement",
        "provider_ref",
        "failure_message",
        "created_at",
    )
    list_filter = ("status", "provider")
    search_fields = ("=vendor__id", "vendor__name", "provider_ref")
    list_select_related = ("vendor", "settlement")
    date_hierarchy = "created_at"
    actions = ["send", "sync", "retry"]

    def get_list_display(self, request):
        shown = list(super().get_list_display(request))
        shown.insert(shown.index("status") + 1, "wait_reason")  # on a phone's first screen
        return shown

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "wait_detail"]

    @admin.display(description=_("why it waits"))
    def wait_reason(self, obj: Payout) -> str:
        return _wait_text(selectors.payout_wait(payout=obj))

    @admin.display(description=_("why it waits"))
    def wait_detail(self, obj: Payout) -> str:
        wait = selectors.payout_wait(payout=obj)
        return wait.message if wait else "—"

    def has_change_permission(self, request, obj=None) -> bool:
        # The list's actions need "change"; a single record is only ever viewed.
        return obj is None and request.user.has_perm("payments.change_payout")

    @admin.display(description=_("amount"), ordering="amount")
    def money(self, obj: Payout) -> str:
        return format_money(obj.amount, obj.currency)

    @admin.action(description=_("Send pending payouts now"), permissions=["change"])
    def send(self, request, queryset):
        _each(
            self,
            request,
            queryset,
            lambda p: payouts.payout_send(payout_id=p.pk),
            lambda n: ngettext("%d payout sent.", "%d payouts sent.", n) % n,
        )

    @admin.action(description=_("Fetch the state of payouts in transit"), permissions=["change"])
    def sync(self, request, queryset):
        _each(
            self,
            request,
            queryset,
            lambda p: payouts.payout_sync(payout_id=p.pk),
            lambda n: ngettext("%d payout synced.", "%d payouts synced.", n) % n,
        )

    @admin.action(description=_("Retry failed payouts (a new payout)"), permissions=["change"])
    def retry(self, request, queryset):
        def retry_one(p: Payout) -> None:
            with transaction.atomic():  # the new payout and the effect that sends it, together
                new = payouts.payout_retry(payout_id=p.pk, actor=request.user)
                payout_send_later(new.pk)

        _each(
            self,
            request,
            queryset,
            retry_one,
            lambda n: (
                ngettext(
                    "%d failed payout is being paid again.",
                    "%d failed payouts are being paid again.",
                    n,
                )
                % n
            ),
        )


class DisputeResolveForm(forms.Form):
    outcome = forms.ChoiceField(
        label=_("Outcome"),
        choices=[
            (Dispute.Status.RESOLVED, _("Resolved")),
            (Dispute.Status.REJECTED, _("Rejected")),
        ],
    )
    note = forms.CharField(
        label=_("Resolution note"), widget=forms.Textarea(attrs={"rows": 3}), max_length=1000
    )
    refund_amount = forms.IntegerField(
        label=_("Refund (minor units)"),
        required=False,
        min_value=1,
        help_text=_("Leave empty to refund nothing."),
    )


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin):
    list_display = ("pk", "order_id", "vendor_id", "status", "opened_at", "resolved_by", "refund")
    list_filter = ("status",)
    search_fields = ("=order_id", "=vendor_id", "reason")
    date_hierarchy = "opened_at"
    actions = ["resolve"]

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and request.user.has_perm("payments.change_dispute")

    @admin.action(description=_("Resolve or reject (asks for a note)"), permissions=["change"])
    def resolve(self, request, queryset):
        form = DisputeResolveForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            data = form.cleaned_data

            def resolve_one(d: Dispute) -> None:
                closed = disputes.dispute_resolve(
                    dispute_id=d.pk,
                    actor=request.user,
                    note=data["note"],
                    refund_amount=data["refund_amount"],
                    reject=data["outcome"] == Dispute.Status.REJECTED,
                )
                if closed.refund and closed.refund.status != Refund.Status.SUCCEEDED:
                    self.message_user(
                        request,
                        _("%(d)s: the refund is %(status)s.")
                        % {"d": closed, "status": closed.refund.get_status_display()},
                        messages.WARNING,
                    )

            _each(
                self,
                request,
                queryset,
                resolve_one,
                lambda n: ngettext("%d dispute closed.", "%d disputes closed.", n) % n,
            )
            return None
        return _note_page(
            self,
            request,
            queryset,
            form=form,
            action="resolve",
            title=_("Close disputes"),
            intro=_(
                "These disputes will be closed with your note. Held settlements of their orders "
                "are released once no dispute on them is open."
            ),
            submit=_("Close these disputes"),
        )


class NoteForm(forms.Form):
    note = forms.CharField(
        label=_("What was done about it"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=1000,
    )


@admin.register(Discrepancy)
class DiscrepancyAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "summary",
        "status",
        "detected_at",
        "last_seen_at",
        "resolved_by",
    )
    list_filter = ("status", "kind")
    search_fields = ("object_ref", "detail")
    date_hierarchy = "detected_at"
    actions = ["mark_resolved"]

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and request.user.has_perm("payments.change_discrepancy")

    @admin.display(description=_("what differs"), ordering="kind")
    def summary(self, obj: Discrepancy) -> str:
        return obj.summary

    @admin.action(description=_("Mark resolved (asks for a note)"), permissions=["change"])
    def mark_resolved(self, request, queryset):
        form = NoteForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            note = form.cleaned_data["note"]
            _each(
                self,
                request,
                queryset,
                lambda d: reconciliation.discrepancy_resolve(
                    discrepancy_id=d.pk, actor=request.user, note=note
                ),
                lambda n: ngettext("%d discrepancy resolved.", "%d discrepancies resolved.", n) % n,
            )
            return None
        return _note_page(
            self,
            request,
            queryset,
            form=form,
            action="mark_resolved",
            title=_("Resolve discrepancies"),
            intro=_(
                "Nothing is changed in the ledger or at the provider: say what was done (a "
                "correcting adjustment, a sync, a provider ticket)."
            ),
            submit=_("Mark resolved"),
        )


# --- the customer vault (payments.vault): read-only records ---------------------------------------


@admin.register(VaultCustomer)
class VaultCustomerAdmin(ReadOnlyAdmin):
    list_display = ("customer", "provider", "provider_ref", "created_at")
    search_fields = ("provider_ref",)


@admin.register(CardSetup)
class CardSetupAdmin(ReadOnlyAdmin):
    list_display = ("customer", "provider", "provider_ref", "card", "created_at", "completed_at")
    search_fields = ("provider_ref",)


@admin.register(SavedCard)
class SavedCardAdmin(ReadOnlyAdmin):
    list_display = ("customer", "brand", "last4", "exp_month", "exp_year", "is_default", "status")
    list_filter = ("status",)
    search_fields = ("last4", "payment_method_ref")


@admin.register(CardCharge)
class CardChargeAdmin(ReadOnlyAdmin):
    list_display = ("idempotency_key", "payment", "card", "outcome", "decline_kind", "created_at")
    list_filter = ("outcome", "decline_kind")
    search_fields = ("idempotency_key",)
