"""Order API, for native apps: a customer's orders (place, follow, cancel, check the payment) and a
vendor's inbox with the transitions. Thin: each endpoint validates its body, calls one service and
shapes the answer. Errors use the one o2o.api format: a transition from the wrong state is 409,
someone else's order 404 (never 403: that would tell it exists), a broken rule 400 with fields,
the payment provider not answering 503."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.services import customer_profile_get_or_create
from insights.misses import sold_out_record
from o2o.api import Pagination
from o2o.errors import Conflict, Forbidden, NotAllowed
from payments.errors import PaymentUnavailable  # what orders.services lets through when slow
from payments.models import DisputeStatus
from vendors.api import IsVendor
from vendors.selectors import vendors_public
from vendors.serializers import PickupPointPublicSerializer, PickupPointsQuerySerializer
from vendors.services import OutOfStock

from . import selectors
from .models import Order
from .serializers import (
    CashSaleInSerializer,
    HandOverScanInSerializer,
    OrderAcceptInSerializer,
    OrderCancelInSerializer,
    OrderDetailOutSerializer,
    OrderHandOverInSerializer,
    OrderLineShortInSerializer,
    OrderListOutSerializer,
    OrderPlaceInSerializer,
    OrderPlaceOutSerializer,
    OrderRejectInSerializer,
    StaffLineRefundInSerializer,
    StaffLineRefundOutSerializer,
    StaffOrderCancelInSerializer,
    StaffOrderOutSerializer,
    VendorOrderOutSerializer,
    VendorOrdersQuerySerializer,
)
from .services import (
    PROBLEM_REASON_MAX,
    HandoverTokenInvalid,
    InvalidTransition,
    LineIn,
    NotOnCart,
    PricesChanged,
    Receive,
    order_accept,
    order_cancel,
    order_cash_sale,
    order_cash_sale_undo,
    order_depart,
    order_expire_now,
    order_hand_over,
    order_hand_over_by_token,
    order_hand_over_checked,
    order_line_refund,
    order_line_short,
    order_payment_refresh,
    order_payment_start,
    order_place,
    order_problem_report,
    order_ready,
    order_reject,
    order_staff_cancel,
    order_vendor_cancel,
)
from .services.transitions import CodeCheckUnavailable


class ConflictError(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The order changed meanwhile.")
    default_code = "conflict"


class PaymentUnavailableError(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("The payment service did not answer. Try again shortly.")
    default_code = "payment_unavailable"


ERRORS = {
    400: OpenApiResponse(description="Invalid input: `error.fields` names what to fix."),
    404: OpenApiResponse(description="No such order, or not yours."),
    409: OpenApiResponse(description="The order is not in a state that allows this."),
}


class _OrderApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def handle_exception(self, exc):
        if isinstance(exc, NotAllowed | Order.DoesNotExist):
            exc = NotFound(_("No such order."))
        elif isinstance(exc, Forbidden):
            exc = PermissionDenied(exc.messages[0])
        elif isinstance(exc, OutOfStock):
            exc = ConflictError(exc.messages[0], code="out_of_stock")
        elif isinstance(exc, PricesChanged):
            exc = ConflictError(exc.messages[0], code="prices_changed")
        elif isinstance(exc, Conflict):
            exc = ConflictError(exc.messages[0])
        elif isinstance(exc, CodeCheckUnavailable):
            exc = PaymentUnavailableError(exc.messages[0], code="unavailable")
        elif isinstance(exc, PaymentUnavailable):
            exc = PaymentUnavailableError()
        # Any other Django ValidationError: 400 with its fields (o2o.api.exception_handler).
        return super().handle_exception(exc)

    def customer(self):
        return getattr(self.request.user, "customer", None)

    def own_order(self, order_id: int) -> Order:
        return selectors.order_of_customer(customer=self.customer(), order_id=order_id)

    def detail(self, order_id: int) -> Response:
        """The customer's own order, as its detail (the request decides what the customer sees)."""
        order = self.own_order(order_id)
        return Response(OrderDetailOutSerializer(order, context={"request": self.request}).data)

    def paginated(self, queryset, serializer_class):
        paginator = Pagination()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True).data)


# --- customer ---------------------------------------------------------------------------------


class OrdersApi(_OrderApi):
    """The signed-in customer's orders (newest first), and placing a new one."""

    # Documents the page object the view answers with (spectacular reads it; see paginated()).
    pagination_class = Pagination

    @extend_schema(responses=OrderListOutSerializer(many=True), tags=["orders"])
    def get(self, request):
        customer = self.customer()
        orders = (
            selectors.orders_of_customer(customer=customer)
            if customer is not None
            else Order.objects.none()
        )
        return self.paginated(orders, OrderListOutSerializer)

    @extend_schema(
        request=OrderPlaceInSerializer,
        responses={
            201: OrderPlaceOutSerializer,
            **ERRORS,
            409: OpenApiResponse(
                description="Nothing placed: `out_of_stock` (not that many left on the cart), "
                "or `prices_changed` (the total differs from `expected_total`)."
            ),
            503: OpenApiResponse(),
        },
        tags=["orders"],
    )
    def post(self, request):
        """Place an order (stock is reserved) and start its payment: send the customer to
        `checkout_url`. Sending the same `checkout_token` again gives back the same order, so a
        503 (the provider did not answer; the order is kept) is retried with the same body.
        With `expected_total` (the total the customer was shown) a changed price or delivery fee
        is a 409 `prices_changed`, nothing placed, instead of an order at the new total."""
        body = OrderPlaceInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        customer = customer_profile_get_or_create(user=request.user)
        try:
            order = order_place(
                customer=customer,
                vendor_id=data["vendor"],
                lines=[LineIn(**line) for line in data["lines"]],
                receive=Receive(
                    fulfilment=data["fulfilment"],
                    address_id=data.get("address_id"),
                    pickup_point_id=data.get("pickup_point_id"),
                    meet_cell=data.get("meet_cell", ""),
                    window_start=data["window_start"],
                    window_end=data["window_end"],
                ),
                checkout_token=data["checkout_token"],
                note=data.get("note", ""),
                expected_total=data.get("expected_total"),
            )
        except OutOfStock as exc:
            sold_out_record(request=request, exc=exc)  # the order rolled back; the miss stays
            raise
        url = order_payment_start(
            order_id=order.pk,
            return_url=request.build_absolute_uri(reverse("orders:paid", args=[order.pk])),
        )
        out = {"order": self.own_order(order.pk), "checkout_url": url}
        return Response(
            OrderPlaceOutSerializer(out, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class OrderDetailApi(_OrderApi):
    @extend_schema(responses={200: OrderDetailOutSerializer, 404: ERRORS[404]}, tags=["orders"])
    def get(self, request, order_id: int):
        return self.detail(order_id)


class OrderCancelApi(_OrderApi):
    @extend_schema(
        request=OrderCancelInSerializer,
        responses={200: OrderDetailOutSerializer, **ERRORS},
        tags=["orders"],
    )
    def post(self, request, order_id: int):
        """Cancel before the vendor accepts; the money is released."""
        body = OrderCancelInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order = self.own_order(order_id)
        order_cancel(
            order_id=order.pk, customer=order.customer, reason=body.validated_data.get("reason", "")
        )
        return self.detail(order_id)


class OrderPaymentRefreshApi(_OrderApi):
    @extend_schema(
        request=None,
        responses={200: OrderDetailOutSerializer, 404: ERRORS[404], 503: OpenApiResponse()},
        tags=["orders"],
    )
    def post(self, request, order_id: int):
        """Ask the provider how the payment stands (after the card page, or when in doubt)."""
        order = self.own_order(order_id)
        order_payment_refresh(order_id=order.pk)
        return self.detail(order_id)


# --- vendor -----------------------------------------------------------------------------------


class VendorOrdersApi(_OrderApi):
    """The signed-in vendor's orders: `state=active` (to act on, oldest first) or `history`."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]
    # Documents the page object the view answers with (spectacular reads it; see paginated()).
    pagination_class = Pagination

    @extend_schema(
        parameters=[VendorOrdersQuerySerializer],
        responses=VendorOrderOutSerializer(many=True),
        tags=["vendor orders"],
    )
    def get(self, request):
        query = VendorOrdersQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        vendor = request.user.vendor
        if query.validated_data["state"] == "history":
            orders = selectors.vendor_history(vendor=vendor)
        else:
            orders = selectors.orders_for_vendor(vendor=vendor, statuses=selectors.INBOX).order_by(
                "created_at", "pk"
            )
        return self.paginated(orders, VendorOrderOutSerializer)


class _VendorActionApi(_OrderApi):
    permission_classes = [permissions.IsAuthenticated, IsVendor]
    in_serializer: type | None = None

    def act(self, *, order_id: int, vendor, data: dict) -> None:
        raise NotImplementedError

    def post(self, request, order_id: int):
        vendor = request.user.vendor
        order = selectors.order_of_vendor(vendor=vendor, order_id=order_id)
        data: dict = {}
        if self.in_serializer is not None:
            body = self.in_serializer(data=request.data)
            body.is_valid(raise_exception=True)
            data = body.validated_data
        self.act(order_id=order.pk, vendor=vendor, data=data)
        order = selectors.order_of_vendor(vendor=vendor, order_id=order_id)
        return Response(VendorOrderOutSerializer(order).data)


def _action_schema(in_serializer, summary: str):
    return extend_schema(
        request=in_serializer,
        responses={200: VendorOrderOutSerializer, **ERRORS},
        tags=["vendor orders"],
        summary=summary,
    )


@_action_schema(OrderAcceptInSerializer, "Accept a placed order with an ETA")
class VendorOrderAcceptApi(_VendorActionApi):
    in_serializer = OrderAcceptInSerializer

    def act(self, *, order_id, vendor, data):
        order_accept(order_id=order_id, vendor=vendor, eta_minutes=data["eta_minutes"])


@_action_schema(OrderRejectInSerializer, "Reject a placed order, telling the customer why")
class VendorOrderRejectApi(_VendorActionApi):
    in_serializer = OrderRejectInSerializer

    def act(self, *, order_id, vendor, data):
        order_reject(order_id=order_id, vendor=vendor, reason=data["reason"])


@_action_schema(None, "On the way to the customer")
class VendorOrderDepartApi(_VendorActionApi):
    def act(self, *, order_id, vendor, data):
        order_depart(order_id=order_id, vendor=vendor)


@_action_schema(None, "Arrived, or left at the pickup point")
class VendorOrderReadyApi(_VendorActionApi):
    def act(self, *, order_id, vendor, data):
        order_ready(order_id=order_id, vendor=vendor)


@_action_schema(OrderHandOverInSerializer, "Hand over, with the code the customer shows")
class VendorOrderHandOverApi(_VendorActionApi):
    in_serializer = OrderHandOverInSerializer

    def act(self, *, order_id, vendor, data):
        order_hand_over(order_id=order_id, vendor=vendor, code=data["code"])


class BadHandoverQr(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("This QR code is not a hand-over code of ours.")
    default_code = "forged"


class VendorHandOverApi(_OrderApi):
    """Hand over by the customer's QR code (or the order number and code typed): the vendor
    scanner's endpoint, through the same guarded hand-over and the same attempt limits as
    `hand-over`. Error codes tell the outcomes apart: `forged` and `expired` (400, nothing was
    tried), `already_handed_over`, `not_accepted` and `not_open` (409), a wrong code (400
    `invalid`, counted as a try), another vendor's order or none (404)."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]

    def handle_exception(self, exc):
        if isinstance(exc, HandoverTokenInvalid):
            exc = BadHandoverQr(exc.messages[0], code=exc.code)
        elif isinstance(exc, InvalidTransition) and exc.code:
            exc = ConflictError(exc.messages[0], code=exc.code)
        return super().handle_exception(exc)

    @extend_schema(
        request=HandOverScanInSerializer,
        responses={
            200: VendorOrderOutSerializer,
            **ERRORS,
            400: OpenApiResponse(
                description="A QR code we did not sign (`forged`) or too old (`expired`), a "
                "wrong code (`invalid`, counted as a try) or too many of them."
            ),
            409: OpenApiResponse(
                description="Already handed over (`already_handed_over`), not accepted yet, "
                "or no longer open."
            ),
        },
        tags=["vendor orders"],
        summary="Hand over by the customer's QR code (or the number and code typed)",
    )
    def post(self, request):
        vendor = request.user.vendor
        body = HandOverScanInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data.get("text"):
            order = order_hand_over_by_token(text=data["text"], vendor=vendor)
        else:
            order = order_hand_over_checked(
                order_id=data["order"], vendor=vendor, code=data["code"]
            )
        order = selectors.order_of_vendor(vendor=vendor, order_id=order.pk)
        return Response(VendorOrderOutSerializer(order).data)


class NotOnCartError(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("A product in the sale is not on your cart.")
    default_code = "not_on_cart"


class VendorCashSalesApi(_OrderApi):
    """A cash sale at the vendor's own cart (the page's "Cash received"): recorded at once as a
    completed order of the walk-up customer, the units taken from the soonest-expiring lots."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]

    def handle_exception(self, exc):
        if isinstance(exc, NotOnCart):
            exc = NotOnCartError(exc.messages[0])
        return super().handle_exception(exc)

    @extend_schema(
        request=CashSaleInSerializer,
        responses={
            201: VendorOrderOutSerializer,
            200: OpenApiResponse(
                VendorOrderOutSerializer, description="The same `client_id` again: that sale."
            ),
            400: OpenApiResponse(
                description="Invalid input, or a product not on the cart (`not_on_cart`)."
            ),
            404: OpenApiResponse(description="The `client_id` is another vendor's sale."),
            409: OpenApiResponse(
                description="`out_of_stock`: sold out, too few, or past its date. Nothing sold."
            ),
        },
        tags=["vendor orders"],
        summary="Record a cash sale at the cart",
    )
    def post(self, request):
        body = CashSaleInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        vendor = request.user.vendor
        sale = order_cash_sale(
            vendor=vendor,
            items=body.validated_data["items"],
            client_id=body.validated_data["client_id"],
        )
        order = selectors.order_of_vendor(vendor=vendor, order_id=sale.pk)
        replayed = getattr(sale, "replayed", False)
        return Response(
            VendorOrderOutSerializer(order).data,
            status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED,
        )


@_action_schema(None, "Undo a cash sale within CASH_UNDO_MINUTES of it")
class VendorCashSaleUndoApi(_OrderApi):
    """The sale is cancelled and its units go back to their lots; any commission on it is given
    back. 409 `undone` when already undone, `too_late` after the window."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]

    def handle_exception(self, exc):
        if isinstance(exc, InvalidTransition) and exc.code:
            exc = ConflictError(exc.messages[0], code=exc.code)
        return super().handle_exception(exc)

    def post(self, request, order_id: int):
        vendor = request.user.vendor
        order = order_cash_sale_undo(order_id=order_id, vendor=vendor)
        order = selectors.order_of_vendor(vendor=vendor, order_id=order.pk)
        return Response(VendorOrderOutSerializer(order).data)


@_action_schema(OrderRejectInSerializer, "Can't supply an accepted order after all: cancel it")
class VendorOrderCancelApi(_VendorActionApi):
    in_serializer = OrderRejectInSerializer

    def act(self, *, order_id, vendor, data):
        order_vendor_cancel(order_id=order_id, vendor=vendor, reason=data["reason"])


@_action_schema(
    OrderLineShortInSerializer,
    "Units of a line can't be supplied: the customer won't pay for them (refunded after capture)",
)
class VendorOrderLineShortApi(_VendorActionApi):
    in_serializer = OrderLineShortInSerializer

    def post(self, request, order_id: int, line_id: int):
        self.line_id = line_id
        return super().post(request, order_id)

    def act(self, *, order_id, vendor, data):
        order_line_short(
            order_id=order_id,
            line_id=self.line_id,
            vendor=vendor,
            quantity=data["quantity"],
            reason=data["reason"],
        )


# --- staff ------------------------------------------------------------------------------------


class _StaffActionApi(_OrderApi):
    """Staff only. To anyone else these endpoints find no order at all (404, like someone else's
    order elsewhere), whatever the id."""

    in_serializer: type | None = None

    def act(self, *, order_id: int, actor, data: dict) -> None:
        raise NotImplementedError

    def post(self, request, order_id: int):
        if not (request.user.is_active and request.user.is_staff):
            raise NotFound(_("No such order."))
        order = Order.objects.get(pk=order_id)
        data: dict = {}
        if self.in_serializer is not None:
            body = self.in_serializer(data=request.data)
            body.is_valid(raise_exception=True)
            data = body.validated_data
        self.act(order_id=order.pk, actor=request.user, data=data)
        order = Order.objects.select_related("vendor", "pickup_point").get(pk=order_id)
        return Response(StaffOrderOutSerializer(order).data)


def _staff_schema(in_serializer, summary: str):
    return extend_schema(
        request=in_serializer,
        responses={200: StaffOrderOutSerializer, **ERRORS},
        tags=["staff orders"],
        summary=summary,
    )


@_staff_schema(
    StaffOrderCancelInSerializer,
    "Staff: cancel an order not handed over yet; stock back, money returned, both sides told",
)
class StaffOrderCancelApi(_StaffActionApi):
    in_serializer = StaffOrderCancelInSerializer

    def act(self, *, order_id, actor, data):
        order_staff_cancel(order_id=order_id, actor=actor, reason=data["reason"])


@_staff_schema(None, "Staff: expire an order nobody accepted yet, now")
class StaffOrderExpireApi(_StaffActionApi):
    def act(self, *, order_id, actor, data):
        order_expire_now(order_id=order_id, actor=actor)


@extend_schema(
    request=StaffLineRefundInSerializer,
    responses={200: StaffLineRefundOutSerializer, **ERRORS},
    tags=["staff orders"],
    summary="Staff: refund one line of a captured order (its total, with exactly its commission)",
)
class StaffOrderLineRefundApi(_OrderApi):
    """Staff only (404 to anyone else). A line is refunded once (409 after that)."""

    def post(self, request, order_id: int, line_id: int):
        if not (request.user.is_active and request.user.is_staff):
            raise NotFound(_("No such order."))
        order = Order.objects.get(pk=order_id)
        body = StaffLineRefundInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        refund = order_line_refund(
            order_id=order.pk,
            line_id=line_id,
            actor=request.user,
            reason=body.validated_data["reason"],
        )
        out = {
            "refund_id": refund.pk,
            "amount": refund.amount,
            "commission": refund.commission_hint,
            "status": refund.status,
        }
        return Response(StaffLineRefundOutSerializer(out).data)


# --- pickup points (what `pickup_point_id` names) ---------------------------------------------


class PickupPointsApi(APIView):
    """The partner points where a vendor's orders can be collected (the checkout page's list):
    active, near the vendor's home base, nearest first, with their opening hours."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[PickupPointsQuerySerializer],
        responses={
            200: PickupPointPublicSerializer(many=True),
            404: OpenApiResponse(description="No such vendor."),
        },
        tags=["pickup points"],
    )
    def get(self, request):
        query = PickupPointsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        vendor = vendors_public().filter(slug=query.validated_data["vendor"]).first()
        if vendor is None:
            raise NotFound(_("No such vendor."))
        points = selectors.pickup_points_near(vendor=vendor)
        return Response(PickupPointPublicSerializer(points, many=True).data)


# --- problem reports --------------------------------------------------------------------------


class ProblemReportInSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=PROBLEM_REASON_MAX, help_text="What went wrong.")


class ProblemReportOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    order_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=DisputeStatus.choices)
    reason = serializers.CharField()
    opened_at = serializers.DateTimeField()


class OrderProblemApi(_OrderApi):
    @extend_schema(
        request=ProblemReportInSerializer,
        responses={
            201: ProblemReportOutSerializer,
            **ERRORS,
            409: OpenApiResponse(
                description="Not handed over yet, not paid, or a report is already open."
            ),
        },
        tags=["orders"],
    )
    def post(self, request, order_id: int):
        """Report a problem with a handed-over, paid order (the order page's "Report a
        problem"): our team looks into it. One open report per order."""
        body = ProblemReportInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order = self.own_order(order_id)
        dispute = order_problem_report(
            order_id=order.pk, customer=order.customer, reason=body.validated_data["reason"]
        )
        return Response(ProblemReportOutSerializer(dispute).data, status=status.HTTP_201_CREATED)


class OrderPayOutSerializer(serializers.Serializer):
    checkout_url = serializers.URLField(help_text="The provider's card page: send the customer.")


class OrderPayApi(_OrderApi):
    @extend_schema(
        request=None,
        responses={200: OrderPayOutSerializer, **ERRORS, 503: OpenApiResponse()},
        tags=["orders"],
    )
    def post(self, request, order_id: int):
        """Pay (again) for an order still waiting for payment (the order page's "Pay"): where
        to send the customer. 409 once the order is no longer waiting for payment."""
        order = self.own_order(order_id)
        url = order_payment_start(
            order_id=order.pk,
            return_url=request.build_absolute_uri(reverse("orders:paid", args=[order.pk])),
        )
        return Response(OrderPayOutSerializer({"checkout_url": url}).data)
