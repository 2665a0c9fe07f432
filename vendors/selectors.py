"""Reads shared by vendor pages and APIs."""

from django.db.models import Count, Prefetch, Q, QuerySet, Sum

from .models import Product, Stock, Vendor


def vendors_public() -> QuerySet[Vendor]:
    """Vendors a customer may see and buy from: approved only."""
    return Vendor.objects.filter(status=Vendor.Status.APPROVED).annotate(
        items_left=Sum("stock__quantity", filter=Q(stock__product__is_active=True), default=0),
        products_left=Count(
            "stock", filter=Q(stock__quantity__gt=0, stock__product__is_active=True)
        ),
    )


def vendor_stock(*, vendor: Vendor, in_stock_only: bool = False) -> QuerySet[Stock]:
    qs = (
        Stock.objects.filter(vendor=vendor, product__is_active=True)
        .select_related("product", "product__category")
        .order_by("product__category__position", "product__name_ko")
    )
    return qs.filter(quantity__gt=0) if in_stock_only else qs


def vendor_public_detail(*, slug: str) -> Vendor:
    return (
        vendors_public()
        .prefetch_related(
            Prefetch(
                "stock",
                queryset=Stock.objects.filter(product__is_active=True)
                .select_related("product", "product__category")
                .order_by("-quantity", "product__category__position", "product__name_ko"),
                to_attr="stock_lines",
            )
        )
        .get(slug=slug)
    )


def products_active() -> QuerySet[Product]:
    return Product.objects.filter(is_active=True).select_related("category")


def stock_editor_rows(*, vendor: Vendor) -> list[tuple[Product, int]]:
    """Every active product with the vendor's quantity (0 where the cart has none)."""
    have = dict(Stock.objects.filter(vendor=vendor).values_list("product_id", "quantity"))
    return [(p, have.get(p.pk, 0)) for p in products_active()]
