"""Every write that matters for vendors: application, approval, cart stock, service area, working
hours."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import h3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from customers.services import customer_profile_get_or_create
from o2o.batching import on_commit_coalesced
from o2o.errors import Conflict, NotAllowed
from o2o.geo import validate_lat_lng
from o2o.hooks import on_commit_safe

from .models import (
    LotAdjustment,
    LotAllocation,
    OpeningHours,
    Product,
    ServiceCell,
    Stock,
    StockLot,
    Vendor,
    VendorHours,
)
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


def _check_stock_actor(*, vendor: Vendor, actor: "User | AnonymousUser") -> None:
    """Only the vendor's own user (or staff) changes a cart's stock, and not while suspended."""
    if not (actor.is_staff or getattr(actor, "pk", None) == vendor.user_id):
        raise NotAllowed(_("You can only change your own cart's stock."))
    # Read the status now, not from the instance the caller holds (it may be stale).
    status = Vendor.objects.filter(pk=vendor.pk).values_list("status", flat=True).get()
    if status in (Vendor.Status.SUSPENDED, Vendor.Status.REJECTED) and not actor.is_staff:
        raise NotAllowed(_("Your vendor account is %(s)s.") % {"s": Vendor.Status(status).label})


# --- cold-chain lots ----------------------------------------------------------------------------
# The rule (vendors.models.StockLot): Stock.quantity == the sum of its lots' remaining quantity,
# expired lots included until written off; only lots with sell_by > now are sold, soonest first.
# Every writer takes the Stock row first (a guarded UPDATE or SELECT ... FOR UPDATE, products in
# id order), then its lots in (sell_by, id) order: two writers of one product queue on the Stock row,
# so what they read of its lots stays true until they commit, and no lot is oversold.


def korea_today() -> date:
    return timezone.localdate(timezone=ZoneInfo(settings.TIME_ZONE))


def lot_sell_by(*, expires_on: date, best_before: datetime | None = None) -> datetime:
    """When a lot stops being sellable: at its best-before time, else when its expiry day ends in
    Korea, whichever comes first."""
    day_over = datetime.combine(
        expires_on + timedelta(days=1), time.min, tzinfo=ZoneInfo(settings.TIME_ZONE)
    )
    return min(best_before, day_over) if best_before is not None else day_over


def _default_lot(
    *, vendor_id: int, product_id: int, quantity: int, now: datetime, actor_id: int | None = None
) -> StockLot:
    """Units put on the cart without an expiry: the platform's default shelf life."""
    expires_on = korea_today() + timedelta(days=settings.STOCK_DEFAULT_SHELF_DAYS)
    return StockLot(
        vendor_id=vendor_id,
        product_id=product_id,
        quantity_loaded=quantity,
        quantity=quantity,
        expires_on=expires_on,
        sell_by=lot_sell_by(expires_on=expires_on),
        loaded_at=now,
        loaded_by_id=actor_id,
    )


def _lots_add(deltas: dict[int, int]) -> None:
    """Change several (already locked) lots by signed amounts in one UPDATE; the CHECK keeps each
    lot >= 0."""
    deltas = {lot_id: d for lot_id, d in deltas.items() if d}
    if not deltas:
        return
    StockLot.objects.filter(pk__in=list(deltas)).update(
        quantity=Case(
            *(When(pk=lot_id, then=F("quantity") + Value(d)) for lot_id, d in deltas.items()),
            output_field=IntegerField(),
        )
    )


def _lock_stock_row(*, vendor_id: int, product_id: int) -> Stock:
    return Stock.objects.select_for_update(of=("self",)).get(
        vendor_id=vendor_id, product_id=product_id
    )


@transaction.atomic
def lot_load(
    *,
    vendor: Vendor,
    actor: "User | AnonymousUser",
    product_id: int,
    quantity: int,
    expires_on: date,
    best_before: datetime | None = None,
) -> StockLot:
    """The vendor loads `quantity` units of a product on the cart, expiring on `expires_on`
    (and, for chilled items, best before `best_before`): one new lot, added to the cart's stock."""
    _check_stock_actor(vendor=vendor, actor=actor)
    _check_quantity(quantity)
    if quantity == 0:
        raise ValidationError({"quantity": _("Load at least one unit.")})
    if not Product.objects.filter(pk=product_id, is_active=True).exists():
        raise ValidationError({"product": _("Unknown or inactive product.")})
    now = timezone.now()
    if not isinstance(expires_on, date) or isinstance(expires_on, datetime):
        raise ValidationError({"expires_on": _("Enter the expiry date.")})
    if expires_on < korea_today():
        raise ValidationError({"expires_on": _("This date has passed: the units can't be sold.")})
    if best_before is not None and (timezone.is_naive(best_before) or best_before <= now):
        raise ValidationError({"best_before": _("The best-before time must be in the future.")})
    sell_by = lot_sell_by(expires_on=expires_on, best_before=best_before)
    Stock.objects.bulk_create(
        [Stock(vendor=vendor, product_id=product_id, quantity=0)], ignore_conflicts=True
    )
    Stock.objects.filter(vendor=vendor, product_id=product_id).update(
        quantity=F("quantity") + quantity, updated_at=now
    )
    lot = StockLot.objects.create(
        vendor=vendor,
        product_id=product_id,
        quantity_loaded=quantity,
        quantity=quantity,
        expires_on=expires_on,
        best_before=best_before,
        sell_by=sell_by,
        loaded_at=now,
        loaded_by_id=getattr(actor, "pk", None),
    )
    _notify_stock_changed(vendor.pk)
    return lot


def _lot_change(
    *,
    lot_id: int,
    vendor: Vendor,
    actor: "User | AnonymousUser",
    kind: str,
    reason: str,
    new_quantity: Callable[[int], int],
    note: str,
) -> StockLot:
    """Set one of the vendor's lots to new_quantity(current), the cart's row by the same amount,
    and record why. StockLot.DoesNotExist when the lot is not the vendor's."""
    _check_stock_actor(vendor=vendor, actor=actor)
    if reason not in LotAdjustment.Reason.values:
        raise ValidationError({"reason": _("Choose a reason.")})
    product_id = (
        StockLot.objects.filter(pk=lot_id, vendor=vendor).values_list("product_id", flat=True).get()
    )
    stock = _lock_stock_row(vendor_id=vendor.pk, product_id=product_id)
    lot = StockLot.objects.select_for_update().select_related("product").get(pk=lot_id)
    quantity = new_quantity(lot.quantity)
    delta = quantity - lot.quantity
    if delta == 0:
        return lot
    _lots_add({lot.pk: delta})
    Stock.objects.filter(pk=stock.pk).update(
        quantity=F("quantity") + delta, updated_at=timezone.now()
    )
    LotAdjustment.objects.create(
        lot=lot,
        kind=kind,
        reason=reason,
        delta=delta,
        note=(note or "").strip()[:200],
        actor_id=getattr(actor, "pk", None),
    )
    lot.quantity = quantity
    _notify_stock_changed(vendor.pk)
    return lot


@transaction.atomic
def lot_correct(
    *,
    lot_id: int,
    vendor: Vendor,
    actor: "User | AnonymousUser",
    quantity: int,
    reason: str = LotAdjustment.Reason.COUNT,
    note: str = "",
) -> StockLot:
    """The vendor counted a lot again: it holds `quantity` now (more or fewer than recorded)."""
    _check_quantity(quantity)
    return _lot_change(
        lot_id=lot_id,
        vendor=vendor,
        actor=actor,
        kind=LotAdjustment.Kind.CORRECTION,
        reason=reason,
        new_quantity=lambda _current: quantity,
        note=note,
    )


@transaction.atomic
def lot_write_off(
    *,
    lot_id: int,
    vendor: Vendor,
    actor: "User | AnonymousUser",
    reason: str,
    quantity: int | None = None,
    note: str = "",
) -> StockLot:
    """Take units of a lot off the cart as waste, with a reason: `quantity` of them, or (None)
    all that is left. Staff see it in the waste report."""
    if quantity is not None:
        _check_quantity(quantity, limit=False)
        if quantity == 0:
            raise ValidationError({"quantity": _("Write off at least one unit.")})

    def left_after(current: int) -> int:
        if current == 0:
            raise Conflict(_("Nothing is left of this lot."))
        if quantity is not None and quantity > current:
            raise Conflict(
                _("Only %(left)s left in this lot: check and try again.") % {"left": current}
            )
        return current - (current if quantity is None else quantity)

    return _lot_change(
        lot_id=lot_id,
        vendor=vendor,
        actor=actor,
        kind=LotAdjustment.Kind.WRITE_OFF,
        reason=reason,
        new_quantity=left_after,
        note=note,
    )


def _lots_to(
    *, vendor_id: int, targets: dict[int, int], now: datetime, actor_id: int | None
) -> None:
    """Make each product's lots add up to targets[product]: a new lot (default shelf life) for
    units added, units taken from the soonest sell_by first (expired lots first: those are written
    off as expired, the rest recorded as a count correction). Call with the Stock rows locked."""
    lots: dict[int, list[tuple[int, int, datetime]]] = {pid: [] for pid in targets}
    for lot_id, pid, quantity, sell_by in (
        StockLot.objects.select_for_update()
        .filter(vendor_id=vendor_id, product_id__in=list(targets), quantity__gt=0)
        .order_by("product_id", "sell_by", "id")
        .values_list("id", "product_id", "quantity", "sell_by")
    ):
        lots[pid].append((lot_id, quantity, sell_by))
    new_lots: list[StockLot] = []
    deltas: dict[int, int] = {}
    adjustments: list[LotAdjustment] = []
    for pid, target in sorted(targets.items()):
        surplus = sum(q for _id, q, _s in lots[pid]) - target
        if surplus < 0:
            new_lots.append(
                _default_lot(
                    vendor_id=vendor_id,
                    product_id=pid,
                    quantity=-surplus,
                    now=now,
                    actor_id=actor_id,
                )
            )
        for lot_id, quantity, sell_by in lots[pid]:
            if surplus <= 0:
                break
            take = min(surplus, quantity)
            surplus -= take
            deltas[lot_id] = -take
            expired = sell_by <= now
            adjustments.append(
                LotAdjustment(
                    lot_id=lot_id,
                    kind=LotAdjustment.Kind.WRITE_OFF if expired else LotAdjustment.Kind.CORRECTION,
                    reason=LotAdjustment.Reason.EXPIRED if expired else LotAdjustment.Reason.COUNT,
                    delta=-take,
                    note="stock count",
                    actor_id=actor_id,
                    created_at=now,
                )
            )
    _lots_add(deltas)
    if new_lots:
        StockLot.objects.bulk_create(new_lots)
    if adjustments:
        LotAdjustment.objects.bulk_create(adjustments)


@transaction.atomic
def stock_set(
    *, vendor: Vendor, actor: "User | AnonymousUser", changes: list[StockChange]
) -> list[Stock]:
    """The vendor sets what is on the cart. Only the vendor's own user (or staff) may.

    With `expected` given, a row changes only if it still holds that quantity (an order may have
    reserved units since the vendor looked): otherwise Conflict, and nothing of the batch is saved.
    A plain quantity corrects the lots (_lots_to): units added become a lot with the default shelf
    life, units taken leave the soonest-expiring lots first.
    """
    _check_stock_actor(vendor=vendor, actor=actor)
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
    _lots_to(
        vendor_id=vendor.pk,
        targets={c.product_id: c.quantity for c in changes},
        now=now,
        actor_id=getattr(actor, "pk", None),
    )
    result: list[Stock] = []
    for change in sorted(changes, key=lambda c: c.product_id):
        row = rows[change.product_id]
        row.quantity, row.updated_at = change.quantity, now
        result.append(row)
    _notify_stock_changed(vendor.pk)
    return result


def _notify_stock_changed(vendor_id: int | None, *, on_sale_changed: bool = True) -> None:
    # The map shows which products are on sale, not how many; the vendor page's "N left" is a
    # best-effort broadcast, coalesced per cart, which pages resync on reconnect.
    if on_sale_changed:
        on_commit_safe(stock_changed.send_robust, sender=Stock, vendor_id=vendor_id)
    on_commit_coalesced(stock_publish, key=vendor_id, vendor_id=vendor_id)


@transaction.atomic
def stock_adjust(*, stock_id: int, delta: int) -> bool:
    """Add units (a lot with the default shelf life) or, with a negative delta, take them (from
    the soonest-expiring sellable lots, as a sale does): False, changing nothing, if there are
    not enough."""
    row = Stock.objects.filter(pk=stock_id).values_list("vendor_id", "product_id").first()
    if row is None:
        return False
    vendor_id, product_id = row
    try:
        with transaction.atomic():
            if delta < 0:
                stock_reserve(vendor_id=vendor_id, items={product_id: -delta})
            elif delta > 0:
                stock_release(vendor_id=vendor_id, items={product_id: delta})
    except OutOfStock:
        return False
    return True


class OutOfStock(Conflict):
    """Not enough of a product on the cart now (`vendor_id`: whose cart, for the record of
    misses)."""

    def __init__(self, product_id: int, message: str, *, vendor_id: int = 0) -> None:
        super().__init__(message)
        self.product_id = product_id
        self.vendor_id = vendor_id


def _out_of_stock(*, vendor_id: int, product_id: int, now: datetime) -> OutOfStock:
    """Why the cart can't supply a product: sold out, too few, or (a page that showed units which
    expired since) past its date."""
    sums = StockLot.objects.filter(vendor_id=vendor_id, product_id=product_id).aggregate(
        sellable=Sum("quantity", filter=Q(sell_by__gt=now), default=0),
        expired=Sum("quantity", filter=Q(sell_by__lte=now), default=0),
    )
    product = Product.objects.filter(pk=product_id).only("name_ko", "name_en").first()
    name = product.name if product else f"#{product_id}"
    on_cart = (
        Stock.objects.filter(vendor_id=vendor_id, product_id=product_id)
        .values_list("quantity", flat=True)
        .first()
    ) or 0
    left = min(sums["sellable"], on_cart)
    if left:
        message = _("Only %(left)s of %(name)s left on the cart.") % {"left": left, "name": name}
    elif sums["expired"] and on_cart:
        message = _("%(name)s on this cart is past its date and can't be sold.") % {"name": name}
    else:
        message = _("%(name)s is sold out.") % {"name": name}
    return OutOfStock(product_id, message, vendor_id=vendor_id)


@transaction.atomic(savepoint=False)
def stock_reserve(*, vendor_id: int, items: dict[int, int], reference: int | None = None) -> None:
    """Take `items` ({product_id: quantity}) off the cart, all or nothing, from the sellable lots,
    soonest-expiring first; with `reference` (the order's id), record which lots gave what
    (LotAllocation), so that stock_release puts them back there.

    One conditional UPDATE per line on Stock (`quantity >= wanted`), in product order so two
    orders sharing products can't deadlock; that row lock holds the product's lots for this
    transaction. Expiry is judged now, in the WHERE: units a stale page showed but which expired
    since are refused (OutOfStock naming the product). Inside the caller's transaction: on
    OutOfStock the caller's rollback returns what was already taken.
    """
    now = timezone.now()
    for product_id, wanted in sorted(items.items()):
        if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted <= 0:
            raise ValidationError(_("Quantities must be at least 1."))
        taken = Stock.objects.filter(
            vendor_id=vendor_id, product_id=product_id, quantity__gte=wanted
        ).update(quantity=F("quantity") - wanted, updated_at=now)
        if not taken:
            raise _out_of_stock(vendor_id=vendor_id, product_id=product_id, now=now)
    lots: dict[int, list[tuple[int, int]]] = {pid: [] for pid in items}
    for lot_id, pid, quantity in (
        StockLot.objects.select_for_update()
        .filter(vendor_id=vendor_id, product_id__in=list(items), quantity__gt=0, sell_by__gt=now)
        .order_by("product_id", "sell_by", "id")
        .values_list("id", "product_id", "quantity")
    ):
        lots[pid].append((lot_id, quantity))
    deltas: dict[int, int] = {}
    allocations: list[LotAllocation] = []
    # A product whose sellable units this takes to 0 leaves the map's "on sale"; else the map
    # has nothing new to show (a busy cart's orders cost no map broadcast each).
    sold_out = any(sum(q for _, q in lots[pid]) == wanted for pid, wanted in items.items())
    for product_id, wanted in sorted(items.items()):
        for lot_id, quantity in lots[product_id]:
            take = min(wanted, quantity)
            deltas[lot_id] = -take
            wanted -= take
            if reference is not None:
                allocations.append(LotAllocation(lot_id=lot_id, reference=reference, quantity=take))
            if not wanted:
                break
        if wanted:
            raise _out_of_stock(vendor_id=vendor_id, product_id=product_id, now=now)
    _lots_add(deltas)
    if allocations:
        LotAllocation.objects.bulk_create(allocations)
    _notify_stock_changed(vendor_id, on_sale_changed=sold_out)


@transaction.atomic(savepoint=False)
def stock_release(*, vendor_id: int, items: dict[int, int], reference: int | None = None) -> None:
    """Put reserved units back on the cart (order cancelled, rejected, expired or unpaid).

    With `reference`, units go back to the lots the order took them from (the latest-expiring
    first), even a lot that has expired since: it stays unsellable and shows on the vendor's page
    to be written off. Units with no allocation to return to (an order placed before lots, a caller
    without a reference) go to the product's latest-expiring sellable lot, or a new lot with the
    default shelf life."""
    now = timezone.now()
    back: dict[int, int] = {}
    for product_id, quantity in sorted(items.items()):
        if quantity <= 0:
            continue
        if Stock.objects.filter(vendor_id=vendor_id, product_id=product_id).update(
            quantity=F("quantity") + quantity, updated_at=now
        ):
            back[product_id] = quantity
    if not back:
        return
    deltas: dict[int, int] = {}
    if reference is not None:
        released: dict[int, int] = {}
        for allocation_id, lot_id, pid, free in (
            LotAllocation.objects.select_for_update(of=("self",))
            .filter(
                reference=reference,
                lot__vendor_id=vendor_id,
                lot__product_id__in=list(back),
                released__lt=F("quantity"),
            )
            .order_by("lot__product_id", "-lot__sell_by", "-lot_id")
            .values_list("id", "lot_id", "lot__product_id", F("quantity") - F("released"))
        ):
            give = min(free, back[pid])
            if give:
                back[pid] -= give
                deltas[lot_id] = deltas.get(lot_id, 0) + give
                released[allocation_id] = give
        if released:
            LotAllocation.objects.filter(pk__in=list(released)).update(
                released=Case(
                    *(When(pk=a, then=F("released") + Value(n)) for a, n in released.items()),
                    output_field=IntegerField(),
                )
            )
    rest = {pid: n for pid, n in back.items() if n}
    if rest:
        fresh: dict[int, int] = {}
        for lot_id, pid in (
            StockLot.objects.filter(vendor_id=vendor_id, product_id__in=list(rest), sell_by__gt=now)
            .order_by("product_id", "-sell_by", "-id")
            .values_list("id", "product_id")
        ):
            fresh.setdefault(pid, lot_id)
        new_lots = []
        for pid, n in sorted(rest.items()):
            if pid in fresh:
                deltas[fresh[pid]] = deltas.get(fresh[pid], 0) + n
            else:
                new_lots.append(
                    _default_lot(vendor_id=vendor_id, product_id=pid, quantity=n, now=now)
                )
        if new_lots:
            StockLot.objects.bulk_create(new_lots)
    _lots_add(deltas)
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


def stock_lots_fill(*, vendor_ids: list[int] | None = None, batch_size: int = 2000) -> int:
    """Give units of Stock rows written without lots (bulk seeding, benchmarks) a lot of the default
    shelf life each, so that every row is the sum of its lots again. Returns the lots made."""
    lots = (
        StockLot.objects.filter(vendor_id=OuterRef("vendor_id"), product_id=OuterRef("product_id"))
        .order_by()
        .values("product_id")
        .annotate(n=Sum("quantity"))
        .values("n")
    )
    rows = Stock.objects.annotate(
        in_lots=Coalesce(Subquery(lots, output_field=IntegerField()), 0)
    ).filter(quantity__gt=F("in_lots"))
    if vendor_ids is not None:
        rows = rows.filter(vendor_id__in=vendor_ids)
    now, made, batch = timezone.now(), 0, []
    for vendor_id, product_id, missing in rows.values_list(
        "vendor_id", "product_id", F("quantity") - F("in_lots")
    ).iterator(chunk_size=batch_size):
        batch.append(
            _default_lot(vendor_id=vendor_id, product_id=product_id, quantity=missing, now=now)
        )
        if len(batch) >= batch_size:
            made += len(StockLot.objects.bulk_create(batch))
            batch = []
    made += len(StockLot.objects.bulk_create(batch))
    return made
