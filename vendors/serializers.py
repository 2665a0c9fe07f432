from rest_framework import serializers

from vendors.models import Category, Product, Stock, Vendor
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

    class Meta:
        model = Stock
        fields = ["product", "quantity", "updated_at"]


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
