"""ping_record_many: a batch of pings (many vendors', several of one vendor's) is judged exactly as
ping_record would judge them one after another, written in one transaction with a constant number
of statements, and two batches sharing vendors neither deadlock nor store a ping twice."""

import random
import threading
from datetime import timedelta
from unittest import mock

import h3
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.factories import MAPO, VendorFactory
from tests.tracking.conftest import EAST_500M, T0, at, ping
from tracking import publication, services
from tracking.models import Ping, PingRejectCount, VendorPosition
from tracking.services import PingIn, Reject
from vendors.models import Vendor

NORTH_4M = (MAPO[0] + 0.00004, MAPO[1])
NORTH_40M = (MAPO[0] + 0.00036, MAPO[1])


def _on_shift(**kwargs) -> Vendor:
    vendor = VendorFactory(**kwargs)
    services.shift_start(vendor=vendor, actor=vendor.user)
    return vendor


def _in(vendor_id: int, lat, lng, when, accuracy=10.0, source="ws") -> PingIn:
    return PingIn(
        vendor_id=vendor_id, lat=lat, lng=lng, accuracy_m=accuracy, recorded_at=when, source=source
    )


def _rejects() -> dict[tuple[int, str], int]:
    return {(r.vendor_id, r.reason): r.count for r in PingRejectCount.objects.all()}


@pytest.mark.django_db
def test_a_mixed_batch_gives_each_ping_its_own_result_and_stores_exactly_the_good_ones(
    django_capture_on_commit_callbacks,
):
    # given two vendors on the map (one already pinged at t=0), one off shift, one pending
    a, b = _on_shift(name="a"), _on_shift(name="b")
    off = _on_shift(name="off")
    services.shift_end(vendor=off, actor=off.user)
    pending = VendorFactory(status=Vendor.Status.PENDING)
    assert ping(a, *MAPO, at(0)).accepted
    unknown = 987_654_321
    batch = [
        _in(a.pk, *NORTH_4M, at(10)),  # 0 good
        _in(b.pk, 91, MAPO[1], at(10)),  # 1 bad coordinates
        _in(a.pk, *MAPO, at(0)),  # 2 already recorded before the batch
        _in(off.pk, *MAPO, at(10)),  # 3 off shift
        _in(a.pk, *EAST_500M, at(12)),  # 4 500 m in 2 s from ping 0: too fast
        _in(b.pk, *EAST_500M, at(10), source="batch"),  # 5 good (b's first)
        _in(pending.pk, *MAPO, at(10)),  # 6 not approved
        _in(a.pk, *NORTH_40M, at(20)),  # 7 good: a's second ping of the batch
        _in(unknown, *MAPO, at(10)),  # 8 no such vendor
        _in(a.pk, *NORTH_4M, at(10)),  # 9 the same as ping 0: a duplicate within the batch
        _in(a.pk, *NORTH_40M, at(20.5)),  # 10 half a second after ping 7
        _in(a.pk, *MAPO, at(5)),  # 11 late: between t=0 and ping 0, history only
    ]
    # when they are recorded as one batch
    with django_capture_on_commit_callbacks() as callbacks:
        results = services.ping_record_many(pings=batch, now=at(21))
    # then every ping has its own result, in input order
    cell = {p: h3.latlng_to_cell(*p, settings.PUBLIC_CELL_RES) for p in (MAPO, EAST_500M)}
    assert [(r.accepted, r.reason) for r in results] == [
        (True, ""),
        (False, Reject.BAD_COORDINATES),
        (False, Reject.DUPLICATE),
        (False, Reject.OFF_SHIFT),
        (False, Reject.TOO_FAST),
        (True, ""),
        (False, Reject.NOT_APPROVED),
        (True, ""),
        (False, Reject.UNKNOWN_VENDOR),
        (False, Reject.DUPLICATE),
        (False, Reject.RATE_LIMITED),
        (True, ""),
    ]
    assert results[5].public_cell == cell[EAST_500M] and results[5].published  # first sight
    assert results[7].public_cell == cell[MAPO] and not results[7].published  # same cell
    assert results[11].public_cell == cell[MAPO] and not results[11].published
    assert all(r.message for r in results if not r.accepted)
    assert len(callbacks) == sum(r.published for r in results) == 1
    # and exactly the good ones are stored, each once, with their source
    stored = set(Ping.objects.values_list("vendor_id", "recorded_at", "lat", "source"))
    assert stored == {
        (a.pk, at(0), MAPO[0], "ws"),
        (a.pk, at(10), NORTH_4M[0], "ws"),
        (a.pk, at(20), NORTH_40M[0], "ws"),
        (a.pk, at(5), MAPO[0], "ws"),
        (b.pk, at(10), EAST_500M[0], "batch"),
    }
    # and the latest positions are each vendor's newest accepted ping
    pos_a, pos_b = (VendorPosition.objects.get(vendor=v) for v in (a, b))
    assert (pos_a.lat, pos_a.recorded_at, pos_a.last_ping_at) == (NORTH_40M[0], at(20), at(21))
    assert (pos_b.lng, pos_b.public_cell, pos_b.last_broadcast_at) == (
        EAST_500M[1],
        cell[EAST_500M],
        at(21),
    )
    assert not VendorPosition.objects.get(vendor=off).lat
    assert not VendorPosition.objects.filter(vendor=pending).exists()
    # and refusals are counted per vendor and reason (duplicates and unknown vendors are not)
    assert _rejects() == {
        (b.pk, Reject.BAD_COORDINATES): 1,
        (off.pk, Reject.OFF_SHIFT): 1,
        (a.pk, Reject.TOO_FAST): 1,
        (pending.pk, Reject.NOT_APPROVED): 1,
        (a.pk, Reject.RATE_LIMITED): 1,
    }


@pytest.mark.django_db
def test_a_batch_costs_the_same_statements_whatever_its_size():
    vendors = [_on_shift() for _ in range(30)]
    spots = [(MAPO[0] + i * 0.001, MAPO[1]) for i in range(30)]

    def statements(seconds: float, count: int) -> int:
        pings = []
        for v, spot in zip(vendors[:count], spots, strict=False):
            pings += [_in(v.pk, *spot, at(seconds)), _in(v.pk, *spot, at(seconds + 5))]
            pings.append(_in(v.pk, 91, 0, at(seconds + 6)))  # and a refusal each
        with CaptureQueriesContext(connection) as queries:
            results = services.ping_record_many(pings=pings, now=at(seconds + 6))
        assert [r.reason for r in results] == ["", "", Reject.BAD_COORDINATES] * count
        return len(queries.captured_queries)

    # given the same kind of batch for 2 vendors and for 30 (one of them first, to warm caches)
    statements(0, 1)
    small, large = statements(100, 2), statements(200, 30)
    # then the statements do not grow with the batch: lock + read, history check, INSERT,
    # UPDATE, refusal upsert, stock of the vendors to broadcast (heartbeats due), and the
    # savepoint and its release (the test runs in a transaction)
    assert small == large == 8
    assert Ping.objects.count() == 2 * (1 + 2 + 30)


@pytest.mark.django_db
def test_an_unknown_vendor_alone_is_still_a_programming_error_for_ping_record():
    with pytest.raises(services.NotAllowed):
        ping(VendorFactory.build(pk=987_654), *MAPO, T0)
    assert services.ping_record_many(pings=[_in(987_654, *MAPO, T0)], now=T0)[0].reason == (
        Reject.UNKNOWN_VENDOR
    )
    assert services.ping_record_many(pings=[]) == []


@pytest.mark.django_db
def test_a_history_row_newer_than_the_position_is_still_a_duplicate():
    # given a vendor at t=0 and, written around the service, a history row at t=10
    vendor = _on_shift()
    assert ping(vendor, *MAPO, at(0)).accepted
    Ping.objects.create(
        vendor=vendor, lat=0, lng=0, accuracy_m=5, recorded_at=at(10), received_at=at(10), cell="x"
    )
    # when a batch brings that ping and a newer one
    results = services.ping_record_many(
        pings=[_in(vendor.pk, *MAPO, at(10)), _in(vendor.pk, *NORTH_4M, at(15))], now=at(15)
    )
    # then the first is a duplicate (the INSERT noticed; the batch ran again checking every
    # ping) and the second moves the latest position
    assert [r.reason for r in results] == [Reject.DUPLICATE, ""]
    assert VendorPosition.objects.get(vendor=vendor).recorded_at == at(15)
    assert Ping.objects.filter(vendor=vendor).count() == 3


# --- The batch equals ping_record one by one -----------------------------------------------------

SPOTS = [MAPO, NORTH_4M, NORTH_40M, EAST_500M, (MAPO[0], MAPO[1] + 0.0012), (91.0, 0.0)]
one_ping = st.tuples(
    st.integers(min_value=0, max_value=2),  # which vendor
    st.sampled_from([0, 0.5, 1, 2, 5, 10, 30, 60, 61, 125, 200, 3700]),  # seconds after T0-600
    st.sampled_from(range(len(SPOTS))),
    st.sampled_from([5.0, 10.0, 25.0, 200.0]),
)


def _state(vendors: list[Vendor]) -> tuple:
    """Everything a ping can change, with vendors named by their place in the list."""
    index = {v.pk: i for i, v in enumerate(vendors)}
    fields = [
        "on_shift",
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
    ]
    positions = sorted(
        (index[row[0]], *row[1:])
        for row in VendorPosition.objects.filter(vendor__in=vendors).values_list(
            "vendor_id", *fields
        )
    )
    history = sorted(
        (index[row[0]], *row[1:])
        for row in Ping.objects.filter(vendor__in=vendors).values_list(
            "vendor_id", "lat", "lng", "accuracy_m", "recorded_at", "received_at", "cell", "source"
        )
    )
    rejects = sorted(
        (index[vid], day, reason, n)
        for vid, day, reason, n in PingRejectCount.objects.filter(vendor__in=vendors).values_list(
            "vendor_id", "day", "reason", "count"
        )
    )
    return positions, history, rejects


def _payloads(callbacks, vendors) -> list[tuple]:
    """The broadcasts scheduled, as (vendor index, what the map would be shown)."""
    slugs = {v.slug: i for i, v in enumerate(vendors)}
    out = []
    for callback in callbacks:
        payload = dict(callback.keywords["payload"])
        who = slugs[payload.pop("id")]
        payload.pop("name"), payload.pop("url")
        out.append((who, callback.keywords["old_coarse"], sorted(payload.items())))
    return out


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sequence=st.lists(one_ping, min_size=1, max_size=12),
    off_shift=st.integers(min_value=0, max_value=3),
)
def test_a_batch_is_recorded_as_ping_record_would_one_by_one(
    sequence, off_shift, django_capture_on_commit_callbacks
):
    # given two identical sets of three vendors (one maybe off shift), one set per way of recording
    def vendors() -> list[Vendor]:
        made = [_on_shift() for _ in range(3)]
        if off_shift < 3:
            services.shift_end(vendor=made[off_shift], actor=made[off_shift].user)
        return made

    one_by_one, batched = vendors(), vendors()
    start, now = T0 - timedelta(seconds=600), T0

    def pings(vs):
        return [
            _in(vs[who].pk, *SPOTS[spot], start + timedelta(seconds=s), accuracy=acc)
            for who, s, spot, acc in sequence
        ]

    # when the same pings are recorded one by one through ping_record, and as one batch
    # (the same random delays for a candidate cell both ways)
    with (
        django_capture_on_commit_callbacks() as sent_singly,
        mock.patch.object(publication, "_rng", random.Random(1)),
    ):
        singly = [
            services.ping_record(
                vendor_id=p.vendor_id,
                lat=p.lat,
                lng=p.lng,
                accuracy_m=p.accuracy_m,
                recorded_at=p.recorded_at,
                now=now,
            )
            for p in pings(one_by_one)
        ]
    with (
        django_capture_on_commit_callbacks() as sent_batched,
        mock.patch.object(publication, "_rng", random.Random(1)),
    ):
        together = services.ping_record_many(pings=pings(batched), now=now)
    # then every result, what is stored, what is counted and what the map is told are the same
    assert together == singly
    assert _state(batched) == _state(one_by_one)
    assert _payloads(sent_batched, batched) == _payloads(sent_singly, one_by_one)


# --- Concurrency -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_batches_sharing_vendors_neither_deadlock_nor_store_a_ping_twice():
    # given forty vendors on shift
    vendors = [_on_shift() for _ in range(40)]
    errors: list[BaseException] = []
    outcomes: dict[str, list] = {}

    def batch(vs, offset: float) -> list[PingIn]:
        # Every vendor's pings at 0, 5 and 10 s (shared by both batches), plus one of its own.
        out = []
        for v in vs:
            out += [_in(v.pk, *MAPO, at(s)) for s in (0, 5, 10)]
            out.append(_in(v.pk, *MAPO, at(10 + offset)))
        return out

    def run(name: str, pings: list[PingIn], now, barrier: threading.Barrier) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[name] = services.ping_record_many(pings=pings, now=now)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    for round_ in range(5):
        shift = timedelta(seconds=100 * round_)
        barrier = threading.Barrier(2)
        # when two batches with the same vendors (in opposite orders) are recorded at once
        first = [
            PingIn(**{**p.__dict__, "recorded_at": p.recorded_at + shift})
            for p in batch(vendors, 1)
        ]
        second = [
            PingIn(**{**p.__dict__, "recorded_at": p.recorded_at + shift})
            for p in batch(vendors[::-1], 2)
        ]
        threads = [
            threading.Thread(target=run, args=("first", first, at(30) + shift, barrier)),
            threading.Thread(target=run, args=("second", second, at(30) + shift, barrier)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        # then neither failed nor hung (a deadlock would be an error after deadlock_timeout)
        assert not errors, errors
        assert not any(t.is_alive() for t in threads)
        # and each shared ping was accepted by exactly one batch, a duplicate in the other
        for i in range(len(vendors)):
            for k in range(3):
                pair = (outcomes["first"][4 * i + k], outcomes["second"][4 * (39 - i) + k])
                assert sorted(r.reason for r in pair) == ["", Reject.DUPLICATE], pair
        # and no update was lost: every latest position is the newest ping, the second batch's
        latest = set(VendorPosition.objects.values_list("recorded_at", flat=True))
        assert latest == {at(12) + shift}
    # and every (vendor, time) is stored once: 3 shared + 2 own per vendor and round
    assert Ping.objects.count() == 40 * 5 * 5
    assert not PingRejectCount.objects.filter(reason=Reject.DUPLICATE).exists()
