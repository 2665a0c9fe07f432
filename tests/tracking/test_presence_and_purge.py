"""Background upkeep of the live map: silent vendors fade to stale then offline, old history is
purged in batches, and going off shift takes a vendor off the map at once."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import MAPO, VendorFactory
from tests.tracking.conftest import T0, at, ping
from tracking import selectors, services, tasks
from tracking.models import Ping, Presence, VendorPosition

pytestmark = pytest.mark.django_db

NEARBY = f"/api/vendors/nearby/?lat={MAPO[0]}&lng={MAPO[1]}&radius_m=2000"


def _on_shift(**kwargs):
    vendor = VendorFactory(**kwargs)
    services.shift_start(vendor=vendor, actor=vendor.user)
    return vendor


def _presence(vendor) -> str:
    return VendorPosition.objects.values_list("presence", flat=True).get(vendor=vendor)


def _nearby_slugs(api) -> set[str]:
    response = api.get(NEARBY)
    assert response.status_code == 200, response.content
    return {v["id"] for v in response.json()["results"]}


def test_sweep_fades_silent_vendors_to_stale_then_offline(api, settings):
    assert (settings.STALE_AFTER_S, settings.OFFLINE_AFTER_S) == (120, 600)
    # given four vendors on shift who last pinged at different times before `now`
    now = at(1000)
    quiet_130s, quiet_700s, recent, went_home = (_on_shift() for _ in range(4))
    ping(quiet_130s, *MAPO, now - timedelta(seconds=130))
    ping(quiet_700s, *MAPO, now - timedelta(seconds=700))
    ping(recent, *MAPO, now - timedelta(seconds=30))
    ping(went_home, *MAPO, now - timedelta(seconds=900))
    services.shift_end(vendor=went_home, actor=went_home.user)
    assert _nearby_slugs(api) == {quiet_130s.slug, quiet_700s.slug, recent.slug}

    # when the sweep runs
    moved = services.presence_sweep(now=now)

    # then the one quiet for 2+ minutes is stale, the one quiet for 10+ minutes offline at once,
    # the recent one and the one off shift are left alone
    assert moved == {"stale": 1, "offline": 1}
    assert _presence(quiet_130s) == Presence.STALE
    assert _presence(quiet_700s) == Presence.OFFLINE
    assert _presence(recent) == Presence.MOVING
    assert _presence(went_home) == Presence.OFFLINE
    stale_row = VendorPosition.objects.get(vendor=quiet_130s)
    assert stale_row.last_broadcast_at == now  # the map was told
    # and the offline vendor is gone from every public read, the stale one is still shown
    live = set(selectors.positions_live().values_list("vendor_id", flat=True))
    assert live == {quiet_130s.pk, recent.pk}
    assert _nearby_slugs(api) == {quiet_130s.slug, recent.slug}
    snapshot = selectors.map_snapshot(coarse_cells=[stale_row.coarse_cell])
    assert {v["id"]: v["presence"] for v in snapshot} == {
        quiet_130s.slug: "stale",
        recent.slug: "moving",
    }

    # when it runs again at the same instant; then nothing more changes
    assert services.presence_sweep(now=now) == {"stale": 0, "offline": 0}
    assert _presence(quiet_130s) == Presence.STALE

    # when ten more minutes pass in silence; then the stale and the recent one go offline too
    assert services.presence_sweep(now=now + timedelta(seconds=600)) == {
        "stale": 0,
        "offline": 2,
    }
    assert not selectors.positions_live().exists()
    assert _nearby_slugs(api) == set()


def test_sweep_works_in_batches(settings):
    # given five vendors silent for three minutes
    vendors = [_on_shift() for _ in range(5)]
    for v in vendors:
        ping(v, *MAPO, at(0))
    # when the sweep runs two rows at a time; then all five are stale
    assert services.presence_sweep(now=at(180), batch_size=2) == {"stale": 5, "offline": 0}
    assert {_presence(v) for v in vendors} == {Presence.STALE}


def test_a_stale_vendor_who_pings_again_is_back(settings):
    # given a vendor made stale by the sweep
    vendor = _on_shift()
    ping(vendor, *MAPO, at(0))
    services.presence_sweep(now=at(150))
    assert _presence(vendor) == Presence.STALE
    # when their phone pings again from the same spot; then they are shown as standing still
    result = ping(vendor, *MAPO, at(160))
    assert result.accepted and result.published
    assert _presence(vendor) == Presence.STATIONARY
    # and a sweep right after leaves them alone
    assert services.presence_sweep(now=at(170)) == {"stale": 0, "offline": 0}


def _history(vendor, received_ago_days: list[float], now):
    for i, days in enumerate(received_ago_days):
        Ping.objects.create(
            vendor=vendor,
            lat=MAPO[0],
            lng=MAPO[1],
            accuracy_m=10,
            recorded_at=now - timedelta(days=days, seconds=i),
            received_at=now - timedelta(days=days),
            cell="8930e1db10bffff",
        )


def test_purge_deletes_only_old_history_in_batches(vendor, settings):
    assert settings.PING_HISTORY_DAYS == 7
    # given five pings older than a week and three within it (one exactly a week old)
    _history(vendor, [7.01, 8, 9, 30, 365], T0)
    _history(vendor, [0, 6.99, 7], T0)
    # when the purge runs two rows at a time
    with CaptureQueriesContext(connection) as queries:
        deleted = services.pings_purge_old(now=T0, batch_size=2)
    # then exactly the five old ones are gone, in three DELETEs of at most two rows
    assert deleted == 5
    kept = sorted((T0 - r).days for r in Ping.objects.values_list("received_at", flat=True))
    assert kept == [0, 6, 7]
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3
    # and running it again deletes nothing
    assert services.pings_purge_old(now=T0, batch_size=2) == 0
    assert Ping.objects.count() == 3


def test_celery_tasks_run_and_return_what_the_services_return(vendor):
    # given, relative to the real clock, one vendor silent for 11 minutes and a history row
    # from last month
    now = timezone.now()
    services.shift_start(vendor=vendor, actor=vendor.user)
    ping(vendor, *MAPO, now - timedelta(seconds=660))
    _history(vendor, [31], now)
    # when beat's tasks run (eagerly in tests)
    sweep = tasks.presence_sweep.delay()
    purge = tasks.pings_purge_old.delay()
    # then they did the work and return the services' answers
    assert sweep.get() == {"stale": 0, "offline": 1}
    assert purge.get() == 1
    assert _presence(vendor) == Presence.OFFLINE
    assert Ping.objects.count() == 1
    # and again: nothing left to do
    assert tasks.presence_sweep.delay().get() == {"stale": 0, "offline": 0}
    assert tasks.pings_purge_old.delay().get() == 0


def test_shift_end_takes_the_vendor_off_the_map(api, on_shift, django_capture_on_commit_callbacks):
    # given a vendor on the map
    ping(on_shift, *MAPO, at(0))
    coarse = VendorPosition.objects.get(vendor=on_shift).coarse_cell
    assert _nearby_slugs(api) == {on_shift.slug}
    # when they go off shift
    with django_capture_on_commit_callbacks() as callbacks:
        pos = services.shift_end(vendor=on_shift, actor=on_shift.user)
    # then they are gone from every public read at once, and the map is told after commit
    assert (pos.on_shift, pos.presence) == (False, Presence.OFFLINE)
    # (the other hook runs the partner event's effect, vendor.off_shift)
    assert len([c for c in callbacks if "publish_vendor" in c.__qualname__]) == 1
    assert not selectors.positions_live().exists()
    assert selectors.map_snapshot(coarse_cells=[coarse]) == []
    assert selectors.vendor_public_state(vendor_id=on_shift.pk) == (None, coarse)
    assert _nearby_slugs(api) == set()
    # and going off shift twice is harmless and tells nobody again
    with django_capture_on_commit_callbacks() as callbacks:
        services.shift_end(vendor=on_shift, actor=on_shift.user)
    assert callbacks == []


def test_only_the_vendor_or_staff_can_change_a_shift(on_shift, customer, staff):
    with pytest.raises(services.NotAllowed):
        services.shift_end(vendor=on_shift, actor=customer)
    assert VendorPosition.objects.get(vendor=on_shift).on_shift
    services.shift_end(vendor=on_shift, actor=staff)
    assert not VendorPosition.objects.get(vendor=on_shift).on_shift


def test_suspending_a_vendor_takes_them_off_the_map_at_once(
    api, on_shift, django_capture_on_commit_callbacks
):
    # given a vendor on the map
    ping(on_shift, *MAPO, at(0))
    assert _nearby_slugs(api) == {on_shift.slug}
    # when staff suspend them (the map is told after the suspension commits)
    from vendors.services import vendor_suspend

    with django_capture_on_commit_callbacks(execute=True):
        vendor_suspend(vendor_id=on_shift.pk, reason="test")
    # then they are off shift and gone from every public read, without waiting for the sweep
    pos = VendorPosition.objects.get(vendor=on_shift)
    assert (pos.on_shift, pos.presence) == (False, Presence.OFFLINE)
    assert _nearby_slugs(api) == set()
    # and a ping from the suspended vendor is refused
    assert ping(on_shift, *MAPO, at(10)).reason == services.Reject.NOT_APPROVED
