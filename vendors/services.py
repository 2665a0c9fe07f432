"""Every write that matters for vendors: application, approval, cart stock, service area, working
hours."""

from dataclasses import dataclass
from datetime import time
from typing import TYPE_CHECKING

import h3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, Value, When
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from customers.services import customer_profile_get_or_create
from o2o.errors import Conflict, NotAllowed
from o2o.geo import validate_lat_lng
from o2o.hooks import on_commit_safe

from .models import OpeningHours, Product, ServiceCell, Stock, Vendor, VendorHours
from .realtime import stock_publish
from .signals import stock_changed, vendor_status_changed

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from o2o.accounts.models import User

MAX_STOCK = 10_000
DEFAULT_SERVICE_RINGS = 1


def _unique_slug(name: str, user_id: int) -> str:
    # Korean names slugify to nothing; the user id keeps every slug unique and stable.
    base = slugify(name) or "cart"
    return f"{base[:70]}-{user_id}"


@transaction.atomic
def vendor_apply(
    *,
    user: "User",
    name: str,
    home_lat: float,
    home_lng: float,
    phone: str = "",
    bio: str = "",
    service_rings: int = DEFAULT_SERVICE_RINGS,
) -> Vendor:
    """A signed-up person applies to sell. The vendor starts PENDING and can't sell until staff
    approve. The service area defaults to the home base's cell and its neighbours."""
    already = ValidationError(_("You have already applied to sell."))
    if Vendor.objects.filter(user=user).exists():
        raise already
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Enter the name of your cart.")})
    try:
        validate_lat_lng(home_lat, home_lng)
    except ValidationError as exc:
        raise ValidationError({"home_lat": exc.messages}) from exc
    customer_profile_get_or_create(user=user)
    vendor = Vendor(
        user=user,
        name=name,
        slug=_unique_slug(name, user.pk),
        phone=phone.strip(),
        bio=bio.strip(),
        home_lat=home_lat,
        home_lng=home_lng,
    )
    # The check above and these unique checks can pass while the other submit of a double tap on
    # "apply" has inserted its vendor but not yet committed: the user's vendor shows up here (once
    # customer_profile_get_or_create waited for that commit) or the INSERT fails on the index.
    try:
        vendor.full_clean(exclude=["home_cell"])
    except ValidationError as exc:
        if "user" in exc.error_dict or "slug" in exc.error_dict:  # the slug ends in the user id
            raise already from exc
        raise
    try:
        with transaction.atomic():  # a savepoint, so that the check below can still query
            vendor.save()
    except IntegrityError as exc:
        if Vendor.objects.filter(user=user).exists():
            raise already from exc
        raise
    home = h3.latlng_to_cell(home_lat, home_lng, settings.SERVICE_AREA_RES)
    vendor_service_area_set(vendor=vendor, cells=list(h3.grid_disk(home, service_rings)))
    return vendor


def _vendor_set_status(
    *, vendor_id: int, to: str, allowed_from: tuple[str, ...], reason: str = ""
) -> Vendor:
    changed = Vendor.objects.filter(pk=vendor_id, status__in=allowed_from).update(
        status=to, status_reason=reason[:200], status_changed_at=timezone.now()
    )
    if not changed:
        vendor = Vendor.objects.get(pk=vendor_id)
        raise Conflict(
            _("A vendor who is %(status)s can't be moved to %(to)s.")
            % {"status": vendor.get_status_display(), "to": Vendor.Status(to).label}
        )
    on_commit_safe(vendor_status_changed.send_robust, sender=Vendor, vendor_id=vendor_id, status=to)
    return Vendor.objects.get(pk=vendor_id)


@transaction.atomic
def vendor_approve(*, vendor_id: int, reason: str = "") -> Vendor:
    S = Vendor.Status
    return _vendor_set_status(
        vendor_id=vendor_id, to=S.APPROVED, allowed_from=(S.PENDING, S.SUSPENDED), reason=reason
    )


@transaction.atomic
def vendor_suspend(*, vendor_id: int, reason: str = "") -> Vendor:
    S = Vendor.Status
    return _vendor_set_status(
        vendor_id=vendor_id, to=S.SUSPENDED, allowed_from=(S.APPROVED,), reason=reason
    )


@transaction.atomic
def vendor_reject(*, vendor_id: int, reason: str = "") -> Vendor:
    S = Vendor.Status
    return _vendor_set_status(
        vendor_id=vendor_id, to=S.REJECTED, allowed_from=(S.PENDING,), reason=reason
    )


@transaction.atomic
def vendor_service_area_set(*, vendor: Vendor, cells: list[str]) -> list[str]:
    cleaned = sorted(set(cells))
    for cell in cleaned:
        if not h3.is_valid_cell(cell) or h3.get_resolution(cell) != settings.SERVICE_AREA_RES:
            raise ValidationError(
                _("%(cell)s is not a valid service-area cell.") % {"cell": str(cell)[:20]}
            )
    if not cleaned:
        raise ValidationError(_("A service area needs at least one cell."))
    ServiceCell.objects.filter(vendor=vendor).exclude(cell__in=cleaned).delete()
    existing = set(ServiceCell.objects.filter(vendor=vendor).values_list("cell", flat=True))
    ServiceCell.objects.bulk_create(
        [ServiceCell(vendor=vendor, cell=c) for c in cleaned if c not in existing]
    )
    return cleaned


@dataclass(frozen=True)
class StockChange:
    product_id: int
    quantity: int
    expected: int | None = None


def _check_quantity(quantity: object, *, limit: bool = True) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValidationError({"quantity": _("Quantity must be a whole number.")})
    if quantity < 0:
        raise ValidationError({"quantity": _("Quantity can't be negative.")})
    if limit and quantity > MAX_STOCK:
        raise ValidationError(
            {"quantity": _("Quantity can't be more than %(max)s.") % {"max": MAX_STOCK}}
        )
    return quantity


@transaction.atomic
def stock_set(
    *, vendor: Vendor, actor: "User | AnonymousUser", changes: list[StockChange]
) -> list[Stock]:
    """The vendor sets what is on the cart. Only the vendor's own user (or staff) may.

    With `expected` given, a row changes only if it still holds that quantity (an order may have
    reserved units since the vendor looked): otherwise Conflict, and nothing of the batch is saved.
    """
    if not (actor.is_staff or getattr(actor, "pk", None) == vendor.user_id):
        raise NotAllowed(_("You can only change your own cart's stock."))
    # Read the status now, not from the instance the caller holds (it may be stale).
    status = Vendor.objects.filter(pk=vendor.pk).values_list("status", flat=True).get()
    if status in (Vendor.Status.SUSPENDED, Vendor.Status.REJECTED) and not actor.is_staff:
        raise NotAllowed(_("Your vendor account is %(s)s.") % {"s": Vendor.Status(status).label})
    seen: set[int] = set()
    for change in changes:
        _check_quantity(change.quantity)
        if change.expected is not None:
            # What the vendor saw has no maximum: released reservations (stock_release) can put a
            # row above MAX_STOCK, and the vendor must still be able to lower it.
            _check_quantity(change.expected, limit=False)
        if change.product_id in seen:
            raise ValidationError(_("Each product may appear only once."))
        seen.add(change.product_id)
    active = set(Product.objects.filter(pk__in=seen, is_active=True).values_list("pk", flat=True))
    missing = seen - active
    if missing:
        raise ValidationError({"product": _("Unknown or inactive product.")})
    if not changes:
        return []
    # Rows the cart never had start at 0 (a concurrent first save of the same row is no conflict).
    Stock.objects.bulk_create(
        [Stock(vendor=vendor, product_id=pid, quantity=0) for pid in sorted(seen)],
        ignore_conflicts=True,
    )
    # Locked in a fixed order so two batches touching the same rows can't deadlock; then every
    # row checked against what the vendor saw and written in one UPDATE, not three queries a row.
    rows = {
        row.product_id: row
        for row in Stock.objects.select_for_update(of=("self",))
        .filter(vendor=vendor, product_id__in=seen)
        .select_related("product", "product__category")
        .order_by("product_id")
    }
    for change in sorted(changes, key=lambda c: c.product_id):
        current = rows[change.product_id].quantity
        if change.expected is not None and current != change.expected:
            raise Conflict(
                _("%(product)s changed meanwhile: %(current)s left now. Check and save again.")
                % {"product": rows[change.product_id].product.name, "current": current}
            )
    now = timezone.now()
    Stock.objects.filter(pk__in=[row.pk for row in rows.values()]).update(
        quantity=Case(
            *(When(product_id=c.product_id, then=Value(c.quantity)) for c in changes),
            output_field=IntegerField(),
        ),
        updated_at=now,
    )
    result: list[Stock] = []
    for change in sorted(changes, key=lambda c: c.product_id):
        row = rows[change.product_id]
        row.quantity, row.updated_at = change.quantity, now
        result.append(row)
    _notify_stock_changed(vendor.pk)
    return result


def _notify_stock_changed(vendor_id: int | None) -> None:
    on_commit_safe(stock_changed.send_robust, sender=Stock, vendor_id=vendor_id)
    # The vendor page's "N left", live: a best-effort broadcast, which pages resync on reconnect.
    on_commit_safe(stock_publish, vendor_id=vendor_id)


def stock_adjust(*, stock_id: int, delta: int) -> bool:
    """Add (or, with a negative delta, take) units without a lock: the WHERE keeps it >= 0."""
    rows = Stock.objects.filter(pk=stock_id)
    if delta < 0:
        rows = rows.filter(quantity__gte=-delta)
    changed = bool(rows.update(quantity=F("quantity") + delta, updated_at=timezone.now()))
    if changed:
        vendor_id = Stock.objects.filter(pk=stock_id).values_list("vendor_id", flat=True).first()
        _notify_stock_changed(vendor_id)
    return changed


class OutOfStock(Conflict):
    """Not enough of a product on the cart now."""

    def __init__(self, product_id: int, message: str) -> None:
        super().__init__(message)
        self.product_id = product_id


def stock_reserve(*, vendor_id: int, items: dict[int, int]) -> None:
    """Take `items` ({product_id: quantity}) off the cart, all or nothing.

    One conditional UPDATE per line (`quantity >= wanted`), never read-then-write, in product order
    so two orders sharing products can't deadlock. Call it inside the caller's transaction: on
    OutOfStock the caller's rollback returns what was already taken.
    """
    for product_id, wanted in sorted(items.items()):
        if wanted <= 0:
            raise ValidationError(_("Quantities must be at least 1."))
        taken = Stock.objects.filter(
            vendor_id=vendor_id, product_id=product_id, quantity__gte=wanted
        ).update(quantity=F("quantity") - wanted, updated_at=timezone.now())
        if not taken:
            left = (
                Stock.objects.filter(vendor_id=vendor_id, product_id=product_id)
                .values_list("quantity", flat=True)
                .first()
            ) or 0
            product = Product.objects.filter(pk=product_id).only("name_ko", "name_en").first()
            name = product.name if product else f"#{product_id}"
            raise OutOfStock(
                product_id,
                _("Only %(left)s of %(name)s left on the cart.") % {"left": left, "name": name}
                if left
                else _("%(name)s is sold out.") % {"name": name},
            )
    _notify_stock_changed(vendor_id)


def stock_release(*, vendor_id: int, items: dict[int, int]) -> None:
    """Put reserved units back on the cart (order cancelled, rejected, expired or unpaid)."""
    for product_id, quantity in sorted(items.items()):
        Stock.objects.filter(vendor_id=vendor_id, product_id=product_id).update(
            quantity=F("quantity") + quantity, updated_at=timezone.now()
        )
    _notify_stock_changed(vendor_id)


# --- working hours ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayHours:
    """One weekday's working span (Korea time), 0 = Monday."""

    weekday: int
    opens: time
    closes: time


def _check_days(days: list[DayHours]) -> None:
    """Every problem of the list at once, each naming its day, under "days"."""
    problems: list[str] = []
    seen: set[int] = set()
    for day in days:
        weekday = day.weekday
        if isinstance(weekday, bool) or weekday not in OpeningHours.Weekday.values:
            problems.append(_("A weekday is a number from 0 (Monday) to 6 (Sunday)."))
            continue
        name = str(OpeningHours.Weekday(weekday).label)
        if weekday in seen:
            problems.append(_("%(day)s is given more than once: one span a day.") % {"day": name})
        seen.add(weekday)
        if not (isinstance(day.opens, time) and isinstance(day.closes, time)):
            problems.append(_("%(day)s needs a start and an end time.") % {"day": name})
        elif day.opens.tzinfo is not None or day.closes.tzinfo is not None:
            problems.append(
                _("%(day)s: give the times in Korea time, without a zone.") % {"day": name}
            )
        elif day.closes <= day.opens:
            problems.append(_("%(day)s: the end must be after the start.") % {"day": name})
    if problems:
        raise ValidationError({"days": problems})


@transaction.atomic
def vendor_hours_set(*, vendor: Vendor, days: list[DayHours]) -> list[VendorHours]:
    """The vendor publishes their weekly working hours, replacing the ones before (at most one span
    a weekday). Customers may order ahead (delivery, pickup) inside them while the cart is off
    shift; an empty list publishes none, so the cart takes no orders while off shift."""
    _check_days(days)
    # Locking the vendor row serialises two saves of the same vendor's hours (the second sees the
    # first's rows and replaces them) and reads the status as it is now, not as the caller saw it.
    status = (
        Vendor.objects.select_for_update()
        .filter(pk=vendor.pk)
        .values_list("status", flat=True)
        .get()
    )
    if status in (Vendor.Status.SUSPENDED, Vendor.Status.REJECTED):
        raise NotAllowed(_("Your vendor account is %(s)s.") % {"s": Vendor.Status(status).label})
    VendorHours.objects.filter(vendor=vendor).delete()
    Vendor.objects.filter(pk=vendor.pk, hours_published=False).update(hours_published=True)
    return VendorHours.objects.bulk_create(
        [
            VendorHours(vendor=vendor, weekday=d.weekday, opens=d.opens, closes=d.closes)
            for d in sorted(days, key=lambda d: d.weekday)
        ]
    )
