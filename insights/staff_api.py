"""GET /api/insights/demand/: the staff demand page's figures (insights.staff.demand_areas), each
area with its cell and boundary. Staff with the permission to read the sales summaries only."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from .staff import BANDS, PERIODS, demand_areas
from .staff_views import may_read_demand


class DemandQuerySerializer(serializers.Serializer):
    days = serializers.ChoiceField(choices=list(PERIODS), default=28)
    band = serializers.ChoiceField(choices=list(BANDS), default="all")


class DemandAreaSerializer(serializers.Serializer):
    cell = serializers.CharField(help_text='An H3 cell; "" for the small areas pooled together.')
    merged = serializers.BooleanField(help_text="A coarser cell: small areas with neighbours.")
    boundary = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    units = serializers.IntegerField(allow_null=True)
    amount = serializers.IntegerField(allow_null=True, help_text="KRW.")
    buyers = serializers.IntegerField(allow_null=True)
    misses = serializers.IntegerField(allow_null=True, help_text="null: too few to show.")
    none_near = serializers.IntegerField()
    sold_out = serializers.IntegerField()
    carts_now = serializers.IntegerField()
    carts_sold = serializers.IntegerField()
    score = serializers.FloatField()
    reason = serializers.CharField()
    top_product_id = serializers.IntegerField(allow_null=True)


class DemandOutSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    band = serializers.CharField()
    first = serializers.DateField()
    last = serializers.DateField()
    hidden_buyers = serializers.BooleanField()
    areas = DemandAreaSerializer(many=True)
    top = DemandAreaSerializer(many=True)


class IsDemandStaff(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        if request.user.is_authenticated and not may_read_demand(request.user):
            raise NotFound(_("No such page."))
        return may_read_demand(request.user)


class DemandApi(APIView):
    """Sales, buyers, misses and carts per area, and where a new vendor would sell."""

    permission_classes = [IsDemandStaff]

    @extend_schema(
        operation_id="insights_demand",
        parameters=[DemandQuerySerializer],
        responses={
            200: DemandOutSerializer,
            400: OpenApiResponse(description="Invalid input: `error.fields` names what to fix."),
            404: OpenApiResponse(description="Not staff with the right to read sales."),
        },
        tags=["insights"],
    )
    def get(self, request):
        query = DemandQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        demand = demand_areas(
            days=int(query.validated_data["days"]), band=query.validated_data["band"]
        )
        return Response(DemandOutSerializer(demand).data)
