"""vendors_nearby reads cells outwards only as far as the page needs, and still answers exactly what
a brute-force distance filter over every vendor answers: the same vendors (on the map, approved,
their public cell's centre within the radius), in the same order, with the same rough distance."""

import math
import random
from datetime import timedelta

import h3
import pytest
from django.conf import settings
from django.utils import timezone

from o2o.geo import distance_m
from tests.factories import MAPO, VendorFactory
from tracking import selectors
from tracking.models import Presence, VendorPosition
from vendors.models import Vendor

pytestmark = pytest.mark.django_db


def _around(rng: random.Random, lat: float, lng: float, sigma_m: float) -> tuple[float, float]:
    north, east = rng.gauss(0, sigma_m), rng.gauss(0, sigma_m)
    return lat + north / 111_320, lng + east / (111_320 * math.cos(math.radians(lat)))


def _seed(rng: random.Random, n: int) -> None:
    """n vendors around MAPO: a dense cluster, a sparse spread up to ~8 km, duplicate names; some
    off shift, some offline, and some live on the map but no longer approved."""
    vendors = VendorFactory.create_batch(n, name=factory_name(rng))
    now = timezone.now()
    rows = []
    for v in vendors:
        lat, lng = _around(rng, *MAPO, rng.choice([400, 1500, 4000]))
        cell = h3.latlng_to_cell(lat, lng, settings.PUBLIC_CELL_RES)
        kind = rng.random()
        rows.append(
            VendorPosition(
                vendor=v,
                on_shift=kind > 0.08,
                presence=Presence.OFFLINE if 0.08 < kind < 0.14 else Presence.MOVING,
                lat=lat,
                lng=lng,
                accuracy_m=10,
                recorded_at=now - timedelta(seconds=5),
                last_ping_at=now - timedelta(seconds=5),
                public_cell=cell,
                coarse_cell=h3.cell_to_parent(cell, settings.MAP_GROUP_RES),
            )
        )
    VendorPosition.objects.bulk_create(rows)
    unapproved = [v.pk for v in vendors if rng.random() < 0.05]
    Vendor.objects.filter(pk__in=unapproved).update(status=Vendor.Status.SUSPENDED)


def factory_name(rng: random.Random):
    import factory

    names = ["붕어빵", "떡볶이", "호떡", "Waffle", "Taco"]
    return factory.LazyFunction(lambda: f"{rng.choice(names)} {rng.randrange(40)}")


def _brute_force(
    everyone: list[VendorPosition], lat: float, lng: float, radius_m: float, limit: int
) -> list[tuple[str, int]]:
    rows = []
    for pos in everyone:
        if not pos.is_public or pos.vendor.status != Vendor.Status.APPROVED:
            continue
        d = distance_m(lat, lng, *h3.cell_to_latlng(pos.public_cell))
        if d <= radius_m:
            rows.append((d, pos.vendor.name, pos.vendor.slug))
    rows.sort()
    return [(slug, int(round(d / 100.0) * 100)) for d, _name, slug in rows[:limit]]


@pytest.mark.parametrize("seed", [1, 2])
def test_nearby_equals_a_brute_force_distance_filter(seed):
    # given 400 vendors scattered around MAPO, some not on the map or not approved
    rng = random.Random(seed)
    _seed(rng, 400)
    points = [MAPO] + [_around(rng, *MAPO, 3000) for _ in range(5)]
    everyone = list(VendorPosition.objects.select_related("vendor"))
    checked = 0
    # when customers at several points ask at several radii and page sizes
    for lat, lng in points:
        for radius in (300, 1000, 2500, 5000):
            for limit in (3, 50):
                got = selectors.vendors_nearby(lat=lat, lng=lng, radius_m=radius, limit=limit)
                # then the answer is exactly the brute force's
                expected = _brute_force(everyone, lat, lng, radius, limit)
                assert [(v["id"], v["distance_m"]) for v in got] == expected, (
                    lat,
                    lng,
                    radius,
                    limit,
                )
                assert all({"lat", "lng", "position"}.isdisjoint(v) for v in got)
                checked += len(expected)
    assert checked > 500  # the comparison was not vacuous


def test_a_full_first_tier_leaves_the_farther_cells_unread():
    # given a dense cluster at MAPO and vendors 2 km away
    rng = random.Random(3)
    VendorFactory.create_batch(2)
    now = timezone.now()
    near = VendorFactory.create_batch(12)
    far = VendorFactory.create_batch(5)
    rows = []
    for vendors, (lat, lng) in ((near, MAPO), (far, (MAPO[0] + 0.018, MAPO[1]))):
        for v in vendors:
            cell = h3.latlng_to_cell(*_around(rng, lat, lng, 30), settings.PUBLIC_CELL_RES)
            rows.append(
                VendorPosition(
                    vendor=v,
                    on_shift=True,
                    presence=Presence.MOVING,
                    last_ping_at=now,
                    public_cell=cell,
                    coarse_cell=h3.cell_to_parent(cell, settings.MAP_GROUP_RES),
                )
            )
    VendorPosition.objects.bulk_create(rows)
    tiers = selectors._nearby_tiers(*MAPO, 3000)
    assert len(tiers) == 4  # 300 m, 600 m, 1.2 km, 3 km (no thin last annulus)
    # when a page of 10 is asked for; then only the first tier is read
    rows = selectors._live_in_tiers(tiers, need=10)
    assert {row[0] for row in rows} == {0}
    assert len(rows) == 12
    # and a page of 20 reads on until the far vendors are found
    rows = selectors._live_in_tiers(tiers, need=20)
    assert len(rows) == 17
    got = selectors.vendors_nearby(lat=MAPO[0], lng=MAPO[1], radius_m=3000, limit=20)
    assert {v["id"] for v in got} == {v.slug for v in near + far}
