"""Demo movement: approved vendors ride a loop around their home base, with stops, and every
position goes through the same ping_record_many path as a real phone's."""

import logging
import math
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import close_old_connections
from django.utils import timezone

from vendors.models import Vendor

from .models import Ping, VendorPosition
from .services import PingIn, ping_record_many, shift_start

log = logging.getLogger(__name__)
METRES_PER_DEG_LAT = 111_320.0
BATCH = 200
SOURCE = "sim"
# A vendor whose phone sent a ping this recently is riding for real: the simulator leaves them
# alone (its made-up positions would be refused as faster than a cart, or worse, move the real
# cart on the map). Longer than a phone's quiet spells (pings at most every few seconds, a
# reconnect's batch), short enough that a demo vendor rides again soon after the phone is put away.
REAL_PHONE_QUIET = timedelta(minutes=2)


def vendors_on_real_phones(*, vendor_ids: list[int], now: datetime) -> set[int]:
    """Those of `vendor_ids` with a ping from anything but the simulator since REAL_PHONE_QUIET
    ago. Each Ping row carries its source ("ws", "batch", "sim"), so no extra state is needed."""
    return set(
        Ping.objects.filter(vendor_id__in=vendor_ids, received_at__gte=now - REAL_PHONE_QUIET)
        .exclude(source=SOURCE)
        .values_list("vendor_id", flat=True)
        .distinct()
    )


@dataclass
class Rider:
    vendor_id: int
    waypoints: list[tuple[float, float]]
    speed_mps: float
    leg: int = 0
    progress_m: float = 0.0
    pause_left_s: float = 0.0
    stops: set[int] = field(default_factory=set)

    def position(self) -> tuple[float, float]:
        a = self.waypoints[self.leg]
        b = self.waypoints[(self.leg + 1) % len(self.waypoints)]
        length = _metres(a, b) or 1.0
        f = min(self.progress_m / length, 1.0)
        return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f

    def move_to(self, lat: float, lng: float) -> None:
        """Shift the whole loop so that the rider stands at (lat, lng): where a real phone left
        the cart, so the next simulated ping is a step from there, not a jump back."""
        here = self.position()
        dlat, dlng = lat - here[0], lng - here[1]
        self.waypoints = [(a + dlat, b + dlng) for a, b in self.waypoints]

    def advance(self, seconds: float) -> None:
        if self.pause_left_s > 0:
            self.pause_left_s = max(0.0, self.pause_left_s - seconds)
            return
        self.progress_m += self.speed_mps * seconds
        while True:
            a = self.waypoints[self.leg]
            b = self.waypoints[(self.leg + 1) % len(self.waypoints)]
            length = _metres(a, b)
            if self.progress_m < length:
                return
            self.progress_m -= length
            self.leg = (self.leg + 1) % len(self.waypoints)
            if self.leg in self.stops:  # a regular stop on the round: stand still a while
                self.pause_left_s = 150.0
                self.progress_m = 0.0
                return


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = (b[0] - a[0]) * METRES_PER_DEG_LAT
    dx = (b[1] - a[1]) * METRES_PER_DEG_LAT * math.cos(math.radians(a[0]))
    return math.hypot(dx, dy)


def make_rider(vendor: Vendor, rng: random.Random) -> Rider:
    points = []
    for i in range(6):
        angle = 2 * math.pi * i / 6 + rng.uniform(-0.3, 0.3)
        radius = rng.uniform(300, 800)
        dlat = radius * math.sin(angle) / METRES_PER_DEG_LAT
        dlng = (
            radius
            * math.cos(angle)
            / (METRES_PER_DEG_LAT * math.cos(math.radians(vendor.home_lat)))
        )
        points.append((vendor.home_lat + dlat, vendor.home_lng + dlng))
    return Rider(
        vendor_id=vendor.pk,
        waypoints=points,
        speed_mps=rng.uniform(1.4, 2.6),  # an electric cart in a neighbourhood: 5–9 km/h
        leg=rng.randrange(6),
        stops={rng.randrange(6)},
    )


class Simulation:
    def __init__(self, *, interval_s: float = 5.0, limit: int | None = None, seed: int = 7):
        self.interval_s = interval_s
        self.rng = random.Random(seed)
        vendors = Vendor.objects.filter(status=Vendor.Status.APPROVED).order_by("pk")
        if limit:
            vendors = vendors[:limit]
        self.riders = [make_rider(v, self.rng) for v in vendors]
        self.held: set[int] = set()  # riders a real phone is driving
        admin_actor = _SystemActor()
        for v in vendors:
            shift_start(vendor=v, actor=admin_actor)

    def step(self, now: datetime | None = None) -> dict[str, int]:
        now = now or timezone.now()
        real = vendors_on_real_phones(vendor_ids=[r.vendor_id for r in self.riders], now=now)
        self._take_back(released=self.held - real)
        self.held = real
        pings = []
        for rider in self.riders:
            if rider.vendor_id in real:
                continue  # not even advanced: the loop resumes where it stood
            rider.advance(self.interval_s)
            lat, lng = rider.position()
            pings.append(
                PingIn(
                    vendor_id=rider.vendor_id,
                    lat=lat + self.rng.gauss(0, 0.00002),
                    lng=lng + self.rng.gauss(0, 0.00002),
                    accuracy_m=self.rng.uniform(5, 20),
                    recorded_at=now,
                    source=SOURCE,
                )
            )
        counts = {"accepted": 0, "rejected": 0, "skipped": len(real)}
        # In batches, as the websocket batcher records a server's pings.
        for start in range(0, len(pings), BATCH):
            for result in ping_record_many(pings=pings[start : start + BATCH], now=now):
                counts["accepted" if result.accepted else "rejected"] += 1
        return counts

    def _take_back(self, *, released: set[int]) -> None:
        """Riders whose phone went quiet carry on from where the phone last put them."""
        if not released:
            return
        where: dict[int, tuple[float, float]] = {}
        for vendor_id, lat, lng in VendorPosition.objects.filter(
            vendor_id__in=released, lat__isnull=False, lng__isnull=False
        ).values_list("vendor_id", "lat", "lng"):
            if lat is not None and lng is not None:
                where[vendor_id] = (lat, lng)
        for rider in self.riders:
            if rider.vendor_id in where:
                rider.move_to(*where[rider.vendor_id])


class _SystemActor:
    """The simulator acts as staff would: it may put demo vendors on shift."""

    is_staff = True
    pk = None


class SimulatorThread(threading.Thread):
    def __init__(self, interval_s: float = 5.0) -> None:
        super().__init__(name="o2o-simulator", daemon=True)
        self.interval_s = interval_s
        self.stopped = threading.Event()

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        try:
            sim = Simulation(interval_s=self.interval_s)
            while not self.stopped.is_set():
                started = timezone.now()
                try:
                    sim.step(started)
                except Exception:
                    log.exception("simulator step failed")
                finally:
                    close_old_connections()
                spent = (timezone.now() - started).total_seconds()
                self.stopped.wait(max(0.1, self.interval_s - spent))
        finally:
            close_old_connections()


def simulate_for(*, steps: int, interval_s: float, start: datetime | None = None) -> Simulation:
    """Run `steps` simulated steps in virtual time (no sleeping), for tests and benchmarks."""
    sim = Simulation(interval_s=interval_s)
    now = start or timezone.now() - timedelta(seconds=steps * interval_s)
    for _i in range(steps):
        now += timedelta(seconds=interval_s)
        sim.step(now)
    return sim
