"""Every write of the live map: shifts, pings, presence, history purge.

`ping_record_many` records every ping (the websocket batcher in tracking.ingest, the HTTP batch,
the simulator) and `ping_record` is its one-ping form. It validates, drops duplicates, keeps the
latest exact position and an append-only history, snaps the position to the public H3 cell, and
after commit tells the map when what the public sees has changed.
"""

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, cast

import h3
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from o2o.effects import event_emit
from o2o.errors import NotAllowed
from o2o.geo import distance_m
from o2o.hooks import on_commit_safe
from vendors.models import Vendor

from . import realtime
from .models import Ping, PingRejectCount, Presence, VendorPosition
from .publication import public_cell_after_fix
from .selectors import products_in_stock_many, public_payload

if TYPE_CHECKING:
    from django.db.models import Model


class _Actor(Protocol):
    """Who changes a shift: a user (staff or the vendor's own), or the simulator acting as staff."""

    @property
    def is_staff(self) -> bool: ...

    @property
    def pk(self) -> Any: ...


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
    UNKNOWN_VENDOR = "unknown_vendor"
    SERVER_ERROR = "server_error"

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
        UNKNOWN_VENDOR: "No such vendor.",
        SERVER_ERROR: "The ping could not be recorded now; send it again later.",
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


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer too large for a float (JSON allows any number of digits)
        return None
    return value if math.isfinite(value) else None


def ping_check(
    *, lat: object, lng: object, accuracy_m: object, recorded_at: object, now: datetime
) -> str:
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


@dataclass(frozen=True)
class PingIn:
    """One ping as the phone sent it (values not checked yet), and whose phone it came from."""

    vendor_id: int
    lat: object
    lng: object
    accuracy_m: object
    recorded_at: object  # an aware datetime, or anything else (refused as BAD_TIMESTAMP)
    source: str = "ws"


def _presence_after_ping(
    pos: "_Position", lat: float, lng: float, accuracy_m: float, at: datetime
) -> str:
    if pos.anchor_lat is None or pos.anchor_at is None:
        pos.anchor_lat, pos.anchor_lng, pos.anchor_at = lat, lng, at
        return Presence.MOVING
    # A fix wanders within its error circle while the phone stands still: that much is forgiven
    # (up to STATIONARY_JITTER_M), as the speed check forgives it.
    jitter = min(accuracy_m, settings.STATIONARY_JITTER_M)
    # (anchor_lng is set with anchor_lat)
    anchor_lng = cast(float, pos.anchor_lng)
    if distance_m(pos.anchor_lat, anchor_lng, lat, lng) > settings.STATIONARY_RADIUS_M + jitter:
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
    "pending_cell",
    "pending_due_at",
    "last_broadcast_at",
)
_DATETIME_FIELDS = ("recorded_at", "anchor_at", "pending_due_at", "last_broadcast_at")
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
    "pending_cell",
    "pending_due_at",
    "last_broadcast_at",
)
_HISTORY_FIELDS = (
    "vendor_id",
    "lat",
    "lng",
    "accuracy_m",
    "recorded_at",
    "received_at",
    "cell",
    "source",
)
_POS = VendorPosition._meta.db_table
_VENDOR = Vendor._meta.db_table
_PING = Ping._meta.db_table
_REJECTS = PingRejectCount._meta.db_table


def _as_datetime(value: datetime | str | None) -> datetime | None:
    """SQLite hands raw datetimes back naive (or as text), in UTC; PostgreSQL aware."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(value)
    return parsed.replace(tzinfo=UTC) if parsed and timezone.is_naive(parsed) else parsed


def _placeholders(rows: int, columns: int) -> str:
    row = "(" + ", ".join(["%s"] * columns) + ")"
    return ", ".join([row] * rows)


def _adapted(values: list[Any]) -> list[Any]:
    """Parameters as the database takes them: psycopg2 takes aware datetimes as they are (most of
    a batch's parameters, so not one call each); other databases get Django's adaptation."""
    if connection.vendor == "postgresql":
        return values
    adapt = connection.ops.adapt_datetimefield_value
    return [adapt(x) if isinstance(x, datetime) else x for x in values]


class _Position:
    """A vendor's latest position as read under the lock, moved in memory by the batch's pings
    and written back once (lighter than a model instance: a batch reads hundreds)."""

    __slots__ = ("vendor_id", "vendor_slug", "vendor_name", *_STATE_FIELDS, "last_ping_at")
    # The slots' types (_STATE_FIELDS are set from `state`).
    vendor_id: int
    vendor_slug: str
    vendor_name: str
    last_ping_at: datetime | None
    on_shift: bool
    presence: str
    lat: float | None
    lng: float | None
    accuracy_m: float | None
    recorded_at: datetime | None
    anchor_lat: float | None
    anchor_lng: float | None
    anchor_at: datetime | None
    public_cell: str
    coarse_cell: str
    pending_cell: str
    pending_due_at: datetime | None
    last_broadcast_at: datetime | None

    def __init__(self, vendor_id: int, slug: str, name: str, state: dict[str, Any]) -> None:
        self.vendor_id, self.vendor_slug, self.vendor_name = vendor_id, slug, name
        self.last_ping_at = None
        for field, value in state.items():
            setattr(self, field, value)


def _lock_states(vendor_ids: list[int], *, async_commit: bool) -> dict[int, tuple[Any, ...]]:
    """{vendor_id: (status, position)} for the vendors in the batch, their position rows locked
    in vendor-id order (two batches sharing vendors queue up instead of deadlocking); a vendor
    who never went on shift has position None, an unknown vendor is missing. Raw SQL: the ORM
    spends longer compiling this than the database running it."""
    postgres = connection.vendor == "postgresql"
    # Sent in the same round trip; SET LOCAL ends with this transaction.
    prefix = "SET LOCAL synchronous_commit TO OFF; " if async_commit and postgres else ""
    lock = " FOR UPDATE OF p" if connection.features.has_select_for_update_of else ""
    marks = ", ".join(["%s"] * len(vendor_ids))
    states: dict[int, tuple[Any, ...]] = {}
    with connection.cursor() as cursor:
        sql = (
            "SELECT p.vendor_id, v.status, v.slug, v.name, "  # noqa: S608 - model names
            + ", ".join(f"p.{f}" for f in _STATE_FIELDS)
            + f" FROM {_POS} p JOIN {_VENDOR} v ON v.id = p.vendor_id"
            f" WHERE p.vendor_id IN ({marks}) ORDER BY p.vendor_id{lock}"
        )
        cursor.execute(prefix + sql, vendor_ids)
        for vendor_id, status, slug, name, *values in cursor.fetchall():
            state = dict(zip(_STATE_FIELDS, values, strict=True))
            for field in _DATETIME_FIELDS:
                state[field] = _as_datetime(state[field])
            state["on_shift"] = bool(state["on_shift"])
            states[vendor_id] = (status, _Position(vendor_id, slug, name, state))
        rest = [vid for vid in vendor_ids if vid not in states]
        if rest:
            cursor.execute(
                f"SELECT id, status FROM {_VENDOR} "  # noqa: S608 - model names
                f"WHERE id IN ({', '.join(['%s'] * len(rest))})",
                rest,
            )
            for vendor_id, status in cursor.fetchall():
                states[vendor_id] = (status, None)
    return states


def _history_present(keys: list[tuple[int, datetime]]) -> set[tuple[int, datetime | None]]:
    """Which (vendor, timestamp) pairs are already in the history. A statement of its own, run
    after the lock: one that waited for the lock would not see what the holder inserted. One
    probe of the unique (vendor, recorded_at) index per pair (a subquery with LIMIT is not turned
    into a join, which the planner would make a scan of the whole history)."""
    if not keys:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k.column1, k.column2 "  # noqa: S608 - model names
            f"FROM (VALUES {_placeholders(len(keys), 2)}) AS k WHERE (SELECT 1 FROM {_PING} h"
            " WHERE h.vendor_id = k.column1 AND h.recorded_at = k.column2 LIMIT 1) IS NOT NULL",
            _adapted([x for key in keys for x in key]),
        )
        return {(vid, _as_datetime(at)) for vid, at in cursor.fetchall()}


class _HistoryConflict(Exception):
    """A history row appeared that the check under the lock did not see: start the batch again."""


def _rows(
    model: "type[Model]", fields: Sequence[str], rows: list[tuple[Any, ...]]
) -> tuple[str, list[Any]]:
    """Rows of parameters as a table `v` with the fields' names, for INSERT ... SELECT and
    UPDATE ... FROM. PostgreSQL: one typed array per column through unnest(), which it parses
    and plans in a fraction of the time of a VALUES list of hundreds of rows. Elsewhere: VALUES."""
    if connection.vendor == "postgresql":
        types = [model._meta.get_field(f).db_type(connection) for f in fields]
        arrays = ", ".join(f"%s::{t}[]" for t in types)
        columns = [list(column) for column in zip(*rows, strict=True)]
        return f"unnest({arrays}) AS v({', '.join(fields)})", columns
    names = ", ".join(f"column{i} AS {f}" for i, f in enumerate(fields, start=1))
    values = _placeholders(len(rows), len(fields))
    sql = f"(SELECT {names} FROM (VALUES {values})) AS v"  # noqa: S608 - model names
    return sql, _adapted([x for r in rows for x in r])


def _history_insert(rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    source, params = _rows(Ping, _HISTORY_FIELDS, rows)
    columns = ", ".join(_HISTORY_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            # WHERE true: SQLite would read ON CONFLICT as the ON of a join without it.
            f"INSERT INTO {_PING} ({columns}) SELECT {columns} FROM {source} "  # noqa: S608
            "WHERE true ON CONFLICT (vendor_id, recorded_at) DO NOTHING",
            params,
        )
        if cursor.rowcount != len(rows):
            raise _HistoryConflict


def _positions_update(positions: list[_Position]) -> None:
    """Every moved vendor's latest position in one UPDATE ... FROM (the rows)."""
    if not positions:
        return
    fields = ("vendor_id", *_UPDATE_FIELDS)
    source, params = _rows(
        VendorPosition, fields, [tuple(getattr(pos, f) for f in fields) for pos in positions]
    )
    sets = ", ".join(f"{f} = v.{f}" for f in _UPDATE_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_POS} SET {sets} FROM {source} "  # noqa: S608 - model names
            f"WHERE {_POS}.vendor_id = v.vendor_id",
            params,
        )


def _rejects_count(counts: Counter[tuple[Any, ...]]) -> None:
    """Add the batch's refusals to the per (day, vendor, reason) counters in one upsert. Sorted,
    so two batches take the counter rows' locks in the same order."""
    if not counts:
        return
    rows = sorted((vid, day, reason, n) for (vid, day, reason), n in counts.items())
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_REJECTS} (vendor_id, day, reason, count) "  # noqa: S608 - model names
            f"VALUES {_placeholders(len(rows), 4)} "
            f"ON CONFLICT (day, vendor_id, reason) DO UPDATE SET count = {_REJECTS}.count "
            "+ excluded.count",
            [
                x
                for vid, day, reason, n in rows
                for x in (vid, connection.ops.adapt_datefield_value(day), reason, n)
            ],
        )


@dataclass
class _Publish:
    pos_fields: dict[str, Any]
    old_coarse: str


def _move(
    pos: _Position,
    lat: float,
    lng: float,
    accuracy: float,
    recorded_at: datetime,
    now: datetime,
    cell: str,
) -> _Publish | None:
    """Move the (in-memory, locked) latest position; what to tell the map, if anything."""
    before = (pos.public_cell, pos.presence)
    old_coarse = pos.coarse_cell
    presence = _presence_after_ping(pos, lat, lng, accuracy, recorded_at)
    public_cell_after_fix(pos, lat, lng, accuracy, cell, now)
    cell = pos.public_cell
    coarse = h3.cell_to_parent(cell, settings.MAP_GROUP_RES)
    heartbeat_due = pos.last_broadcast_at is None or (now - pos.last_broadcast_at) >= timedelta(
        seconds=settings.HEARTBEAT_S
    )
    publish = before != (cell, presence) or heartbeat_due
    pos.presence, pos.lat, pos.lng, pos.accuracy_m = presence, lat, lng, accuracy
    pos.recorded_at, pos.last_ping_at = recorded_at, now
    pos.coarse_cell = coarse
    if not publish:
        return None
    pos.last_broadcast_at = now
    return _Publish(
        pos_fields={
            "vendor_id": pos.vendor_id,
            "slug": pos.vendor_slug,
            "name": pos.vendor_name,
            "cell": cell,
            "coarse": coarse,
            "presence": presence,
            "last_seen": now,
        },
        old_coarse=old_coarse,
    )


def ping_record_many(*, pings: Sequence[PingIn], now: datetime | None = None) -> list[PingResult]:
    """Record a batch of pings (many vendors', several of one vendor's) in one transaction with a
    constant number of statements; one result per ping, in input order. Never raises for bad
    input: each refused ping gets its reason.

    The outcome is that of recording the pings one after another in input order (so a vendor's
    pings go oldest first): each is checked (values, clock, approved vendor on shift, at most
    one a second, a reachable speed, not already recorded) against the vendor's state as the
    earlier pings of the batch left it. The statements: lock the vendors' position rows in
    vendor-id order and read them with the vendors' status; look up which (vendor, timestamp)
    pairs the history already has; then one multi-row INSERT into the history, one UPDATE ...
    FROM (all moved vendors' rows) of the latest positions and one upsert of the refusal
    counters. Broadcasts (cell or presence changed, or a heartbeat due) go out after commit.

    On PostgreSQL the transaction commits asynchronously (synchronous_commit off, for this
    transaction only, and only when it is the outermost one): a ping is telemetry, and losing the
    last fraction of a second of pings in a database crash is a fair price for not waiting on a
    disk flush per batch.
    """
    if not pings:
        return []
    now = now or timezone.now()
    outermost = not connection.in_atomic_block
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _record_batch(pings, now, async_commit=outermost, check_all=attempt > 0)
        except _HistoryConflict:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _record_batch(
    pings: Sequence[PingIn], now: datetime, *, async_commit: bool, check_all: bool
) -> list[PingResult]:
    states = _lock_states(sorted({p.vendor_id for p in pings}), async_commit=async_commit)
    day = timezone.localdate(now)
    checked: list[str] = []
    keys: list[tuple[int, datetime]] = []
    for p in pings:
        state = states.get(p.vendor_id)
        if state is None:
            checked.append(Reject.UNKNOWN_VENDOR)
            continue
        status, pos = state
        reason = ping_check(
            lat=p.lat, lng=p.lng, accuracy_m=p.accuracy_m, recorded_at=p.recorded_at, now=now
        )
        if not reason and status != Vendor.Status.APPROVED:
            reason = Reject.NOT_APPROVED
        if not reason and (pos is None or not pos.on_shift):
            reason = Reject.OFF_SHIFT
        checked.append(reason)
        # The history holds no ping of a vendor newer than its latest position (both are written
        # together, under the lock), so only older pings can be in it; were one there anyway,
        # the INSERT would say so and the batch starts again checking every ping.
        if not reason and (check_all or not (pos.recorded_at and p.recorded_at > pos.recorded_at)):
            keys.append((p.vendor_id, cast(datetime, p.recorded_at)))
    recorded = _history_present(keys)

    results: list[PingResult] = []
    rejects: Counter[tuple[Any, ...]] = Counter()
    history: list[tuple[Any, ...]] = []
    moved: dict[int, _Position] = {}
    publishes: list[_Publish] = []
    for p, reason in zip(pings, checked, strict=True):
        if reason == Reject.UNKNOWN_VENDOR:
            results.append(PingResult(accepted=False, reason=reason))
            continue
        pos = states[p.vendor_id][1]
        if not reason:
            # Numbers and an aware datetime: ping_check passed them.
            lat, lng, accuracy = float(p.lat), float(p.lng), float(p.accuracy_m)  # type: ignore[arg-type]
            recorded_at = cast(datetime, p.recorded_at)
            newest = pos.recorded_at is None or recorded_at > pos.recorded_at
            if pos.recorded_at is not None and recorded_at != pos.recorded_at:
                gap = abs((recorded_at - pos.recorded_at).total_seconds())
                moved_m = distance_m(pos.lat, pos.lng, lat, lng)
                # Accuracy is forgiven: a jump within the two fixes' error circles is not speed.
                slack = accuracy + (pos.accuracy_m or 0)
                if newest and gap < settings.PING_MIN_INTERVAL_S:
                    reason = Reject.RATE_LIMITED
                elif max(moved_m - slack, 0) / gap > settings.PING_MAX_SPEED_MPS:
                    # Late fixes too, against the latest: a cart can't have been 300 km away
                    # 30 s before it was here.
                    reason = Reject.TOO_FAST
        if reason:
            rejects[(p.vendor_id, day, reason)] += 1
            results.append(PingResult(accepted=False, reason=reason))
            continue
        key = (p.vendor_id, recorded_at)
        if key in recorded:  # a retried batch re-sending pings is normal, not an error
            results.append(PingResult(accepted=False, reason=Reject.DUPLICATE))
            continue
        recorded.add(key)
        cell = h3.latlng_to_cell(lat, lng, settings.PUBLIC_CELL_RES)
        history.append((p.vendor_id, lat, lng, accuracy, recorded_at, now, cell, p.source[:8]))
        if not newest:  # a late ping from a batch: history only, the latest position stays
            results.append(PingResult(accepted=True, public_cell=pos.public_cell))
            continue
        publish = _move(pos, lat, lng, accuracy, recorded_at, now, cell)
        moved[p.vendor_id] = pos
        if publish:
            publishes.append(publish)
        results.append(
            PingResult(accepted=True, public_cell=pos.public_cell, published=bool(publish))
        )

    _history_insert(history)
    _positions_update([moved[vid] for vid in sorted(moved)])
    _rejects_count(rejects)
    if publishes:
        stock = products_in_stock_many(
            vendor_ids=sorted({p.pos_fields["vendor_id"] for p in publishes})
        )
        for publish in publishes:
            fields = dict(publish.pos_fields)
            payload = public_payload(products=stock[fields.pop("vendor_id")], **fields)
            on_commit_safe(
                realtime.publish_payload,
                payload=payload,
                old_coarse=publish.old_coarse,
                at=now.isoformat(),
            )
    return results


def ping_record(
    *,
    vendor_id: int,
    lat: object,
    lng: object,
    accuracy_m: object,
    recorded_at: object,
    source: str = "ws",
    now: datetime | None = None,
) -> PingResult:
    """Record one ping of a vendor's phone: a batch of one (see ping_record_many). Never raises
    for bad input: returns the reason. An unknown vendor is a programming error (NotAllowed)."""
    ping = PingIn(
        vendor_id=vendor_id,
        lat=lat,
        lng=lng,
        accuracy_m=accuracy_m,
        recorded_at=recorded_at,
        source=source,
    )
    [result] = ping_record_many(pings=[ping], now=now)
    if result.reason == Reject.UNKNOWN_VENDOR:
        raise NotAllowed(_("No such vendor."))
    return result


def _require_vendor_actor(vendor: Vendor, actor: _Actor) -> None:
    if not (actor.is_staff or actor.pk == vendor.user_id):
        raise NotAllowed(_("You can only change your own shift."))


def _shift_event_emit(
    *, vendor: Vendor, event_type: str, pos: VendorPosition, at: datetime
) -> None:
    """Partners hear of a shift change, in its transaction: the public cell only (null while the
    vendor is not on the map), never the exact position."""
    event_emit(
        type=event_type,
        aggregate="vendor",
        aggregate_id=vendor.pk,
        data={
            "vendor_id": vendor.pk,
            "name": vendor.name,
            "public_cell": pos.public_cell if pos.is_public else None,
            "at": at.isoformat(),
        },
    )


@transaction.atomic
def shift_start(*, vendor: Vendor, actor: _Actor) -> VendorPosition:
    """The vendor goes on shift: they will appear on the map from their first ping."""
    _require_vendor_actor(vendor, actor)
    if vendor.status != Vendor.Status.APPROVED:
        raise NotAllowed(_("Only approved vendors can go on shift."))
    pos, _created = VendorPosition.objects.select_for_update().get_or_create(vendor=vendor)
    if not pos.on_shift:
        pos.on_shift = True
        pos.shift_started_at = timezone.now()
        pos.save(update_fields=["on_shift", "shift_started_at"])
        _shift_event_emit(
            vendor=vendor, event_type="vendor.on_shift", pos=pos, at=pos.shift_started_at
        )
    return pos


@transaction.atomic
def shift_end(*, vendor: Vendor, actor: _Actor) -> VendorPosition:
    """The vendor goes off shift: removed from the map at once."""
    _require_vendor_actor(vendor, actor)
    pos, _created = VendorPosition.objects.select_for_update().get_or_create(vendor=vendor)
    was_public, coarse = pos.is_public, pos.coarse_cell
    if pos.on_shift:
        _shift_event_emit(vendor=vendor, event_type="vendor.off_shift", pos=pos, at=timezone.now())
    pos.on_shift = False
    pos.presence = Presence.OFFLINE
    pos.anchor_lat = pos.anchor_lng = pos.anchor_at = None
    pos.save(update_fields=["on_shift", "presence", "anchor_lat", "anchor_lng", "anchor_at"])
    if was_public:
        on_commit_safe(realtime.publish_vendor, vendor_id=vendor.pk, old_coarse=coarse)
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
                    on_commit_safe(realtime.publish_vendor, vendor_id=pk, old_coarse=coarse)
                moved[to] += updated
            if len(rows) < batch_size:
                break
    return {str(k): v for k, v in moved.items()}


def public_cells_publish_due(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Show the cells whose time has come (see publication.public_cell_after_fix) for vendors who sent no
    ping since: their last fix was deep inside. Run every few seconds by beat; safe to run twice."""
    now = now or timezone.now()
    shown = 0
    live = [Presence.MOVING, Presence.STATIONARY, Presence.STALE]
    while True:
        with transaction.atomic():
            rows = list(
                VendorPosition.objects.select_for_update(skip_locked=True)
                .filter(on_shift=True, presence__in=live, pending_due_at__lte=now)
                .exclude(pending_cell="")
                .order_by("pk")
                .values_list("pk", "coarse_cell", "pending_cell")[:batch_size]
            )
            for pk, coarse, cell in rows:
                VendorPosition.objects.filter(pk=pk).update(
                    public_cell=cell,
                    coarse_cell=h3.cell_to_parent(cell, settings.MAP_GROUP_RES),
                    pending_cell="",
                    pending_due_at=None,
                    last_broadcast_at=now,
                )
                on_commit_safe(realtime.publish_vendor, vendor_id=pk, old_coarse=coarse)
            shown += len(rows)
        if len(rows) < batch_size:
            return shown


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


def parse_timestamp(value: object) -> datetime | None:
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
            on_commit_safe(realtime.publish_vendor, vendor_id=vendor_id, old_coarse=coarse)
