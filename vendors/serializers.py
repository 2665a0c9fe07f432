from rest_framework import serializers

from vendors.models import (
    Category,
    LotAdjustment,
    OpeningHours,
    PickupPoint,
    Product,
    Stock,
    StockLot,
    Vendor,
    VendorHours,
)
from vendors.services import MAX_STOCK


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["slug", "name_ko", "name_en"]


class ProductSerializer(serializers.ModelSerializer):
    category = CategorySerializer(read_only=True)

    class Meta:
        model = Product
        fields = [
            "id",
            "sku",
            "name_ko",
            "name_en",
            "description_ko",
            "description_en",
            "price",
            "currency",
            "category",
            "photo",
        ]


class VendorListSerializer(serializers.ModelSerializer):
    items_left = serializers.IntegerField(read_only=True)
    products_left = serializers.IntegerField(read_only=True)

    class Meta:
        model = Vendor
        fields = ["slug", "name", "bio", "photo", "items_left", "products_left"]


class StockLineSerializer(serializers.ModelSerializer):
    product = ProductSerializer(read_only=True)
    quantity = serializers.IntegerField(
        source="sellable",
        read_only=True,
        help_text="Units that may be sold now (expired lots still on the cart are not).",
    )
    fresh_today = serializers.BooleanField(
        read_only=True, help_text="A lot of it was loaded today (Korea time) and has units left."
    )

    class Meta:
        model = Stock
        fields = ["product", "quantity", "fresh_today", "updated_at"]


class VendorDetailSerializer(VendorListSerializer):
    stock = StockLineSerializer(many=True, read_only=True, source="stock_lines")

    class Meta(VendorListSerializer.Meta):
        fields = [*VendorListSerializer.Meta.fields, "stock"]


class StockChangeInSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    quantity = serializers.IntegerField(min_value=0, max_value=MAX_STOCK)
    # No maximum: released reservations can put a row above MAX_STOCK (see stock_set).
    expected = serializers.IntegerField(
        min_value=0,
        required=False,
        help_text="The quantity you last saw; the change is refused (409) if it moved since.",
    )


class StockUpdateInSerializer(serializers.Serializer):
    changes = StockChangeInSerializer(many=True, allow_empty=False, max_length=500)


class OwnStockOutSerializer(serializers.ModelSerializer):
    product_id = serializers.IntegerField()
    sku = serializers.CharField(source="product.sku")
    name_ko = serializers.CharField(source="product.name_ko")
    name_en = serializers.CharField(source="product.name_en")

    class Meta:
        model = Stock
        fields = ["product_id", "sku", "name_ko", "name_en", "quantity", "updated_at"]


# --- pickup points ------------------------------------------------------------------------------


class OpeningHoursOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = OpeningHours
        fields = ["weekday", "opens", "closes"]


class PickupPointPublicSerializer(serializers.ModelSerializer):
    hours = OpeningHoursOutSerializer(
        many=True,
        read_only=True,
        help_text="Opening hours by weekday (0 = Monday), in Korea time.",
    )

    class Meta:
        model = PickupPoint
        fields = ["id", "name", "address", "lat", "lng", "cell", "hours"]


class PickupPointsQuerySerializer(serializers.Serializer):
    vendor = serializers.SlugField(
        max_length=90, help_text="The vendor's slug: the points near that vendor's cart."
    )


# --- the vendor application ---------------------------------------------------------------------


class VendorApplyInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80, help_text="The cart's name.")
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True)
    bio = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    home_lat = serializers.FloatField(min_value=-90, max_value=90)
    home_lng = serializers.FloatField(min_value=-180, max_value=180)


class VendorApplicationOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Vendor
        fields = [
            "slug",
            "name",
            "phone",
            "bio",
            "home_lat",
            "home_lng",
            "status",
            "status_reason",
            "status_changed_at",
            "created_at",
        ]


# --- the vendor's own working hours -------------------------------------------------------------


class DayHoursSerializer(serializers.ModelSerializer):
    """One weekday's working span, in Korea time."""

    weekday = serializers.IntegerField(
        min_value=0, max_value=6, help_text="0 = Monday ... 6 = Sunday."
    )
    opens = serializers.TimeField(format="%H:%M", help_text="Start, e.g. 07:00 (Korea time).")
    closes = serializers.TimeField(
        format="%H:%M", help_text="End, after the start, e.g. 19:00 (Korea time)."
    )

    class Meta:
        model = VendorHours
        fields = ["weekday", "opens", "closes"]


class OwnHoursSerializer(serializers.Serializer):
    days = DayHoursSerializer(
        many=True,
        max_length=7,
        help_text="At most one span a weekday. Empty: no hours published, so the cart takes no "
        "orders while off shift.",
    )


# --- the vendor's own cart lots -----------------------------------------------------------------


class LotOutSerializer(serializers.ModelSerializer):
    product_id = serializers.IntegerField()
    sku = serializers.CharField(source="product.sku")
    name_ko = serializers.CharField(source="product.name_ko")
    name_en = serializers.CharField(source="product.name_en")
    expired = serializers.BooleanField(
        source="is_expired", help_text="Past its sell-by: it can't be sold; write it off."
    )

    class Meta:
        model = StockLot
        fields = [
            "id",
            "product_id",
            "sku",
            "name_ko",
            "name_en",
            "quantity",
            "quantity_loaded",
            "expires_on",
            "best_before",
            "sell_by",
            "expired",
            "loaded_at",
        ]


class LotLoadInSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_STOCK)
    expires_on = serializers.DateField(help_text="The expiry date (Korea), today or later.")
    best_before = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Chilled items: the time they are best before (a time without offset is Korea's).",
    )


class LotCorrectInSerializer(serializers.Serializer):
    quantity = serializers.IntegerField(
        min_value=0, max_value=MAX_STOCK, help_text="What the lot holds, counted."
    )
    reason = serializers.ChoiceField(
        choices=LotAdjustment.Reason.choices, default=LotAdjustment.Reason.COUNT
    )
    note = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class LotWriteOffInSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=LotAdjustment.Reason.choices)
    quantity = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None, help_text="All if left out."
    )
    note = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
