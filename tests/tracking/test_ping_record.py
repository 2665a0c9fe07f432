"""ping_record: the one entry for every ping. What it keeps, what it refuses and why, how it counts
refusals, how presence follows the pings, and when it tells the map."""

import math
from datetime import datetime, timedelta

import h3
import pytest
from django.conf import settings
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from o2o.errors import NotAllowed
from tests.factories import MAPO, VendorFactory
from tests.tracking.conftest import EAST_500M, T0, at, cells_at_once, ping
from tracking import publication, services
from tracking.models import Ping, PingRejectCount, Presence, VendorPosition
from tracking.services import Reject
from vendors.models import Vendor

pytestmark = pytest.mark.django_db

NORTH_40M = (MAPO[0] + 0.00036, MAPO[1])  # same public cell as MAPO, ~40 m away
NORTH_4M = (MAPO[0] + 0.00004, MAPO[1])


def _position(vendor) -> VendorPosition:
    return VendorPosition.objects.get(vendor=vendor)


def _rejects(vendor) -> dict[str, int]:
    return dict(PingRejectCount.objects.filter(vendor=vendor).values_list("reason", "count"))


def test_accepted_ping_keeps_latest_history_and_public_cell(on_shift):
    # given a vendor on shift; when their phone sends one ping
    result = ping(on_shift, 37.5563219, 126.9219873, at(0), now=at(2), accuracy=12.5)
    # then it is accepted, snapped to the public cell and published (first sight of the vendor)
    cell = h3.latlng_to_cell(37.5563219, 126.9219873, settings.PUBLIC_CELL_RES)
    assert result == services.PingResult(accepted=True, public_cell=cell, published=True)
    pos = _position(on_shift)
    assert (pos.lat, pos.lng, pos.accuracy_m) == (37.5563219, 126.9219873, 12.5)
    assert (pos.recorded_at, pos.last_ping_at, pos.last_broadcast_at) == (at(0), at(2), at(2))
    assert pos.public_cell == cell
    assert pos.coarse_cell == h3.cell_to_parent(cell, settings.MAP_GROUP_RES)
    assert pos.presence == Presence.MOVING and pos.is_public
    history = Ping.objects.get(vendor=on_shift)
    assert (history.lat, history.lng, history.accuracy_m) == (37.5563219, 126.9219873, 12.5)
    assert (history.recorded_at, history.received_at) == (at(0), at(2))
    assert (history.cell, history.source) == (cell, "ws")
    assert _rejects(on_shift) == {}


NAIVE = datetime(2025, 6, 2, 12, 0, 0)  # no zone: the point of it

BAD_INPUT = [
    # (lat, lng, accuracy, recorded_at, reason)
    (91, 126.9, 10, T0, Reject.BAD_COORDINATES),
    (-90.0001, 126.9, 10, T0, Reject.BAD_COORDINATES),
    (37.5, 180.5, 10, T0, Reject.BAD_COORDINATES),
    (37.5, -181, 10, T0, Reject.BAD_COORDINATES),
    (math.nan, 126.9, 10, T0, Reject.BAD_COORDINATES),
    (37.5, math.inf, 10, T0, Reject.BAD_COORDINATES),
    (-math.inf, 126.9, 10, T0, Reject.BAD_COORDINATES),
    (True, 126.9, 10, T0, Reject.BAD_COORDINATES),
    (37.5, False, 10, T0, Reject.BAD_COORDINATES),
    ("37.5", 126.9, 10, T0, Reject.BAD_COORDINATES),
    (None, 126.9, 10, T0, Reject.BAD_COORDINATES),
    ([37.5], 126.9, 10, T0, Reject.BAD_COORDINATES),
    (10**400, 126.9, 10, T0, Reject.BAD_COORDINATES),
    (37.5, 126.9, 0, T0, Reject.BAD_ACCURACY),
    (37.5, 126.9, -5, T0, Reject.BAD_ACCURACY),
    (37.5, 126.9, 150.01, T0, Reject.BAD_ACCURACY),
    (37.5, 126.9, math.nan, T0, Reject.BAD_ACCURACY),
    (37.5, 126.9, math.inf, T0, Reject.BAD_ACCURACY),
    (37.5, 126.9, True, T0, Reject.BAD_ACCURACY),
    (37.5, 126.9, "10", T0, Reject.BAD_ACCURACY),
    (37.5, 126.9, None, T0, Reject.BAD_ACCURACY),
    (37.5, 126.9, 10, None, Reject.BAD_TIMESTAMP),
    (37.5, 126.9, 10, NAIVE, Reject.BAD_TIMESTAMP),
    (37.5, 126.9, 10, "2025-06-02T03:00:00Z", Reject.BAD_TIMESTAMP),
    (37.5, 126.9, 10, 1748833200000, Reject.BAD_TIMESTAMP),
    (37.5, 126.9, 10, T0 + timedelta(seconds=31), Reject.FUTURE),
    (37.5, 126.9, 10, T0 - timedelta(seconds=3601), Reject.TOO_OLD),
]


@pytest.mark.parametrize(
    ("lat", "lng", "accuracy", "recorded_at", "reason"),
    BAD_INPUT,
    ids=[f"{case[-1]}-{i}" for i, case in enumerate(BAD_INPUT)],
)
def test_bad_input_is_refused_with_its_reason_and_stores_nothing(
    on_shift, lat, lng, accuracy, recorded_at, reason
):
    # given a vendor on shift; when a ping with one bad value arrives at T0
    result = services.ping_record(
        vendor_id=on_shift.pk,
        lat=lat,
        lng=lng,
        accuracy_m=accuracy,
        recorded_at=recorded_at,
        now=T0,
    )
    # then it is refused with that reason, a message for people, and nothing is kept but a count
    assert (result.accepted, result.reason, result.published) == (False, reason, False)
    assert result.message
    assert not Ping.objects.exists()
    pos = _position(on_shift)
    assert (pos.lat, pos.public_cell, pos.presence) == (None, "", Presence.OFFLINE)
    assert _rejects(on_shift) == {reason: 1}


def test_clock_limits_are_inclusive(on_shift):
    # given the limits: 30 s into the future, an hour into the past
    # when pings sit exactly on them; then both are accepted
    assert ping(on_shift, *MAPO, T0 + timedelta(seconds=30), now=T0).accepted
    assert ping(on_shift, *MAPO, T0 - timedelta(seconds=3600), now=T0).accepted
    assert Ping.objects.count() == 2


def test_a_move_faster_than_a_cart_is_refused_but_gps_error_is_forgiven(on_shift):
    # given a first ping at MAPO with 10 m accuracy
    assert ping(on_shift, *MAPO, at(0)).accepted
    # when the next one, 10 s later, is 500 m away (~50 m/s); then it is impossible
    result = ping(on_shift, *EAST_500M, at(10))
    assert result.reason == Reject.TOO_FAST
    assert _position(on_shift).lng == MAPO[1]
    # when a 40 m jump comes 1 s later but both fixes are ±25 m; then it is within the error
    jumped = ping(on_shift, *NORTH_40M, at(11), accuracy=25)
    assert jumped.accepted
    # and the same 500 m taken in 40 s (12.5 m/s) is a cart's pace
    assert ping(on_shift, *EAST_500M, at(51)).accepted
    assert Ping.objects.count() == 3
    assert _rejects(on_shift) == {Reject.TOO_FAST: 1}


def test_same_ping_twice_is_a_duplicate_and_not_counted_as_an_error(on_shift):
    # given a recorded ping and a later one
    assert ping(on_shift, *MAPO, at(0)).accepted
    assert ping(on_shift, *NORTH_4M, at(5)).accepted
    # when both are sent again (a retried batch), even from a different spot
    again_latest = ping(on_shift, *NORTH_4M, at(5), now=at(9))
    again_older = ping(on_shift, *NORTH_40M, at(0), now=at(9))
    # then both are duplicates, nothing new is stored and no reject is counted
    assert (again_latest.accepted, again_latest.reason) == (False, Reject.DUPLICATE)
    assert (again_older.accepted, again_older.reason) == (False, Reject.DUPLICATE)
    assert Ping.objects.count() == 2
    assert Ping.objects.get(recorded_at=at(0)).lat == MAPO[0]
    assert _position(on_shift).last_ping_at == at(5)
    assert _rejects(on_shift) == {}


def test_more_than_one_ping_a_second_is_rate_limited(on_shift):
    assert ping(on_shift, *MAPO, at(0)).accepted
    # when the next ping is 0.5 s later; then it is refused
    assert ping(on_shift, *MAPO, at(0.5)).reason == Reject.RATE_LIMITED
    # when it is a full second later; then it is kept
    assert ping(on_shift, *MAPO, at(1)).accepted
    assert list(Ping.objects.order_by("recorded_at").values_list("recorded_at", flat=True)) == [
        at(0),
        at(1),
    ]
    assert _rejects(on_shift) == {Reject.RATE_LIMITED: 1}


@pytest.mark.parametrize("status", [s for s in Vendor.Status.values if s != Vendor.Status.APPROVED])
def test_vendor_never_approved_is_refused(status):
    # given a vendor who is not approved (so could never go on shift)
    vendor = VendorFactory(status=status)
    # when their phone pings; then it is refused as not approved
    assert ping(vendor, *MAPO, T0).reason == Reject.NOT_APPROVED
    assert not Ping.objects.exists()
    assert not VendorPosition.objects.filter(vendor=vendor).exists()
    assert _rejects(vendor) == {Reject.NOT_APPROVED: 1}


def test_vendor_suspended_while_on_shift_is_refused(on_shift):
    # given a vendor on shift and on the map
    assert ping(on_shift, *MAPO, at(0)).accepted
    # when staff suspend them and the phone keeps pinging
    Vendor.objects.filter(pk=on_shift.pk).update(status=Vendor.Status.SUSPENDED)
    result = ping(on_shift, *NORTH_40M, at(30))
    # then the ping is refused and the stored position stays where it was
    assert result.reason == Reject.NOT_APPROVED
    assert Ping.objects.count() == 1
    assert _position(on_shift).recorded_at == at(0)


def test_vendor_off_shift_is_refused(on_shift):
    # given a vendor who went off shift
    services.shift_end(vendor=on_shift, actor=on_shift.user)
    # when their phone pings; then it is refused
    assert ping(on_shift, *MAPO, T0).reason == Reject.OFF_SHIFT
    assert not Ping.objects.exists()
    assert _rejects(on_shift) == {Reject.OFF_SHIFT: 1}


def test_vendor_with_no_position_row_is_off_shift(vendor):
    # given an approved vendor who never went on shift (no position row at all)
    assert not VendorPosition.objects.filter(vendor=vendor).exists()
    # when their phone pings; then it is refused and no row is made up for them
    assert ping(vendor, *MAPO, T0).reason == Reject.OFF_SHIFT
    assert not VendorPosition.objects.filter(vendor=vendor).exists()
    assert not Ping.objects.exists()


def test_late_ping_goes_to_history_only(on_shift):
    # given the latest ping at t=10 at MAPO
    assert ping(on_shift, *MAPO, at(10)).accepted
    # when an older ping (t=5, elsewhere) arrives afterwards, e.g. from a queued batch
    late = ping(on_shift, *NORTH_40M, at(5), now=at(12))
    # then it is kept in the history but the latest position does not move back
    assert late.accepted and not late.published
    assert late.public_cell == _position(on_shift).public_cell
    pos = _position(on_shift)
    assert (pos.lat, pos.recorded_at, pos.last_ping_at) == (MAPO[0], at(10), at(10))
    assert list(Ping.objects.order_by("recorded_at").values_list("lat", flat=True)) == [
        NORTH_40M[0],
        MAPO[0],
    ]


def test_a_late_ping_from_an_impossible_place_is_refused(on_shift):
    # Given the latest fixes in Mapo at t=0 and t=60
    assert ping(on_shift, *MAPO, at(0)).accepted
    assert ping(on_shift, *MAPO, at(60)).accepted
    # When a ping stamped t=30 arrives late from Busan, 325 km away
    busan = (35.1796, 129.0756)
    late = ping(on_shift, *busan, at(30), now=at(61))
    # Then it is refused as too fast (325 km in 30 s), and the history does not keep it
    assert (late.accepted, late.reason) == (False, Reject.TOO_FAST)
    assert not Ping.objects.filter(vendor=on_shift, lat=busan[0]).exists()
    # And a late ping a cart could have made is still kept
    assert ping(on_shift, *EAST_500M, at(20), now=at(62)).accepted


def test_a_vendor_standing_still_with_gps_jitter_is_standing_still(on_shift):
    # Given a vendor at one spot for 5 minutes, the fixes wandering ±40 m around it (accuracy
    # 50 m, well within what is accepted), one every 10 s
    north, south = (MAPO[0] + 40 / 111_320, MAPO[1]), (MAPO[0] - 40 / 111_320, MAPO[1])
    for i in range(31):
        where = (MAPO, north, south)[i % 3]
        assert ping(on_shift, *where, at(i * 10), accuracy=50.0).accepted
    # Then they are shown standing still, not moving
    assert _position(on_shift).presence == Presence.STATIONARY
    # And walking on, 500 m further, makes them moving again
    assert ping(on_shift, *EAST_500M, at(330), accuracy=10.0).accepted
    assert _position(on_shift).presence == Presence.MOVING


def test_reject_counters_add_up_per_reason_and_local_day(on_shift):
    # given one accepted ping
    assert ping(on_shift, *MAPO, at(0)).accepted
    # when the phone sends two bad fixes, one too-fast ping and a duplicate today (Seoul time)
    ping(on_shift, 91, 0, at(1))
    ping(on_shift, 91, 0, at(2))
    ping(on_shift, *MAPO, at(0.5))  # older than the latest: not rate limited, a new history row
    ping(on_shift, *MAPO, at(0))  # duplicate
    ping(on_shift, *MAPO, at(1.4))  # 0.4 s after... the latest is at(0.5)? no: latest is at(0)
    # and another bad fix the next day
    tomorrow = at(24 * 3600)
    ping(on_shift, 91, 0, tomorrow)
    # then counts are per (day, reason), duplicates are not counted
    today = timezone.localdate(T0)
    rows = {(r.day, r.reason): r.count for r in PingRejectCount.objects.filter(vendor=on_shift)}
    assert rows == {
        (today, Reject.BAD_COORDINATES): 2,
        (today, Reject.RATE_LIMITED): 1,
        (today + timedelta(days=1), Reject.BAD_COORDINATES): 1,
    }


def test_presence_moves_to_standing_still_and_back_to_moving(on_shift, settings):
    assert (settings.STATIONARY_RADIUS_M, settings.STATIONARY_AFTER_S) == (30.0, 120)
    # given a vendor who starts at MAPO
    assert ping(on_shift, *MAPO, at(0)).accepted
    assert _position(on_shift).presence == Presence.MOVING
    # when they stay within a few metres for just under two minutes; then still moving
    assert ping(on_shift, *NORTH_4M, at(60)).accepted
    assert ping(on_shift, *MAPO, at(119)).accepted
    assert _position(on_shift).presence == Presence.MOVING
    # when they have stood there for two minutes; then standing still
    assert ping(on_shift, *NORTH_4M, at(120)).accepted
    assert _position(on_shift).presence == Presence.STATIONARY
    # when they then move 40 m (more than the radius); then moving again, from a new anchor
    assert ping(on_shift, *NORTH_40M, at(130)).accepted
    pos = _position(on_shift)
    assert pos.presence == Presence.MOVING
    assert (pos.anchor_lat, pos.anchor_at) == (NORTH_40M[0], at(130))
    # and standing at the new spot for two minutes makes them stationary again
    assert ping(on_shift, *NORTH_40M, at(250)).accepted
    assert _position(on_shift).presence == Presence.STATIONARY


def test_publishes_only_on_cell_or_presence_change_or_heartbeat(
    on_shift, settings, django_capture_on_commit_callbacks
):
    assert settings.HEARTBEAT_S == 60
    cells_at_once(settings)  # the hysteresis is tested below
    assert h3.latlng_to_cell(*EAST_500M, 9) != h3.latlng_to_cell(*MAPO, 9)

    def published(lat, lng, seconds):
        with django_capture_on_commit_callbacks() as callbacks:
            result = ping(on_shift, lat, lng, at(seconds))
        assert result.accepted, result
        # a broadcast is scheduled after commit exactly when the result says so
        assert len(callbacks) == int(result.published)
        return result.published

    assert published(*MAPO, 0)  # first sight
    assert not published(*NORTH_4M, 10)  # same cell, same presence
    assert published(*EAST_500M, 50)  # another cell
    assert not published(*EAST_500M, 55)
    assert not published(*EAST_500M, 109)  # 59 s since the last broadcast
    assert published(*EAST_500M, 110)  # 60 s: heartbeat, though nothing changed
    assert _position(on_shift).last_broadcast_at == at(110)
    assert not published(*EAST_500M, 120)
    assert published(*EAST_500M, 170)  # stood still 120 s: presence changed
    assert _position(on_shift).presence == Presence.STATIONARY


# --- The public cell's hysteresis --------------------------------------------------------------

EAST_CELL = h3.latlng_to_cell(*EAST_500M, 9)  # EAST_500M is 53 m inside it
MAPO_CELL = h3.latlng_to_cell(*MAPO, 9)  # MAPO is 16 m inside it
EAST_SHALLOW = (MAPO[0], MAPO[1] + 0.0057 - 0.00045)  # ~13 m inside EAST_CELL


def _seeded(monkeypatch, seed: int) -> float:
    """Seed the delay's randomness; the delay the next candidate cell will get."""
    monkeypatch.setattr(publication, "_rng", __import__("random").Random(seed))
    return (
        __import__("random")
        .Random(seed)
        .uniform(settings.PUBLIC_CELL_DELAY_MIN_S, settings.PUBLIC_CELL_DELAY_MAX_S)
    )


def test_a_new_cell_is_shown_only_deep_inside_after_a_hold_and_a_random_delay(
    on_shift, monkeypatch, django_capture_on_commit_callbacks
):
    assert (settings.PUBLIC_CELL_MARGIN_M, settings.PUBLIC_CELL_HOLD_S) == (40.0, 30.0)
    assert (settings.PUBLIC_CELL_DELAY_MIN_S, settings.PUBLIC_CELL_DELAY_MAX_S) == (15.0, 90.0)
    assert h3.latlng_to_cell(*EAST_SHALLOW, 9) == EAST_CELL
    delay = _seeded(monkeypatch, 3)
    # given a vendor shown in MAPO's cell (first sight: at once)
    assert ping(on_shift, *MAPO, at(0)).public_cell == MAPO_CELL
    # when the fixes come from 13 m inside the next cell: nothing changes, nothing is pending
    result = ping(on_shift, *EAST_SHALLOW, at(40))
    assert result.public_cell == MAPO_CELL
    assert _position(on_shift).pending_cell == ""
    # when they come from 53 m inside it: a candidate, due after the hold and the random delay
    result = ping(on_shift, *EAST_500M, at(50))
    assert (result.public_cell, result.published) == (MAPO_CELL, False)
    pos = _position(on_shift)
    due = at(50 + 30 + delay)
    assert (pos.pending_cell, pos.pending_due_at, pos.public_cell) == (EAST_CELL, due, MAPO_CELL)
    # then every ping before the due time still shows the old cell (a heartbeat included)
    t = 55
    while at(t) < due:
        with django_capture_on_commit_callbacks() as callbacks:
            assert ping(on_shift, *EAST_500M, at(t)).public_cell == MAPO_CELL
        assert all(c.keywords["payload"]["cell"] == MAPO_CELL for c in callbacks)
        t += 5
    # and the first ping after it shows the new cell
    with django_capture_on_commit_callbacks() as callbacks:
        result = ping(on_shift, *EAST_500M, at(t))
    assert (result.public_cell, result.published) == (EAST_CELL, True)
    [callback] = callbacks
    assert callback.keywords["payload"]["cell"] == EAST_CELL
    pos = _position(on_shift)
    assert (pos.public_cell, pos.pending_cell, pos.pending_due_at) == (EAST_CELL, "", None)
    assert pos.coarse_cell == h3.cell_to_parent(EAST_CELL, settings.MAP_GROUP_RES)


def test_a_fix_near_the_edge_or_back_in_the_shown_cell_drops_the_candidate(on_shift, monkeypatch):
    _seeded(monkeypatch, 4)
    assert ping(on_shift, *MAPO, at(0)).accepted
    assert ping(on_shift, *EAST_500M, at(40)).accepted
    assert _position(on_shift).pending_cell == EAST_CELL
    # a fix only 13 m inside: the hold starts again from the next deep fix
    assert ping(on_shift, *EAST_SHALLOW, at(50)).accepted
    assert (_position(on_shift).pending_cell, _position(on_shift).pending_due_at) == ("", None)
    assert ping(on_shift, *EAST_500M, at(60)).accepted
    assert _position(on_shift).pending_due_at >= at(60 + 30 + 15)
    # a fix back in the shown cell drops it too; so, long after, nothing was ever shown
    assert ping(on_shift, *MAPO, at(100)).accepted
    assert ping(on_shift, *MAPO, at(400)).public_cell == MAPO_CELL
    assert _position(on_shift).pending_cell == ""


def test_a_cell_due_without_a_ping_is_shown_by_the_publish_sweep(
    on_shift, monkeypatch, django_capture_on_commit_callbacks
):
    delay = _seeded(monkeypatch, 5)
    assert ping(on_shift, *MAPO, at(0)).accepted
    assert ping(on_shift, *EAST_500M, at(40)).accepted  # and then the phone is quiet
    due = 40 + 30 + delay
    assert services.public_cells_publish_due(now=at(due - 1)) == 0
    assert _position(on_shift).public_cell == MAPO_CELL
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.public_cells_publish_due(now=at(due)) == 1
    assert [c.keywords["vendor_id"] for c in callbacks] == [on_shift.pk]
    pos = _position(on_shift)
    assert (pos.public_cell, pos.pending_cell, pos.last_broadcast_at) == (EAST_CELL, "", at(due))
    assert services.public_cells_publish_due(now=at(due + 10)) == 0  # once


def test_coming_back_on_the_map_shows_the_cell_at_once(on_shift, monkeypatch):
    _seeded(monkeypatch, 6)
    assert ping(on_shift, *MAPO, at(0)).public_cell == MAPO_CELL
    # off shift, and back on elsewhere: first sight of the new shift, at once
    services.shift_end(vendor=on_shift, actor=on_shift.user)
    services.shift_start(vendor=on_shift, actor=on_shift.user)
    assert ping(on_shift, *EAST_500M, at(100)).public_cell == EAST_CELL
    # quiet until offline, and back in MAPO's cell: at once too
    services.presence_sweep(now=at(100 + settings.OFFLINE_AFTER_S + 1))
    assert _position(on_shift).presence == Presence.OFFLINE
    assert ping(on_shift, *MAPO, at(800)).public_cell == MAPO_CELL


def test_the_public_last_seen_is_rounded_down_to_the_minute():
    from tracking.selectors import public_payload, public_time

    assert settings.PUBLIC_TIME_STEP_S == 60
    moment = T0 + timedelta(seconds=59, microseconds=999_999)
    assert public_time(moment) == T0.isoformat() == "2025-06-02T03:00:00+00:00"
    payload = public_payload(
        slug="s",
        name="n",
        cell=MAPO_CELL,
        coarse="",
        presence="moving",
        last_seen=moment,
        products=[],
    )
    assert payload["last_seen"] == T0.isoformat()


def test_unknown_vendor_is_a_programming_error():
    with pytest.raises(NotAllowed):
        ping(VendorFactory.build(pk=987654), *MAPO, T0)


# --- Fuzzing ----------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=45)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=5,
)
T0_MS = int(T0.timestamp() * 1000)
plausible_lat = st.floats(min_value=-95, max_value=95)
plausible_lng = st.floats(min_value=-185, max_value=185)
plausible_ts = (
    st.integers(min_value=T0_MS - 4_000_000, max_value=T0_MS + 60_000)
    | st.floats(min_value=T0_MS - 4_000_000, max_value=T0_MS + 60_000)
    | st.datetimes(
        min_value=datetime(2025, 6, 2, 10, 0),
        max_value=datetime(2025, 6, 2, 12, 2),
        timezones=st.sampled_from([timezone.get_current_timezone(), None]),
    ).map(lambda d: d.isoformat())
    | st.text(alphabet="0123456789-:T.Z+", max_size=40)
)


@hypothesis_settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    lat=plausible_lat | json_values,
    lng=plausible_lng | json_values,
    accuracy=st.floats(min_value=-10, max_value=200) | json_values,
    ts=plausible_ts | json_values,
)
def test_fuzz_ping_record_never_raises_and_rejects_store_nothing(on_shift, lat, lng, accuracy, ts):
    # given any JSON-ish values a phone could send; when they go through the same path as a socket
    before = Ping.objects.count()
    result = services.ping_record(
        vendor_id=on_shift.pk,
        lat=lat,
        lng=lng,
        accuracy_m=accuracy,
        recorded_at=services.parse_timestamp(ts),
        now=T0,
    )
    # then there is an answer, never an exception; a refusal keeps nothing, an acceptance one row
    after = Ping.objects.count()
    if result.accepted:
        assert after == before + 1
        row = Ping.objects.latest("pk")
        assert -90 <= row.lat <= 90 and -180 <= row.lng <= 180
        assert 0 < row.accuracy_m <= settings.PING_MAX_ACCURACY_M
        assert h3.is_valid_cell(row.cell)
    else:
        assert result.reason in Reject.MESSAGES
        assert after == before
