"""Money API: a vendor's earnings and statements; finance exports for staff. Thin over
payments.earnings and payments.statements (the ledger is the only source of the figures).

Who may see what: a vendor sees its own money; staff see any vendor's (naming it with `?vendor=`);
a vendor's statement or order asked for by anyone else is 404 (never 403: that would tell it
exists); the finance exports are staff-only. Errors use the one o2o.api format."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import permissions, serializers
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.services import customer_profile_get_or_create
from o2o.api import Pagination, error_response
from o2o.errors import Conflict as DomainConflict
from o2o.money import MINOR_UNITS
from vendors.models import Vendor

from . import earnings, ledger, reconciliation, selectors, statements, vault
from .errors import PaymentUnavailable
from .models import Discrepancy, JournalTransaction, Payout, Settlement

# --- serializers ---------------------------------------------------------------------------------


class FiguresOutSerializer(serializers.Serializer):
    currency = serializers.CharField()
    gross = serializers.IntegerField(help_text="Captured from customers, in minor units.")
    commission = serializers.IntegerField(
        help_text="The platform's commission (and any delivery fee it keeps), less what it gave "
        "back on refunds."
    )
    refunds = serializers.IntegerField(help_text="Given back to customers.")
    net = serializers.IntegerField(help_text="gross − commission − refunds: the vendor's share.")
    adjustments = serializers.IntegerField(help_text="Staff corrections to the payable balance.")
    payouts = serializers.IntegerField(help_text="Sent to the vendor (less failed payouts).")


class NextPayoutOutSerializer(serializers.Serializer):
    date = serializers.DateField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.CharField(
        help_text="`pending` or `sent` for a payout already made; `expected` for the next "
        "settlement's estimate (what the ledger owes now)."
    )


class OrderEarningsOutSerializer(serializers.Serializer):
    order_id = serializers.IntegerField()
    first_at = serializers.DateTimeField()
    last_at = serializers.DateTimeField()
    figures = FiguresOutSerializer()


class OrderPageOutSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = OrderEarningsOutSerializer(many=True)


class PayoutWaitOutSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=[
            "dispute_open",
            "not_released",
            "no_payout_account",
            "building",
            "carried_forward",
            "queued",
            "in_transit",
            "period_open",
        ],
        help_text="Why the money is not on its way yet.",
    )
    message = serializers.CharField(help_text="The same, as a sentence in the user's language.")
    until = serializers.DateTimeField(
        allow_null=True, help_text="When it moves on its own (null: someone must act)."
    )


class PlanOutSerializer(serializers.Serializer):
    bps = serializers.IntegerField(help_text="Basis points: 100 = 1 %.")
    percent = serializers.CharField()
    scope = serializers.ChoiceField(
        choices=["vendor", "platform", "default"],
        help_text="The vendor's own plan, the platform's plan for every vendor, or the standard "
        "rate (no plan).",
    )
    category = serializers.CharField(help_text="The category it is for; empty: every category.")
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    note = serializers.CharField()


class CommissionOutSerializer(serializers.Serializer):
    current = PlanOutSerializer(help_text="The rate in force now (without a category).")
    categories = PlanOutSerializer(many=True, help_text="Categories with a rate of their own.")
    next = PlanOutSerializer(allow_null=True, help_text="The next change already scheduled.")
    delivery_fee_to_platform = serializers.BooleanField(
        help_text="Whether the platform keeps the delivery fee (no other fixed fee is charged)."
    )


class EarningsOutSerializer(serializers.Serializer):
    vendor = serializers.IntegerField(source="vendor_id")
    currency = serializers.CharField()
    today_start = serializers.DateTimeField()
    week_start = serializers.DateTimeField()
    today = FiguresOutSerializer()
    week = FiguresOutSerializer()
    balance = serializers.IntegerField(help_text="What the platform owes the vendor now.")
    next_payout = NextPayoutOutSerializer(allow_null=True)
    payout_wait = PayoutWaitOutSerializer(allow_null=True)
    commission = CommissionOutSerializer(help_text="The commission plan in force.")
    orders = OrderPageOutSerializer(help_text="By order, the latest activity first (paginated).")


class MovementOutSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The journal transaction.")
    kind = serializers.CharField()
    at = serializers.DateTimeField()
    figures = FiguresOutSerializer()


class OrderMovementsOutSerializer(serializers.Serializer):
    order_id = serializers.IntegerField()
    vendor = serializers.IntegerField()
    total = FiguresOutSerializer()
    movements = MovementOutSerializer(many=True)


class PayoutOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    bank = serializers.CharField()
    account = serializers.CharField(help_text="The last four digits only.")


class StatementListOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    vendor = serializers.IntegerField(source="vendor_id")
    kind = serializers.CharField()
    status = serializers.CharField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    currency = serializers.CharField()
    net = serializers.IntegerField()
    payout = serializers.SerializerMethodField()
    csv = serializers.SerializerMethodField()
    pdf = serializers.SerializerMethodField()

    @extend_schema_field(PayoutOutSerializer(allow_null=True))
    def get_payout(self, obj: Settlement) -> dict | None:
        return statements.payout_dict(getattr(obj, "payout", None))

    def _url(self, obj: Settlement, fmt: str) -> str:
        path = reverse("api-statement-download", kwargs={"settlement_id": obj.pk, "format": fmt})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_csv(self, obj: Settlement) -> str:
        return self._url(obj, "csv")

    def get_pdf(self, obj: Settlement) -> str:
        return self._url(obj, "pdf")


class StatementLineOutSerializer(serializers.Serializer):
    journal_id = serializers.IntegerField()
    kind = serializers.CharField()
    booked_at = serializers.DateTimeField()
    order_id = serializers.IntegerField(allow_null=True)
    refund_id = serializers.IntegerField(allow_null=True)
    gross = serializers.IntegerField(help_text="Captured (+) or refunded (−).")
    commission = serializers.IntegerField(help_text="Charged (+) or given back (−).")
    delivery_fee = serializers.IntegerField(help_text="Kept by the platform (+) or given back (−).")
    net = serializers.IntegerField(help_text="The effect on what the vendor is owed.")


class TotalsOutSerializer(serializers.Serializer):
    sales = serializers.IntegerField()
    refunds = serializers.IntegerField()
    commission = serializers.IntegerField()
    delivery_fees = serializers.IntegerField()
    adjustments = serializers.IntegerField()
    returned = serializers.IntegerField()
    net = serializers.IntegerField()


class StatementOutSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="settlement.pk")
    vendor = serializers.IntegerField(source="settlement.vendor_id")
    vendor_name = serializers.CharField()
    status = serializers.CharField(source="settlement.status")
    period_start = serializers.DateTimeField(source="settlement.period_start")
    period_end = serializers.DateTimeField(source="settlement.period_end")
    currency = serializers.CharField()
    totals = TotalsOutSerializer(source="totals.as_dict")
    lines = StatementLineOutSerializer(many=True)
    payout = PayoutOutSerializer(source="payout_data", allow_null=True)


class DayOutSerializer(serializers.Serializer):
    day = serializers.DateField()
    gmv = serializers.IntegerField(help_text="Gross merchandise value: captured that day.")
    commission = serializers.IntegerField(help_text="Commission revenue, net of reversals.")
    delivery_fees = serializers.IntegerField(help_text="Delivery fees the platform kept, net.")
    provider_fees = serializers.IntegerField(
        help_text="What the payment provider charged (the platform's cost; kept on refunds)."
    )
    net_revenue = serializers.IntegerField(
        help_text="The platform's net revenue: commission + delivery fees − provider fees."
    )
    refunds = serializers.IntegerField(help_text="Refunded to customers that day.")
    payables = serializers.IntegerField(help_text="Owed to all vendors at the end of the day.")


class DailyOutSerializer(serializers.Serializer):
    currency = serializers.CharField()
    first = serializers.DateField()
    last = serializers.DateField()
    days = DayOutSerializer(many=True)
    totals = DayOutSerializer(help_text="The range's sums; `payables` at its end.")


class RangeInSerializer(serializers.Serializer):
    """A range of local calendar days, both included (default: the last 30 days)."""

    to = serializers.DateField(required=False)
    currency = serializers.ChoiceField(choices=sorted(MINOR_UNITS), required=False)

    def get_fields(self):
        fields = super().get_fields()
        # `from` is a Python keyword: the field is declared by name here.
        fields["from"] = serializers.DateField(required=False)
        return fields

    def validate(self, data: dict) -> dict:
        last = data.get("to") or timezone.localdate()
        if not earnings.EARLIEST_DAY <= last <= earnings.LATEST_DAY:
            raise ValidationError({"to": earnings.day_range_error(last, last)})
        first = data.get("from") or last - dt.timedelta(days=29)
        error = earnings.day_range_error(first, last)
        if error:
            raise ValidationError({"from": error})
        return {"first": first, "last": last, "currency": data.get("currency")}


# --- renderers: a statement as CSV or PDF --------------------------------------------------------


class _DownloadRenderer(BaseRenderer):
    """Lets `.csv`/`.pdf` and `?format=` pick the download; the view sends the file itself."""

    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else JSONRenderer().render(data)


class CSVRenderer(_DownloadRenderer):
    media_type = "text/csv"
    format = "csv"


class PDFRenderer(_DownloadRenderer):
    media_type = "application/pdf"
    format = "pdf"


# --- permissions ---------------------------------------------------------------------------------

BAD_RANGE = OpenApiResponse(description="A bad date, a range backwards or too long.")
VENDOR_PARAM = OpenApiParameter(
    "vendor", int, description="Staff only: the vendor whose money to show."
)
NOT_FOUND = OpenApiResponse(description="No such statement or order, or not yours.")


class IsVendorOrStaff(permissions.BasePermission):
    message = _("Only vendors have earnings.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user.is_authenticated and hasattr(user, "vendor")) or earnings.reads_the_books(
            user
        )


class _MoneyApi(APIView):
    permission_classes = [permissions.IsAuthenticated, IsVendorOrStaff]

    def own_vendor(self) -> Vendor | None:
        user = self.request.user
        return getattr(user, "vendor", None) if hasattr(user, "vendor") else None

    def vendor(self) -> Vendor:
        """The vendor asked about: `?vendor=` (staff, or the vendor itself), else one's own."""
        own = self.own_vendor()
        raw = self.request.query_params.get("vendor")
        if raw in (None, ""):
            if own is None:
                raise ValidationError({"vendor": _("Staff name the vendor: ?vendor=<id>.")})
            return own
        try:
            vendor_id = int(raw)
        except (TypeError, ValueError) as exc:
            raise ValidationError({"vendor": _("A vendor is named by its number.")}) from exc
        if own is not None and own.pk == vendor_id:
            return own
        if not earnings.reads_the_books(self.request.user):
            raise NotFound(_("No such vendor."))
        vendor = Vendor.objects.filter(pk=vendor_id).first()
        if vendor is None:
            raise NotFound(_("No such vendor."))
        return vendor


class EarningsApi(_MoneyApi):
    """Today, this week (local days; weeks from Monday), by order, the payable balance and the next
    payout of the signed-in vendor, from the ledger. Amounts in minor units."""

    @extend_schema(
        parameters=[
            VENDOR_PARAM,
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: EarningsOutSerializer, 400: OpenApiResponse(), 404: NOT_FOUND},
        tags=["money"],
    )
    def get(self, request):
        vendor = self.vendor()
        e = earnings.vendor_earnings(vendor_id=vendor.pk)
        paginator = Pagination()
        page = paginator.paginate_queryset(
            earnings.vendor_orders(vendor_id=vendor.pk), request, view=self
        )
        rows = [earnings.order_row(r) for r in page]
        body = {
            "vendor_id": vendor.pk,
            "currency": e.currency,
            "today_start": e.today_start,
            "week_start": e.week_start,
            "today": e.today.as_dict(),
            "week": e.week.as_dict(),
            "balance": e.balance,
            "next_payout": e.next_payout,
            "payout_wait": e.payout_wait.as_dict() if e.payout_wait else None,
            "commission": e.commission.as_dict() if e.commission else None,
            "orders": {
                "count": paginator.page.paginator.count,
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
                "results": [
                    {
                        "order_id": r.order_id,
                        "first_at": r.first_at,
                        "last_at": r.last_at,
                        "figures": r.figures.as_dict(),
                    }
                    for r in rows
                ],
            },
        }
        return Response(EarningsOutSerializer(body).data)


class EarningsOrderApi(_MoneyApi):
    """One of the vendor's orders, movement by movement (capture split, refunds)."""

    @extend_schema(
        responses={200: OrderMovementsOutSerializer, 404: NOT_FOUND},
        tags=["money"],
    )
    def get(self, request, order_id: int):
        own = self.own_vendor()
        vendor_id = own.pk if own is not None else None
        moves = earnings.order_movements(vendor_id=vendor_id, order_id=order_id) if own else []
        if not moves and earnings.reads_the_books(request.user):
            vendor_id = earnings.order_vendor_id(order_id=order_id)
            if vendor_id is not None:
                moves = earnings.order_movements(vendor_id=vendor_id, order_id=order_id)
        if not moves:
            raise NotFound(_("No such order."))
        body = {
            "order_id": order_id,
            "vendor": vendor_id,
            "total": earnings.order_total(moves).as_dict(),
            "movements": [
                {"id": m.id, "kind": m.kind, "at": m.at, "figures": m.figures.as_dict()}
                for m in moves
            ],
        }
        return Response(OrderMovementsOutSerializer(body).data)


class StatementsApi(_MoneyApi):
    """The vendor's statements (one per settlement), the latest period first."""

    # Documents the page object the view answers with (spectacular reads it; see get()).
    pagination_class = Pagination

    @extend_schema(
        parameters=[VENDOR_PARAM],
        responses={200: StatementListOutSerializer(many=True), 404: NOT_FOUND},
        tags=["money"],
    )
    def get(self, request):
        vendor = self.vendor()
        paginator = Pagination()
        page = paginator.paginate_queryset(
            earnings.vendor_statements(vendor_id=vendor.pk), request, view=self
        )
        data = StatementListOutSerializer(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)


class StatementApi(_MoneyApi):
    """One statement: every line of the settlement with the amounts the ledger booked, the totals
    and the payout. As CSV or PDF with the `.csv` / `.pdf` suffix or `?format=csv|pdf`."""

    renderer_classes = [JSONRenderer, CSVRenderer, PDFRenderer]

    @extend_schema(
        responses={
            (200, "application/json"): StatementOutSerializer,
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/pdf"): OpenApiTypes.BINARY,
            404: NOT_FOUND,
        },
        tags=["money"],
    )
    def get(self, request, settlement_id: int, format: str | None = None):  # noqa: A002 - DRF's name
        settlements = Settlement.objects.select_related("vendor")
        if not earnings.reads_the_books(request.user):
            settlements = settlements.filter(vendor=self.own_vendor())
        settlement = settlements.filter(pk=settlement_id).first()
        if settlement is None:
            raise NotFound(_("No such statement."))
        statement = statements.statement_build(settlement=settlement)
        fmt = request.accepted_renderer.format
        if fmt in ("csv", "pdf"):
            return statements.statement_response(statement, fmt)
        body = {
            "settlement": settlement,
            "vendor_name": statement.vendor_name,
            "currency": statement.currency,
            "totals": statement.totals,
            "lines": statement.lines,
            "payout_data": statements.payout_dict(statement.payout),
        }
        return Response(StatementOutSerializer(body).data)

    def finalize_response(self, request, response, *args, **kwargs):
        # An error asked for as CSV or PDF is still the one JSON error format.
        renderer = getattr(request, "accepted_renderer", None)
        if isinstance(response, Response) and renderer is not None and renderer.format != "json":
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


# --- finance exports (staff) ---------------------------------------------------------------------


class CanReadTheBooks(permissions.BasePermission):
    """Staff who may read the ledger (earnings.FINANCE_PERMISSION), as in the admin."""

    message = _("Your staff account may not see the platform's money.")

    def has_permission(self, request, view) -> bool:
        return earnings.reads_the_books(request.user)


class _FinanceApi(APIView):
    permission_classes = [permissions.IsAuthenticated, CanReadTheBooks]

    def range(self) -> dict:
        body = RangeInSerializer(data=self.request.query_params)
        body.is_valid(raise_exception=True)
        return body.validated_data


RANGE_PARAMS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day (local), included."),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (local), included."),
]
CURRENCY = OpenApiParameter("currency", str, enum=sorted(MINOR_UNITS), description="Default KRW.")
JOURNAL_CURRENCY = OpenApiParameter(
    "currency", str, enum=sorted(MINOR_UNITS), description="Only this currency (default: all)."
)


class JournalExportApi(_FinanceApi):
    """Every ledger entry of the journal transactions booked in the range, as CSV, streamed in
    bounded batches (memory does not grow with the journal)."""

    @extend_schema(
        parameters=[*RANGE_PARAMS, JOURNAL_CURRENCY],
        responses={(200, "text/csv"): OpenApiTypes.BINARY, 400: BAD_RANGE},
        tags=["finance"],
    )
    def get(self, request):
        r = self.range()
        start = earnings.day_start(r["first"])
        end = earnings.day_start(r["last"] + dt.timedelta(days=1))
        # An ASGI server reads a synchronous iterator whole before sending it: give it an
        # asynchronous one.
        raw = request._request
        window = {"start": start, "end": end, "currency": r["currency"]}
        rows = (
            statements.journal_csv_async(**window)
            if isinstance(raw, ASGIRequest)
            else statements.journal_csv(**window)
        )
        response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
        name = f"journal-{r['first'].isoformat()}-{r['last'].isoformat()}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "private, no-store"
        return response


class DailyTotalsApi(_FinanceApi):
    """Per local day: gross merchandise value, commission, delivery fees kept, the provider's fees,
    the platform's net revenue (commission + delivery fees − provider fees), refunds and what is
    owed to vendors at the end of the day; all from the ledger."""

    @extend_schema(
        parameters=[*RANGE_PARAMS, CURRENCY],
        responses={200: DailyOutSerializer, 400: BAD_RANGE},
        tags=["finance"],
    )
    def get(self, request):
        r = self.range()
        currency = r["currency"] or "KRW"
        days = earnings.daily_totals(first=r["first"], last=r["last"], currency=currency)
        totals = earnings.range_totals(days)
        body = {
            "currency": currency,
            "first": r["first"],
            "last": r["last"],
            "days": [d.as_dict() for d in days],
            "totals": totals.as_dict(),
        }
        return Response(DailyOutSerializer(body).data)


# --- the vendor's payouts ------------------------------------------------------------------------


class VendorPayoutOutSerializer(PayoutOutSerializer):
    settlement = serializers.IntegerField(help_text="The settlement it pays.")
    period_start = serializers.DateTimeField()
    failure_message = serializers.CharField()
    wait = PayoutWaitOutSerializer(allow_null=True, help_text="Why it is not paid yet.")


class PayoutsApi(_MoneyApi):
    """The vendor's payouts, the latest first, each with why it waits (if it does)."""

    pagination_class = Pagination

    @extend_schema(
        parameters=[
            VENDOR_PARAM,
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={
            200: VendorPayoutOutSerializer(many=True),
            400: OpenApiResponse(),
            404: NOT_FOUND,
        },
        tags=["money"],
    )
    def get(self, request):
        vendor = self.vendor()
        paginator = Pagination()
        page = paginator.paginate_queryset(
            Payout.objects.filter(vendor=vendor)
            .select_related("settlement")
            .order_by("-created_at", "-pk"),
            request,
            view=self,
        )
        rows = []
        for p in page:
            wait = selectors.payout_wait(payout=p)
            rows.append(
                {
                    **statements.payout_dict(p),
                    "settlement": p.settlement_id,
                    "period_start": p.settlement.period_start,
                    "failure_message": p.failure_message,
                    "wait": wait.as_dict() if wait else None,
                }
            )
        return paginator.get_paginated_response(VendorPayoutOutSerializer(rows, many=True).data)


# --- staff: discrepancies and adjustments --------------------------------------------------------


class Conflict409(APIException):
    status_code = 409
    default_code = "conflict"
    default_detail = _("It changed meanwhile.")


class CanAdjustTheLedger(permissions.BasePermission):
    """Staff who may read the books and add journal transactions (as the adjustment page)."""

    message = _("You may not adjust the ledger.")

    def has_permission(self, request, view) -> bool:
        return earnings.reads_the_books(request.user) and request.user.has_perm(
            "payments.add_journaltransaction"
        )


class CanResolveDiscrepancies(permissions.BasePermission):
    message = _("You may not resolve discrepancies.")

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return earnings.reads_the_books(request.user)
        return earnings.reads_the_books(request.user) and request.user.has_perm(
            "payments.change_discrepancy"
        )


class DiscrepancyOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    kind_label = serializers.CharField(source="get_kind_display")
    object_ref = serializers.CharField()
    expected = serializers.CharField()
    actual = serializers.CharField()
    detail = serializers.CharField()
    summary = serializers.CharField(help_text="One readable sentence.")
    status = serializers.CharField()
    detected_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    resolved_by = serializers.IntegerField(source="resolved_by_id", allow_null=True)
    resolution_note = serializers.CharField()
    resolved_at = serializers.DateTimeField(allow_null=True)


class DiscrepancyResolveInSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=1000, help_text="What was done about it.")


class DiscrepanciesApi(APIView):
    """Staff: the differences the reconciliation found, the latest first (`?status=open|resolved`)."""

    permission_classes = [permissions.IsAuthenticated, CanResolveDiscrepancies]
    pagination_class = Pagination

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=list(Discrepancy.Status.values)),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: DiscrepancyOutSerializer(many=True), 400: OpenApiResponse()},
        tags=["finance"],
    )
    def get(self, request):
        rows = Discrepancy.objects.order_by("-detected_at", "-pk")
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in Discrepancy.Status.values:
                raise ValidationError({"status": _("Choose open or resolved.")})
            rows = rows.filter(status=wanted)
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(DiscrepancyOutSerializer(page, many=True).data)


class DiscrepancyResolveApi(APIView):
    """Staff mark a discrepancy resolved with a note (reconciliation.discrepancy_resolve, as the
    admin's action). 409 when it was resolved already."""

    permission_classes = [permissions.IsAuthenticated, CanResolveDiscrepancies]

    @extend_schema(
        request=DiscrepancyResolveInSerializer,
        responses={
            200: DiscrepancyOutSerializer,
            400: OpenApiResponse(),
            404: OpenApiResponse(description="No such discrepancy."),
            409: OpenApiResponse(description="Already resolved."),
        },
        tags=["finance"],
    )
    def post(self, request, discrepancy_id: int):
        body = DiscrepancyResolveInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if not Discrepancy.objects.filter(pk=discrepancy_id).exists():
            raise NotFound(_("No such discrepancy."))
        try:
            done = reconciliation.discrepancy_resolve(
                discrepancy_id=discrepancy_id, actor=request.user, note=body.validated_data["note"]
            )
        except DomainConflict as exc:
            raise Conflict409(exc.messages[0]) from exc
        return Response(DiscrepancyOutSerializer(done).data)


class AdjustmentInSerializer(serializers.Serializer):
    debit = serializers.CharField(max_length=60, help_text="The account debited, e.g. adjustments.")
    credit = serializers.CharField(
        max_length=60, help_text="The account credited, e.g. vendor_payable:12."
    )
    amount = serializers.IntegerField(min_value=1, max_value=10**12, help_text="Minor units.")
    currency = serializers.ChoiceField(choices=sorted(MINOR_UNITS), default="KRW")
    reason = serializers.CharField(max_length=200, help_text="Kept in the ledger with your name.")
    key = serializers.RegexField(
        r"^[0-9a-f]{32}$",
        help_text="32 hex digits chosen by the client: the same key posts once.",
    )


class AdjustmentOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    kind = serializers.CharField()
    currency = serializers.CharField()
    memo = serializers.CharField()
    vendor = serializers.IntegerField(source="vendor_id", allow_null=True)
    created_at = serializers.DateTimeField()
    created_by = serializers.IntegerField(source="created_by_id", allow_null=True)


class AdjustmentsApi(APIView):
    """Staff post a manual ledger adjustment (ledger.adjustment_post, as the staff page). Sent
    again with the same key, it answers the one posting made (200) instead of a second (201)."""

    permission_classes = [permissions.IsAuthenticated, CanAdjustTheLedger]

    @extend_schema(
        request=AdjustmentInSerializer,
        responses={
            201: AdjustmentOutSerializer,
            200: AdjustmentOutSerializer,
            400: OpenApiResponse(),
        },
        tags=["finance"],
    )
    def post(self, request):
        body = AdjustmentInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        for field in ("debit", "credit"):
            if not selectors.ledger_account_known(data[field]):
                raise ValidationError(
                    {field: _("There is no ledger account %(code)s.") % {"code": data[field]}}
                )
        done = JournalTransaction.objects.filter(key=f"adjustment:{data['key']}").first()
        if done is not None:
            return Response(AdjustmentOutSerializer(done).data)
        try:
            txn = ledger.adjustment_post(
                actor=request.user,
                debit=data["debit"],
                credit=data["credit"],
                amount=data["amount"],
                reason=data["reason"],
                currency=data["currency"],
                key=data["key"],
            )
        except ledger.LedgerError:
            done = JournalTransaction.objects.filter(key=f"adjustment:{data['key']}").first()
            if done is not None:  # the same key, a moment ago
                return Response(AdjustmentOutSerializer(done).data)
            raise
        return Response(AdjustmentOutSerializer(txn).data, status=201)


# --- the customer's saved cards (payments.vault) ---------------------------------------------------


class SavedCardOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    brand = serializers.CharField()
    last4 = serializers.CharField()
    exp_month = serializers.IntegerField()
    exp_year = serializers.IntegerField()
    is_default = serializers.BooleanField()
    status = serializers.CharField(help_text="active, or needs_attention (its last charge failed).")


class CardsInSerializer(serializers.Serializer):
    return_url = serializers.URLField(
        required=False, help_text="Where the setup page sends the browser back (start a setup)."
    )
    setup_session = serializers.CharField(
        required=False, max_length=64, help_text="The setup_session the browser came back with."
    )

    def validate(self, data: dict) -> dict:
        if bool(data.get("return_url")) == bool(data.get("setup_session")):
            raise ValidationError(_("Give either return_url or setup_session."))
        return data


def _vault_error(exc: DjangoValidationError) -> Response:
    """A vault refusal in the one error format: 404 for a card or setup not the caller's, 409 for
    a state that changed, 503 when the provider did not answer, 400 otherwise."""
    message = exc.messages[0]
    if isinstance(exc, PaymentUnavailable):
        return error_response("unavailable", message, 503)
    if isinstance(exc, DomainConflict):
        return error_response("conflict", message, 409)
    if getattr(exc, "code", None) == "not_found":
        return error_response("not_found", message, 404)
    return error_response(getattr(exc, "code", None) or "invalid", message, 400)


class MyCardsApi(APIView):
    """GET: the customer's saved cards. POST {return_url}: a setup page to save a card
    ({setup_url}, nothing charged); POST {setup_session}: keep the card saved there (asked of the
    provider, not taken from the browser). DELETE /api/me/cards/<id>/: remove one of them."""

    permission_classes = [permissions.IsAuthenticated]

    def _customer(self, request):
        return customer_profile_get_or_create(user=request.user)

    @extend_schema(responses={200: SavedCardOutSerializer(many=True)}, tags=["payments"])
    def get(self, request, card_id: int | None = None):
        if card_id is not None:
            raise NotFound()
        cards = vault.cards_of(customer=self._customer(request))
        return Response(SavedCardOutSerializer(cards, many=True).data)

    @extend_schema(
        request=CardsInSerializer,
        responses={201: OpenApiResponse(description="{setup_url} or the saved card")},
        tags=["payments"],
    )
    def post(self, request, card_id: int | None = None):
        if card_id is not None:
            raise NotFound()
        body = CardsInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        customer = self._customer(request)
        try:
            if body.validated_data.get("return_url"):
                url = vault.card_setup_start(
                    customer=customer, return_url=body.validated_data["return_url"]
                )
                return Response({"setup_url": url}, status=201)
            card = vault.card_setup_complete(
                customer=customer, setup_ref=body.validated_data["setup_session"]
            )
        except DjangoValidationError as exc:
            return _vault_error(exc)
        return Response(SavedCardOutSerializer(card).data, status=201)

    @extend_schema(responses={204: None}, tags=["payments"])
    def delete(self, request, card_id: int | None = None):
        if card_id is None:
            raise NotFound()
        try:
            vault.card_detach(customer=self._customer(request), card_id=int(card_id))
        except DjangoValidationError as exc:
            return _vault_error(exc)
        return Response(status=204)
