"""The demo simulator: approved vendors ride loops around their home base, and every simulated
position goes through ping_record like a real phone's."""

from datetime import timedelta
from io import StringIO

import h3
import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.factories import VendorFactory
from tracking.models import Ping, PingRejectCount, Presence, VendorPosition
from tracking.services import Reject, ping_record
from tracking.simulator import REAL_PHONE_QUIET, Simulation, simulate_for
from vendors.models import Vendor

pytestmark = pytest.mark.django_db


def test_the_command_puts_approved_vendors_on_shift_and_pings_for_them():
    # given three approved vendors and one pending
    vendors = VendorFactory.create_batch(3)
    pending = VendorFactory(status=Vendor.Status.PENDING)
    out = StringIO()
    # when the simulator runs two steps five seconds apart (real time: it sleeps between steps)
    call_command("simulate_vendors", "--steps", "2", "--interval", "5", stdout=out)
    # then the approved ones are on shift and on the map, with two pings each in the history
    assert "Simulating 3 vendors" in out.getvalue()
    assert "step 2: 3 accepted, 0 rejected" in out.getvalue()
    for vendor in vendors:
        pos = VendorPosition.objects.get(vendor=vendor)
        assert pos.on_shift and pos.presence == Presence.MOVING
        assert h3.is_valid_cell(pos.public_cell)
        assert h3.get_resolution(pos.public_cell) == 9
        assert pos.public_cell == h3.latlng_to_cell(pos.lat, pos.lng, 9)
        pings = list(Ping.objects.filter(vendor=vendor).order_by("recorded_at"))
        assert [p.source for p in pings] == ["sim", "sim"]
        assert (pings[1].recorded_at - pings[0].recorded_at).total_seconds() >= 5
        assert pos.recorded_at == pings[1].recorded_at
    # and the pending one is left alone
    assert not VendorPosition.objects.filter(vendor=pending).exists()
    assert not Ping.objects.filter(vendor=pending).exists()
    assert not PingRejectCount.objects.exists()


def test_a_simulated_ride_changes_cells_at_a_cart_s_pace():
    # given three approved vendors
    vendors = VendorFactory.create_batch(3)
    # when 40 steps of 5 s (200 s) are simulated in virtual time
    sim = simulate_for(steps=40, interval_s=5)
    # then every ping was recorded, none refused (in particular none as impossible speed)
    assert len(sim.riders) == 3
    assert Ping.objects.count() == 3 * 40
    assert not PingRejectCount.objects.filter(reason=Reject.TOO_FAST).exists()
    assert not PingRejectCount.objects.exists()
    # and at least one vendor rode into another public cell
    cells = {
        v.pk: set(Ping.objects.filter(vendor=v).values_list("cell", flat=True)) for v in vendors
    }
    assert max(len(c) for c in cells.values()) > 1
    for vendor in vendors:
        pos = VendorPosition.objects.get(vendor=vendor)
        assert pos.public_cell == Ping.objects.filter(vendor=vendor).latest("recorded_at").cell


def test_a_vendor_on_shift_from_a_real_phone_is_left_alone_until_the_phone_goes_quiet():
    # given two demo vendors ridden by the simulator, 5 s a step

    real, demo = VendorFactory.create_batch(2)
    sim = Simulation(interval_s=5)
    start = timezone.now()
    # ... and the first vendor opens the on-shift page on a phone 3 km away from the loop
    phone = (real.home_lat + 0.027, real.home_lng)
    assert ping_record(
        vendor_id=real.pk, lat=phone[0], lng=phone[1], accuracy_m=8, recorded_at=start, now=start
    ).accepted

    # when the simulator steps on for a minute while the phone keeps sending
    for i in range(1, 13):
        now = start + timedelta(seconds=5 * i)
        ping_record(
            vendor_id=real.pk, lat=phone[0], lng=phone[1], accuracy_m=8, recorded_at=now, now=now
        )
        counts = sim.step(now)
        assert counts == {"accepted": 1, "rejected": 0, "skipped": 1}

    # then the phone's vendor got no simulated ping, none of theirs was refused as too fast,
    # and the cart stays where the phone is; the other vendor rode on
    assert not Ping.objects.filter(vendor=real, source="sim").exists()
    assert Ping.objects.filter(vendor=real, source="ws").count() == 13
    assert not PingRejectCount.objects.exists()
    pos = VendorPosition.objects.get(vendor=real)
    assert (pos.lat, pos.lng) == phone
    assert Ping.objects.filter(vendor=demo, source="sim").count() == 12

    # when the phone goes quiet for longer than REAL_PHONE_QUIET (by the server's clock)
    later = now + REAL_PHONE_QUIET + timedelta(seconds=1)
    counts = sim.step(later)
    # then the simulator rides that vendor again, from where the phone left the cart (a walk,
    # not a jump back to the loop: nothing refused)
    assert counts == {"accepted": 2, "rejected": 0, "skipped": 0}
    last = Ping.objects.filter(vendor=real, source="sim").get()
    assert abs(last.lat - phone[0]) < 0.0005 and abs(last.lng - phone[1]) < 0.0005
    assert not PingRejectCount.objects.exists()
