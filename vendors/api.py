"""Vendor and product API: public reads, and a vendor's own cart stock and working hours."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from o2o.api import error_response
from o2o.errors import Conflict, NotAllowed

from . import selectors
from .models import StockLot, Vendor
from .serializers import (
    LotCorrectInSerializer,
    LotLoadInSerializer,
    LotOutSerializer,
    LotWriteOffInSerializer,
    OwnHoursSerializer,
    OwnStockOutSerializer,
    ProductSerializer,
    StockUpdateInSerializer,
    VendorApplicationOutSerializer,
    VendorApplyInSerializer,
    VendorDetailSerializer,
    VendorListSerializer,
)
from .services import (
    DayHours,
    StockChange,
    lot_correct,
    lot_load,
    lot_write_off,
    stock_set,
    vendor_apply,
    vendor_hours_set,
)


class VendorListApi(generics.ListAPIView):
    """Approved vendors."""

    serializer_class = VendorListSerializer
    permission_classes = [permissions.AllowAny]

    def get_queryset(self):
        return selectors.vendors_public().order_by("name", "pk")


class VendorDetailApi(generics.RetrieveAPIView):
    """One approved vendor with what is left on the cart."""

    serializer_class = VendorDetailSerializer
    permission_classes = [permissions.AllowAny]
    lookup_field = "slug"

    def get_object(self):
        try:
            return selectors.vendor_public_detail(slug=self.kwargs["slug"])
        except Vendor.DoesNotExist as exc:
            raise NotFound(_("No such vendor.")) from exc


class ProductListApi(generics.ListAPIView):
    """The catalogue of products on sale."""

    serializer_class = ProductSerializer
    permission_classes = [permissions.AllowAny]

    def get_queryset(self):
        return selectors.products_active().order_by("category__position", "sku")


class IsVendor(permissions.BasePermission):
    message = gettext_lazy("Only vendors have a cart to stock. Apply to sell first.")

    def has_permission(self, request, view) -> bool:
        return bool(request.user.is_authenticated and hasattr(request.user, "vendor"))


class OwnStockApi(APIView):
    """The signed-in vendor's own cart stock. There is no way to name another vendor's cart."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]

    @extend_schema(responses=OwnStockOutSerializer(many=True))
    def get(self, request):
        rows = selectors.vendor_stock(vendor=request.user.vendor)
        return Response(OwnStockOutSerializer(rows, many=True).data)

    @extend_schema(
        request=StockUpdateInSerializer,
        responses={
            200: OwnStockOutSerializer(many=True),
            409: OpenApiResponse(description="An `expected` quantity is stale: nothing changed."),
        },
    )
    def patch(self, request):
        body = StockUpdateInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changes = [StockChange(**c) for c in body.validated_data["changes"]]
        try:
            rows = stock_set(vendor=request.user.vendor, actor=request.user, changes=changes)
        except Conflict as exc:
            return error_response("conflict", exc.messages[0], status.HTTP_409_CONFLICT)
        except NotAllowed as exc:
            return error_response("forbidden", exc.messages[0], status.HTTP_403_FORBIDDEN)
        # Any other ValidationError goes to o2o.api.exception_handler: 400 with its fields.
        return Response(OwnStockOutSerializer(rows, many=True).data)


class OwnHoursApi(APIView):
    """The signed-in vendor's weekly working hours (Korea time): customers may order ahead for
    delivery or pickup within them while the cart is off shift. The same service as the page."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]

    @staticmethod
    def _body(vendor: Vendor) -> dict:
        spans = selectors.vendor_hours(vendor_ids=[vendor.pk])[vendor.pk]
        days = [{"weekday": s.weekday, "opens": s.opens, "closes": s.closes} for s in spans]
        return OwnHoursSerializer({"days": days}).data

    @extend_schema(responses=OwnHoursSerializer, tags=["vendor hours"])
    def get(self, request):
        """The hours customers see now, by weekday then start."""
        return Response(self._body(request.user.vendor))

    @extend_schema(
        request=OwnHoursSerializer,
        responses={
            200: OwnHoursSerializer,
            400: OpenApiResponse(description="Invalid input: `error.fields` names what to fix."),
            403: OpenApiResponse(description="Not a vendor, or the vendor account is suspended."),
        },
        tags=["vendor hours"],
    )
    def put(self, request):
        """Replace all the working hours with `days` (an empty list publishes none)."""
        body = OwnHoursSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        days = [DayHours(**d) for d in body.validated_data["days"]]
        vendor = request.user.vendor
        try:
            vendor_hours_set(vendor=vendor, days=days)
        except NotAllowed as exc:
            return error_response("forbidden", exc.messages[0], status.HTTP_403_FORBIDDEN)
        # Any other ValidationError goes to o2o.api.exception_handler: 400 with its fields.
        return Response(self._body(vendor))


class AlreadyApplied(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = gettext_lazy("You have already applied to sell.")
    default_code = "already_applied"


class VendorApplyApi(APIView):
    """The signed-in person's application to sell: how it stands, and applying (the same service
    as the page). Staff approve it in the admin; until then the vendor can't sell."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses={
            200: VendorApplicationOutSerializer,
            404: OpenApiResponse(description="You have not applied to sell."),
        },
        tags=["vendor application"],
    )
    def get(self, request):
        vendor = Vendor.objects.filter(user=request.user).first()
        if vendor is None:
            raise NotFound(_("You have not applied to sell."))
        return Response(VendorApplicationOutSerializer(vendor).data)

    @extend_schema(
        request=VendorApplyInSerializer,
        responses={
            201: VendorApplicationOutSerializer,
            400: OpenApiResponse(description="Invalid input: `error.fields` names what to fix."),
            409: OpenApiResponse(description="`already_applied`: see GET for its status."),
        },
        tags=["vendor application"],
    )
    def post(self, request):
        """Apply to sell with a cart name and a home base; the application starts `pending`."""
        body = VendorApplyInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if Vendor.objects.filter(user=request.user).exists():
            raise AlreadyApplied()
        try:
            vendor = vendor_apply(user=request.user, **body.validated_data)
        except ValidationError:
            # The other request of a double tap got there first.
            if Vendor.objects.filter(user=request.user).exists():
                raise AlreadyApplied() from None
            raise
        return Response(VendorApplicationOutSerializer(vendor).data, status=status.HTTP_201_CREATED)


def _lot_error(exc: Exception) -> Response | None:
    if isinstance(exc, StockLot.DoesNotExist):
        return error_response("not_found", _("That lot is not on your cart."), 404)
    if isinstance(exc, Conflict):
        return error_response("conflict", exc.messages[0], status.HTTP_409_CONFLICT)
    if isinstance(exc, NotAllowed):
        return error_response("forbidden", exc.messages[0], status.HTTP_403_FORBIDDEN)
    return None  # any other ValidationError: o2o.api.exception_handler, 400 with its fields


_LOT_ERRORS = {
    400: OpenApiResponse(description="Invalid input: `error.fields` names what to fix."),
    403: OpenApiResponse(description="Not a vendor, or the vendor account is suspended."),
}


class OwnLotsApi(APIView):
    """The signed-in vendor's cart lots (the same services as the stock page): what is on the
    cart by lot, in selling order (soonest sell-by first), and loading a new lot."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]

    @extend_schema(responses=LotOutSerializer(many=True), tags=["vendor lots"])
    def get(self, request):
        """Lots with units left; `expired` ones can't be sold and wait to be written off."""
        lots = selectors.vendor_lots(vendor=request.user.vendor)
        rows = [lot for product_lots in lots.values() for lot in product_lots]
        products = {p.pk: p for p in selectors.products_active().filter(lots__in=rows).distinct()}
        for lot in rows:
            if lot.product_id in products:
                lot.product = products[lot.product_id]
        rows = [lot for lot in rows if lot.product_id in products]
        return Response(LotOutSerializer(rows, many=True).data)

    @extend_schema(
        request=LotLoadInSerializer,
        responses={201: LotOutSerializer, **_LOT_ERRORS},
        tags=["vendor lots"],
    )
    def post(self, request):
        """Load units of a product on the cart as one lot with its expiry."""
        body = LotLoadInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            lot = lot_load(vendor=request.user.vendor, actor=request.user, **body.validated_data)
        except ValidationError as exc:
            if (response := _lot_error(exc)) is not None:
                return response
            raise
        return Response(LotOutSerializer(lot).data, status=status.HTTP_201_CREATED)


class OwnLotCorrectApi(APIView):
    """Correct a lot's count (it holds `quantity` now): the cart's stock follows."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]

    @extend_schema(
        request=LotCorrectInSerializer,
        responses={
            200: LotOutSerializer,
            404: OpenApiResponse(description="No such lot on your cart."),
            **_LOT_ERRORS,
        },
        tags=["vendor lots"],
    )
    def post(self, request, lot_id: int):
        body = LotCorrectInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            lot = lot_correct(
                lot_id=lot_id, vendor=request.user.vendor, actor=request.user, **body.validated_data
            )
        except (ValidationError, StockLot.DoesNotExist) as exc:
            if (response := _lot_error(exc)) is not None:
                return response
            raise
        return Response(LotOutSerializer(lot).data)


class OwnLotWriteOffApi(APIView):
    """Write units of a lot off as waste with a reason (`quantity` of them, or all)."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]

    @extend_schema(
        request=LotWriteOffInSerializer,
        responses={
            200: LotOutSerializer,
            404: OpenApiResponse(description="No such lot on your cart."),
            409: OpenApiResponse(description="The lot holds fewer units than asked."),
            **_LOT_ERRORS,
        },
        tags=["vendor lots"],
    )
    def post(self, request, lot_id: int):
        body = LotWriteOffInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            lot = lot_write_off(
                lot_id=lot_id, vendor=request.user.vendor, actor=request.user, **body.validated_data
            )
        except (ValidationError, StockLot.DoesNotExist) as exc:
            if (response := _lot_error(exc)) is not None:
                return response
            raise
        return Response(LotOutSerializer(lot).data)
