"""Shared pieces of the live-map tests: a fixed clock, vendors on shift, one-line pings."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import MAPO
from tracking import services
from vendors.models import Vendor

# A fixed instant for tests that pass `now=` (noon in Seoul, so the local day is unambiguous).
T0 = datetime(2025, 6, 2, 3, 0, 0, tzinfo=UTC)
# About 500 m east of MAPO: another public (res 9) cell, the same coarse (res 7) one.
EAST_500M = (MAPO[0], MAPO[1] + 0.0057)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ping(vendor: Vendor, lat: float, lng: float, when: datetime, *, now=None, accuracy=10.0):
    """One ping recorded at `when`, received at `now` (default: the same instant)."""
    return services.ping_record(
        vendor_id=vendor.pk,
        lat=lat,
        lng=lng,
        accuracy_m=accuracy,
        recorded_at=when,
        now=now or when,
    )


# Tests of the fan-out's mechanics (sockets, the hub, ingest, the simulator) want a new cell on
# the map at the ping that enters it; the public cell's hysteresis (a cell shown only well inside
# it, after a hold and a random delay) is tested in test_ping_record and test_privacy_over_time.
CELLS_AT_ONCE_MODULES = {"test_sockets", "test_ingest", "test_simulator", "test_map_socket_abuse"}


def cells_at_once(settings) -> None:
    """Every fix's own cell, shown at once (the hysteresis off)."""
    settings.PUBLIC_CELL_MARGIN_M = 0.0
    settings.PUBLIC_CELL_HOLD_S = 0.0
    settings.PUBLIC_CELL_DELAY_MIN_S = settings.PUBLIC_CELL_DELAY_MAX_S = 0.0


@pytest.fixture(autouse=True)
def _cells_at_once_for_fan_out_tests(request) -> None:
    if request.module.__name__.rsplit(".", 1)[-1] in CELLS_AT_ONCE_MODULES:
        cells_at_once(request.getfixturevalue("settings"))


@pytest.fixture
def on_shift(vendor) -> Vendor:
    """The approved `vendor` fixture, on shift, not yet pinged."""
    services.shift_start(vendor=vendor, actor=vendor.user)
    return vendor
