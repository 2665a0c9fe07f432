"""Which commission plan is in force: the most specific plan valid at a moment, per category.

Specificity: vendor and category > vendor > category > platform default plan > the
COMMISSION_DEFAULT_BPS setting. Among plans equally specific, the one that started last wins."""

from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db.models import Q

from o2o.money import basis_points_of

from .models import CommissionPlan


def commission_of(amount: int, bps: int) -> int:
    """The platform's commission on `amount`: amount × bps / 10 000, rounded half-up."""
    return basis_points_of(amount, bps)


def plans_in_force(*, vendor_id: int, at: datetime):
    return CommissionPlan.objects.filter(
        Q(vendor_id=vendor_id) | Q(vendor__isnull=True),
        Q(valid_until__isnull=True) | Q(valid_until__gt=at),
        valid_from__lte=at,
    )


def commission_bps_for(
    *, vendor_id: int, category_ids: Iterable[int], at: datetime
) -> tuple[int, dict[int, int]]:
    """(the vendor's rate without a category, {category id: rate}) in force at `at`."""
    wanted = set(category_ids)
    plans = list(
        plans_in_force(vendor_id=vendor_id, at=at)
        .filter(Q(category__isnull=True) | Q(category_id__in=wanted))
        .values("vendor_id", "category_id", "bps", "valid_from", "pk")
    )

    def best(category_id: int | None) -> int:
        ranked = []
        for p in plans:
            if p["category_id"] not in (None, category_id):
                continue
            rank = (p["vendor_id"] is not None) * 2 + (p["category_id"] is not None)
            ranked.append((rank, p["valid_from"], p["pk"], p["bps"]))
        return max(ranked)[3] if ranked else settings.COMMISSION_DEFAULT_BPS

    return best(None), {cid: best(cid) for cid in wanted}
