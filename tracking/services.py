"""Every write of the live map: shifts, pings, presence, history purge.

`ping_record` is the one entry for every ping (websocket, HTTP batch, simulator). It validates,
drops duplicates, keeps the latest exact position and an append-only history, snaps the position to
the public H3 cell, and after commit tells the map when what the public sees has changed.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

import h3
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from o2o.errors import NotAllowed
from o2o.geo import distance_m
from vendors.models import Vendor

from . import realtime
from .models import Ping, PingRejectCount, Presence, VendorPosition
from .selectors import products_in_stock, public_payload


class Reject:
    """Why a ping was refused. Stable codes for clients; messages for people."""

    BAD_COORDINATES = "bad_coordinates"
    BAD_ACCURACY = "bad_accuracy"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE = "future_timestamp"
    TOO_OLD = "too_old"
    TOO_FAST = "impossible_speed"
    DUPLICATE = "duplicate"
    RATE_LIMITED = "rate_limited"
    NOT_APPROVED = "not_approved"
    OFF_SHIFT = "off_shift"

    MESSAGES = {
        BAD_COORDINATES: "Latitude must be within -90..90 and longitude within -180..180.",
        BAD_ACCURACY: "Accuracy must be a positive number of metres within the allowed limit.",
        BAD_TIMESTAMP: "The timestamp is missing or not a time.",
        FUTURE: "The timestamp is in the future; check the phone's clock.",
        TOO_OLD: "The ping is too old to record.",
        TOO_FAST: "The move since the last ping is faster than a cart can go.",
        DUPLICATE: "This ping was already recorded.",
        RATE_LIMITED: "Too many pings; at most one a second is kept.",
        NOT_APPROVED: "Only approved vendors can share their location.",
        OFF_SHIFT: "Go on shift before sharing your location.",
    }


@dataclass(frozen=True)
class PingResult:
    accepted: bool
    reason: str = ""
    public_cell: str = ""
    published: bool = False

    @property
    def message(self) -> str:
        return _(Reject.MESSAGES[self.reason]) if self.reason else ""


def _finite(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer too large for a float (JSON allows any number of digits)
        return None
    return value if math.isfinite(value) else None


def ping_check(*, lat, lng, accuracy_m, recorded_at, now: datetime) -> str:
    """The checks that need no database; returns a Reject code or ''."""
    lat, lng, accuracy = _finite(lat), _finite(lng), _finite(accuracy_m)
    if lat is None or lng is None or not (-90 <= lat <= 90) or not (-180 <= lng <= 180):
        return Reject.BAD_COORDINATES
    if accuracy is None or accuracy <= 0 or accuracy > settings.PING_MAX_ACCURACY_M:
        return Reject.BAD_ACCURACY
    if not isinstance(recorded_at, datetime) or timezone.is_naive(recorded_at):
        return Reject.BAD_TIMESTAMP
    if recorded_at > now + timedelta(seconds=settings.PING_MAX_FUTURE_S):
        return Reject.FUTURE
    if recorded_at < now - timedelta(seconds=settings.PING_MAX_AGE_S):
        return Reject.TOO_OLD
    return ""


def _count_reject(vendor_id: int, reason: str, day) -> None:
    updated = PingRejectCount.objects.filter(day=day, vendor_id=vendor_id, reason=reason).update(
        count=F("count") + 1
    )
    if not updated:
        try:
            with transaction.atomic():
                PingRejectCount.objects.create(day=day, vendor_id=vendor_id, reason=reason, count=1)
        except IntegrityError:
            PingRejectCount.objects.filter(day=day, vendor_id=vendor_id, reason=reason).update(
                count=F("count") + 1
            )


def _reject(vendor_id: int, reason: str, now: datetime) -> PingResult:
    if reason != Reject.DUPLICATE:  # a retried batch re-sending pings is normal, not an error
        _count_reject(vendor_id, reason, timezone.localdate(now))
    return PingResult(accepted=False, reason=reason)


def _presence_after_ping(pos: VendorPosition, lat: float, lng: float, at: datetime) -> str:
    if pos.anchor_lat is None or pos.anchor_at is None:
        pos.anchor_lat, pos.anchor_lng, pos.anchor_at = lat, lng, at
        return Presence.MOVING
    if distance_m(pos.anchor_lat, pos.anchor_lng, lat, lng) > settings.STATIONARY_RADIUS_M:
        pos.anchor_lat, pos.anchor_lng, pos.anchor_at = lat, lng, at
        return Presence.MOVING
    if (at - pos.anchor_at).total_seconds() >= settings.STATIONARY_AFTER_S:
        return Presence.STATIONARY
    return (
        pos.presence if pos.presence in (Presence.MOVING, Presence.STATIONARY) else Presence.MOVING
    )


_STATE_FIELDS = (
    "on_shift",
    "presence",
    "lat",
    "lng",
    "accuracy_m",
    "recorded_at",
    "anchor_lat",
    "anchor_lng",
    "anchor_at",
    "public_cell",
    "coarse_cell",
    "last_broadcast_at",
)
_DATETIME_FIELDS = ("recorded_at", "anchor_at", "last_broadcast_at")
# Raw SQL on the hot path: the ORM spends longer compiling these than the database running them.
_STATE_SQL = (
    "SELECT v.status, v.slug, v.name, "  # noqa: S608 - names from the model
    + ", ".join(f"p.{f}" for f in _STATE_FIELDS)
    + f" FROM {Vendor._meta.db_table} v LEFT JOIN {VendorPosition._meta.db_table} p"
    " ON p.vendor_id = v.id WHERE v.id = %s"
)
_UPDATE_FIELDS = (
    "presence",
    "lat",
    "lng",
    "accuracy_m",
    "recorded_at",
    "last_ping_at",
    "anchor_lat",
    "anchor_lng",
    "anchor_at",
    "public_cell",
    "coarse_cell",
    "last_broadcast_at",
)
_UPDATE_SQL = (
    f"UPDATE {VendorPosition._meta.db_table} SET "  # noqa: S608 - names from the model
    + ", ".join(f"{f} = %s" for f in _UPDATE_FIELDS)
    + " WHERE vendor_id = %s AND on_shift = %s"
    " AND (recorded_at = %s OR (recorded_at IS NULL AND %s IS NULL))"
)


def _as_datetime(value) -> datetime | None:
    """SQLite hands raw datetimes back naive (or as text), in UTC; PostgreSQL aware."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(value)
    return parsed.replace(tzinfo=UTC) if parsed and timezone.is_naive(parsed) else parsed


def _position_state(vendor_id: int) -> tuple[str | None, VendorPosition | None]:
    """(vendor status, position as an unsaved instance) in one query; (None, None) when there
    is no such vendor, (status, None) when the vendor has never gone on shift."""
    with connection.cursor() as cursor:
        cursor.execute(_STATE_SQL, [vendor_id])
        row = cursor.fetchone()
    if row is None:
        return None, None
    status, slug, name, *values = row
    state = dict(zip(_STATE_FIELDS, values, strict=True))
    if state["on_shift"] is None:
        return status, None
    for field in _DATETIME_FIELDS:
        state[field] = _as_datetime(state[field])
    state["on_shift"] = bool(state["on_shift"])
    pos = VendorPosition(vendor_id=vendor_id, **state)
    pos.vendor_slug, pos.vendor_name = slug, name
    return status, pos


def _insert_ping(
    *, vendor_id, lat, lng, accuracy, recorded_at, now, cell, source, async_commit
) -> bool:
    """Append to the history; False when this (vendor, timestamp) is already there."""
    ops = connection.ops
    # Sent in the same round trip as the INSERT; SET LOCAL ends with this transaction.
    prefix = (
        "SET LOCAL synchronous_commit TO OFF; "
        if async_commit and connection.vendor == "postgresql"
        else ""
    )
    with connection.cursor() as cursor:
        cursor.execute(
            prefix + f"INSERT INTO {Ping._meta.db_table} "  # noqa: S608 - table name from the model
            "(vendor_id, lat, lng, accuracy_m, recorded_at, received_at, cell, source) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (vendor_id, recorded_at) DO NOTHING",
            [
                vendor_id,
                lat,
                lng,
                accuracy,
                ops.adapt_datetimefield_value(recorded_at),
                ops.adapt_datetimefield_value(now),
                cell,
                source[:8],
            ],
        )
        return cursor.rowcount == 1


def ping_record(
    *,
    vendor_id: int,
    lat,
    lng,
    accuracy_m,
    recorded_at,
    source: str = "ws",
    now: datetime | None = None,
) -> PingResult:
    """Record one ping of a vendor's phone. Never raises for bad input: returns the reason.

    This is the hottest path of the product (a national fleet pings every few seconds), so it
    takes no lock: one read, one INSERT ... ON CONFLICT DO NOTHING into the history (the unique
    (vendor, timestamp) drops duplicates), and one UPDATE of the latest position guarded by the
    timestamp it read. Two pings of one vendor racing: the loser's guard fails, it re-reads and
    moves the latest position only if its ping is still the newest.

    On PostgreSQL the transaction commits asynchronously (synchronous_commit off, for this
    transaction only, and only when it is the outermost one): a ping is telemetry, and losing the
    last fraction of a second of pings in a database crash is a fair price for not waiting on a
    disk flush per ping (about 0.3-2.5 ms on this machine, most of the cost of a ping).
    """
    now = now or timezone.now()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        return _ping_record(
            vendor_id=vendor_id,
            lat=lat,
            lng=lng,
            accuracy_m=accuracy_m,
            recorded_at=recorded_at,
            source=source,
            now=now,
            async_commit=outermost,
        )


def _ping_record(
    *, vendor_id, lat, lng, accuracy_m, recorded_at, source, now, async_commit
) -> PingResult:
    reason = ping_check(lat=lat, lng=lng, accuracy_m=accuracy_m, recorded_at=recorded_at, now=now)
    status, pos = _position_state(vendor_id)
    if status is None:
        raise NotAllowed(_("No such vendor."))
    if reason:
        return _reject(vendor_id, reason, now)
    if status != Vendor.Status.APPROVED:
        return _reject(vendor_id, Reject.NOT_APPROVED, now)
    if pos is None or not pos.on_shift:
        return _reject(vendor_id, Reject.OFF_SHIFT, now)
    lat, lng, accuracy = float(lat), float(lng), float(accuracy_m)
    newest = pos.recorded_at is None or recorded_at > pos.recorded_at
    if pos.recorded_at is not None and newest:
        gap = (recorded_at - pos.recorded_at).total_seconds()
        if gap < settings.PING_MIN_INTERVAL_S:
            return _reject(vendor_id, Reject.RATE_LIMITED, now)
        moved = distance_m(pos.lat, pos.lng, lat, lng)
        # Accuracy is forgiven: a jump within the two fixes' error circles is not speed.
        slack = accuracy + (pos.accuracy_m or 0)
        if max(moved - slack, 0) / gap > settings.PING_MAX_SPEED_MPS:
            return _reject(vendor_id, Reject.TOO_FAST, now)
    cell = h3.latlng_to_cell(lat, lng, settings.PUBLIC_CELL_RES)
    inserted = _insert_ping(
        vendor_id=vendor_id,
        lat=lat,
        lng=lng,
        accuracy=accuracy,
        recorded_at=recorded_at,
        now=now,
        cell=cell,
        source=source,
        async_commit=async_commit,
    )
    if not inserted:
        return PingResult(accepted=False, reason=Reject.DUPLICATE)
    # From here the ping is in the history (accepted); what is left is the latest position.
    for _attempt in range(3):
        if not newest:  # a late ping from a batch: history only, the latest position stays
            return PingResult(accepted=True, public_cell=pos.public_cell)
        published = _position_update(pos, lat, lng, accuracy, recorded_at, now, cell)
        if published is not None:
            return PingResult(accepted=True, public_cell=cell, published=published)
        # Lost a race with another ping of this vendor (or the shift ended): read again.
        status, pos = _position_state(vendor_id)
        if pos is None or not pos.on_shift or status != Vendor.Status.APPROVED:
            return PingResult(accepted=True, public_cell=cell)
        newest = pos.recorded_at is None or recorded_at > pos.recorded_at
    return PingResult(accepted=True, public_cell=cell)


def _position_update(pos, lat, lng, accuracy, recorded_at, now, cell) -> bool | None:
    """Move the latest position; None when another ping changed it since it was read."""
    read_at = pos.recorded_at
    before = (pos.public_cell, pos.presence)
    old_coarse = pos.coarse_cell
    presence = _presence_after_ping(pos, lat, lng, recorded_at)
    coarse = h3.cell_to_parent(cell, settings.MAP_GROUP_RES)
    heartbeat_due = pos.last_broadcast_at is None or (now - pos.last_broadcast_at) >= timedelta(
        seconds=settings.HEARTBEAT_S
    )
    publish = before != (cell, presence) or heartbeat_due
    fields = {
        "presence": presence,
        "lat": lat,
        "lng": lng,
        "accuracy_m": accuracy,
        "recorded_at": recorded_at,
        "last_ping_at": now,
        "anchor_lat": pos.anchor_lat,
        "anchor_lng": pos.anchor_lng,
        "anchor_at": pos.anchor_at,
        "public_cell": cell,
        "coarse_cell": coarse,
    }
    fields["last_broadcast_at"] = now if publish else pos.last_broadcast_at
    adapt = connection.ops.adapt_datetimefield_value
    params = [
        adapt(fields[f]) if isinstance(fields[f], datetime) else fields[f] for f in _UPDATE_FIELDS
    ]
    guard = adapt(read_at) if read_at is not None else None
    with connection.cursor() as cursor:
        cursor.execute(_UPDATE_SQL, [*params, pos.vendor_id, True, guard, guard])
        if cursor.rowcount != 1:
            return None
    if publish:
        payload = public_payload(
            slug=pos.vendor_slug,
            name=pos.vendor_name,
            cell=cell,
            coarse=coarse,
            presence=presence,
            last_seen=now,
            products=products_in_stock(vendor_id=pos.vendor_id),
        )
        transaction.on_commit(
            partial(realtime.publish_payload, payload=payload, old_coarse=old_coarse),
            robust=True,
        )
    return publish


def _require_vendor_actor(vendor: Vendor, actor) -> None:
    if not (actor.is_staff or actor.pk == vendor.user_id):
        raise NotAllowed(_("You can only change your own shift."))


@transaction.atomic
def shift_start(*, vendor: Vendor, actor) -> VendorPosition:
    """The vendor goes on shift: they will appear on the map from their first ping."""
    _require_vendor_actor(vendor, actor)
    if vendor.status != Vendor.Status.APPROVED:
        raise NotAllowed(_("Only approved vendors can go on shift."))
    pos, _created = VendorPosition.objects.select_for_update().get_or_create(vendor=vendor)
    if not pos.on_shift:
        pos.on_shift = True
        pos.shift_started_at = timezone.now()
        pos.save(update_fields=["on_shift", "shift_started_at"])
    return pos


@transaction.atomic
def shift_end(*, vendor: Vendor, actor) -> VendorPosition:
    """The vendor goes off shift: removed from the map at once."""
    _require_vendor_actor(vendor, actor)
    pos, _created = VendorPosition.objects.select_for_update().get_or_create(vendor=vendor)
    was_public, coarse = pos.is_public, pos.coarse_cell
    pos.on_shift = False
    pos.presence = Presence.OFFLINE
    pos.anchor_lat = pos.anchor_lng = pos.anchor_at = None
    pos.save(update_fields=["on_shift", "presence", "anchor_lat", "anchor_lng", "anchor_at"])
    if was_public:
        transaction.on_commit(
            partial(realtime.publish_vendor, vendor_id=vendor.pk, old_coarse=coarse), robust=True
        )
    return pos


def presence_sweep(*, now: datetime | None = None, batch_size: int = 500) -> dict[str, int]:
    """Vendors who went quiet become stale, then offline, and the map is told. Safe to run twice:
    each UPDATE repeats the state filter, so a vendor who pinged meanwhile is left alone."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.STALE_AFTER_S)
    offline_before = now - timedelta(seconds=settings.OFFLINE_AFTER_S)
    moved = {Presence.STALE: 0, Presence.OFFLINE: 0}
    steps = (
        (Presence.OFFLINE, offline_before, [Presence.MOVING, Presence.STATIONARY, Presence.STALE]),
        (Presence.STALE, stale_before, [Presence.MOVING, Presence.STATIONARY]),
    )
    for to, before, from_states in steps:
        while True:
            with transaction.atomic():
                rows = list(
                    VendorPosition.objects.select_for_update(skip_locked=True)
                    .filter(on_shift=True, presence__in=from_states, last_ping_at__lt=before)
                    .order_by("pk")
                    .values_list("pk", "coarse_cell")[:batch_size]
                )
                if not rows:
                    break
                ids = [pk for pk, _c in rows]
                updated = VendorPosition.objects.filter(
                    pk__in=ids, presence__in=from_states, last_ping_at__lt=before
                ).update(presence=to, last_broadcast_at=now)
                for pk, coarse in rows:
                    transaction.on_commit(
                        partial(realtime.publish_vendor, vendor_id=pk, old_coarse=coarse),
                        robust=True,
                    )
                moved[to] += updated
            if len(rows) < batch_size:
                break
    return {str(k): v for k, v in moved.items()}


def pings_purge_old(*, now: datetime | None = None, batch_size: int = 5_000) -> int:
    """Delete history older than PING_HISTORY_DAYS, in bounded batches."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.PING_HISTORY_DAYS)
    deleted = 0
    while True:
        ids = list(
            Ping.objects.filter(received_at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        deleted += Ping.objects.filter(pk__in=ids).delete()[0]


def parse_timestamp(value) -> datetime | None:
    """A client's timestamp: epoch milliseconds (number) or an ISO 8601 string with a zone."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if isinstance(value, int) and not (0 < value < 10**14):
            return None  # before isfinite(), which overflows on huge integers
        if not math.isfinite(value) or not (0 < value < 1e14):
            return None
        return datetime.fromtimestamp(value / 1000.0, tz=UTC)
    if isinstance(value, str) and len(value) <= 40:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if timezone.is_aware(parsed) else None
    return None


def vendor_left_service(*, vendor_id: int) -> None:
    """A vendor was suspended or rejected: off shift and off the map at once."""
    with transaction.atomic():
        pos = VendorPosition.objects.select_for_update().filter(vendor_id=vendor_id).first()
        if pos is None or not pos.on_shift:
            return
        was_public, coarse = pos.is_public, pos.coarse_cell
        pos.on_shift = False
        pos.presence = Presence.OFFLINE
        pos.save(update_fields=["on_shift", "presence"])
        if was_public:
            transaction.on_commit(
                partial(realtime.publish_vendor, vendor_id=vendor_id, old_coarse=coarse),
                robust=True,
            )
