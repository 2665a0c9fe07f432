"""The live-map HTTP surface: nearby vendors (public), the vendor's shift and ping batches, and the
pages (map, on-shift web app, its manifest and service worker)."""

import json
import random
from datetime import datetime, timedelta

import h3
import pytest
from django.utils import timezone

from o2o.geo import distance_m
from tests.factories import MAPO, StockFactory, VendorFactory, stock_put
from tests.tracking.conftest import EAST_500M
from tracking import services
from tracking.models import Ping, VendorPosition
from tracking.selectors import products_in_stock_forget
from tracking.serializers import MAX_BATCH
from vendors.models import Vendor
from vendors.services import korea_today

ONE_DAY = timedelta(days=1)

pytestmark = pytest.mark.django_db

NEARBY = "/api/vendors/nearby/"
PINGS = "/api/tracking/pings/"
SHIFT = "/api/tracking/shift/"


def _error(response, status: int, code: str | None = None) -> dict:
    """The one error format: {"error": {"code", "message", "fields"?}} and nothing else."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "fields"}
    assert isinstance(error["message"], str) and error["message"]
    if code:
        assert error["code"] == code
    return error


def _on_map(lat: float, lng: float, **kwargs) -> Vendor:
    vendor = VendorFactory(**kwargs)
    services.shift_start(vendor=vendor, actor=vendor.user)
    now = timezone.now()
    result = services.ping_record(
        vendor_id=vendor.pk, lat=lat, lng=lng, accuracy_m=10, recorded_at=now, now=now
    )
    assert result.accepted, result
    return vendor


def _offset(metres_east: float, metres_north: float = 0.0) -> tuple[float, float]:
    return (
        MAPO[0] + metres_north / 111_320,
        MAPO[1] + metres_east / (111_320 * 0.7927),  # cos(37.556°)
    )


# --- Nearby -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"lng": MAPO[1]}, "lat"),
        ({"lat": MAPO[0]}, "lng"),
        ({"lat": 91, "lng": MAPO[1]}, "lat"),
        ({"lat": MAPO[0], "lng": -180.5}, "lng"),
        ({"lat": "north", "lng": MAPO[1]}, "lat"),
        ({"lat": "nan", "lng": MAPO[1]}, "lat"),
        ({"lat": MAPO[0], "lng": MAPO[1], "radius_m": 0}, "radius_m"),
        ({"lat": MAPO[0], "lng": MAPO[1], "radius_m": 20_001}, "radius_m"),
        ({"lat": MAPO[0], "lng": MAPO[1], "radius_m": 10**12}, "radius_m"),
        ({"lat": MAPO[0], "lng": MAPO[1], "radius_m": "far"}, "radius_m"),
        ({"lat": MAPO[0], "lng": MAPO[1], "limit": 0}, "limit"),
        ({"lat": MAPO[0], "lng": MAPO[1], "limit": 101}, "limit"),
    ],
)
def test_nearby_refuses_bad_queries_in_the_error_format(api, query, field):
    error = _error(api.get(NEARBY, query), 400, "invalid")
    assert field in error["fields"]


def test_nearby_lists_the_nearest_first_with_rounded_distances(api):
    # given vendors about 300 m, 800 m and 5 km from the point, and one near but off shift
    near, mid = _on_map(*_offset(300), name="near"), _on_map(*_offset(-800), name="mid")
    _on_map(*_offset(0, 5000), name="far")
    gone = _on_map(*_offset(100), name="gone")
    services.shift_end(vendor=gone, actor=gone.user)
    StockFactory(vendor=mid, quantity=3)
    StockFactory(vendor=mid, quantity=0)
    # when a customer asks for vendors within 1 km
    response = api.get(NEARBY, {"lat": MAPO[0], "lng": MAPO[1], "radius_m": 1000})
    # then the two within it come nearest first, with the distance to their cell's centre to
    # the nearest 100 m, and the products they have in stock
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [r["id"] for r in rows] == [near.slug, mid.slug]
    for row, vendor in zip(rows, (near, mid), strict=True):
        cell = VendorPosition.objects.get(vendor=vendor).public_cell
        true = distance_m(*MAPO, *h3.cell_to_latlng(cell))
        assert row["distance_m"] % 100 == 0
        assert abs(row["distance_m"] - true) <= 50
        assert row["cell"] == cell
    assert rows[0]["distance_m"] <= rows[1]["distance_m"]
    assert rows[1]["products"] == [mid.stock.get(quantity=3).product_id]
    # (a product whose units on the cart are all past their date is not for sale: not listed)
    stale = StockFactory(vendor=mid, quantity=2)
    stock_put(vendor=mid, product=stale.product, quantity=2, expires_on=korea_today() - ONE_DAY)
    products_in_stock_forget(vendor_id=mid.pk)
    again = api.get(NEARBY, {"lat": MAPO[0], "lng": MAPO[1], "radius_m": 1000}).json()
    assert again["results"][1]["products"] == [mid.stock.get(quantity=3).product_id]
    # and a wide radius finds the far one too, still nearest first
    wide = api.get(NEARBY, {"lat": MAPO[0], "lng": MAPO[1], "radius_m": 10_000}).json()
    assert [r["name"] for r in wide["results"]] == ["near", "mid", "far"]
    # and the limit keeps the nearest
    one = api.get(NEARBY, {"lat": MAPO[0], "lng": MAPO[1], "radius_m": 10_000, "limit": 1})
    assert [r["name"] for r in one.json()["results"]] == ["near"]


def test_nearby_works_with_and_without_the_trailing_slash(api):
    vendor = _on_map(*MAPO)
    for url in ("/api/vendors/nearby/", "/api/vendors/nearby"):
        response = api.get(url, {"lat": MAPO[0], "lng": MAPO[1]})
        assert response.status_code == 200, url
        assert [r["id"] for r in response.json()["results"]] == [vendor.slug]


@pytest.mark.parametrize("radius_m", [1_000, 20_000])
def test_nearby_costs_the_same_queries_however_many_vendors_there_are(
    api, radius_m, django_assert_num_queries
):
    query = {"lat": MAPO[0], "lng": MAPO[1], "radius_m": radius_m}
    # given one vendor on the map nearby
    StockFactory(vendor=_on_map(*_offset(200)))
    # one statement: vendors tier by tier outwards from the cell indexes, with their stock
    with django_assert_num_queries(1):
        first = api.get(NEARBY, query)
    assert len(first.json()["results"]) == 1
    # when 12 more vendors are around (on the map, off shift, far away, not approved)
    rng = random.Random(5)
    for _i in range(6):
        StockFactory(vendor=_on_map(*_offset(rng.uniform(-500, 500), rng.uniform(-500, 500))))
    for _i in range(3):
        off_shift = VendorFactory()
        services.shift_start(vendor=off_shift, actor=off_shift.user)
    for i in range(2):
        _on_map(35.1796 + i / 100, 129.0756)  # Busan
    suspended = _on_map(*_offset(100))
    Vendor.objects.filter(pk=suspended.pk).update(status=Vendor.Status.SUSPENDED)
    # then the same request costs the same number of queries
    with django_assert_num_queries(1):
        second = api.get(NEARBY, query)
    assert len(second.json()["results"]) == 7


def test_nearby_with_nobody_around_is_empty(api, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        response = api.get(NEARBY, {"lat": MAPO[0], "lng": MAPO[1]})
    assert response.status_code == 200
    assert response.json() == {"results": []}


# --- Ping batches -------------------------------------------------------------------------------


def _ms(when) -> int:
    return int(when.timestamp() * 1000)


def _batch(*pings) -> dict:
    return {"pings": list(pings)}


def test_ping_batch_is_for_vendors_only(api, customer):
    now = timezone.now()
    body = _batch({"lat": MAPO[0], "lng": MAPO[1], "accuracy": 10, "ts": _ms(now)})
    anonymous = api.post(PINGS, body, format="json")
    assert anonymous.status_code in (401, 403)
    _error(anonymous, anonymous.status_code)
    api.force_login(customer)
    _error(api.post(PINGS, body, format="json"), 403)
    assert not Ping.objects.exists()


def test_an_out_of_order_batch_is_recorded_oldest_first(api, on_shift):
    # given a vendor on shift whose phone queued pings while offline, sent in any order
    api.force_login(on_shift.user)
    now = timezone.now().replace(microsecond=0)
    spots = {
        now - timedelta(seconds=90): MAPO,
        now - timedelta(seconds=60): (MAPO[0], MAPO[1] + 0.002),
        now - timedelta(seconds=30): EAST_500M,
    }
    order = [now - timedelta(seconds=s) for s in (30, 90, 60)]
    body = _batch(
        *[
            {"lat": spots[t][0], "lng": spots[t][1], "accuracy": 10, "ts": _ms(t)}
            for t in order[:2]
        ],
        {
            "lat": spots[order[2]][0],
            "lng": spots[order[2]][1],
            "accuracy": 10,
            "ts": order[2].isoformat(),
        },
    )
    # when the batch arrives
    response = api.post(PINGS, body, format="json")
    # then every ping is accepted and they were recorded oldest first
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 3 and response.json()["rejected"] == 0
    assert [r["accepted"] for r in response.json()["results"]] == [True, True, True]
    stored = list(Ping.objects.order_by("pk").values_list("recorded_at", "source"))
    assert stored == [(t, "batch") for t in sorted(spots)]
    # and the latest position is the newest ping
    pos = VendorPosition.objects.get(vendor=on_shift)
    assert (pos.recorded_at, pos.lat, pos.lng) == (max(spots), *EAST_500M)

    # when the phone, unsure it got through, sends the same batch again
    again = api.post(PINGS, body, format="json")
    # then it is fine (200), every ping is a duplicate and nothing new is stored
    assert again.status_code == 200
    assert again.json()["accepted"] == 0
    assert {r["reason"] for r in again.json()["results"]} == {"duplicate"}
    assert Ping.objects.count() == 3


def test_a_batch_of_only_bad_pings_is_422_with_each_reason(api, on_shift):
    api.force_login(on_shift.user)
    now = timezone.now()
    body = _batch(
        {"lat": 91, "lng": MAPO[1], "accuracy": 10, "ts": _ms(now)},
        {"lat": MAPO[0], "lng": MAPO[1], "accuracy": 10, "ts": "not a time"},
        {"lat": MAPO[0], "lng": MAPO[1], "accuracy": 0, "ts": _ms(now)},
        {"lat": MAPO[0], "lng": MAPO[1], "accuracy": 10, "ts": _ms(now + timedelta(hours=1))},
        {"lat": MAPO[0], "lng": MAPO[1], "accuracy": 10, "ts": _ms(now - timedelta(days=1))},
    )
    response = api.post(PINGS, body, format="json")
    assert response.status_code == 422, response.content
    results = response.json()["results"]
    assert response.json()["accepted"] == 0 and response.json()["rejected"] == 5
    assert sorted(r["reason"] for r in results) == sorted(
        ["bad_coordinates", "bad_timestamp", "bad_accuracy", "future_timestamp", "too_old"]
    )
    assert all(r["message"] and r["accepted"] is False for r in results)
    assert not Ping.objects.exists()


def test_a_mixed_batch_is_200_with_a_result_per_ping(api, on_shift):
    api.force_login(on_shift.user)
    now = timezone.now()
    body = _batch(
        {"lat": MAPO[0], "lng": MAPO[1], "accuracy": 10, "ts": _ms(now - timedelta(seconds=5))},
        {"lat": "x", "lng": MAPO[1], "accuracy": 10, "ts": _ms(now)},
    )
    response = api.post(PINGS, body, format="json")
    assert response.status_code == 200
    assert [(r["accepted"], r["reason"]) for r in response.json()["results"]] == [
        (True, ""),
        (False, "bad_coordinates"),
    ]
    assert Ping.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        "not json at all",
        json.dumps({}),
        json.dumps({"pings": "many"}),
        json.dumps({"pings": []}),
        json.dumps({"pings": [{"lat": 37.5, "lng": 126.9}]}),
        json.dumps({"pings": [[37.5, 126.9, 10, 0]]}),
        json.dumps([{"lat": 37.5, "lng": 126.9, "accuracy": 10, "ts": 0}]),
    ],
    ids=["not json", "empty", "not a list", "no pings", "missing fields", "list", "bare list"],
)
def test_a_malformed_batch_is_400(api, on_shift, body):
    api.force_login(on_shift.user)
    _error(api.post(PINGS, body, content_type="application/json"), 400)
    assert not Ping.objects.exists()


def test_a_batch_over_the_limit_is_400(api, on_shift):
    api.force_login(on_shift.user)
    now = timezone.now()
    ping = {"lat": MAPO[0], "lng": MAPO[1], "accuracy": 10, "ts": _ms(now)}
    error = _error(api.post(PINGS, _batch(*[ping] * (MAX_BATCH + 1)), format="json"), 400)
    assert "pings" in error["fields"]
    assert not Ping.objects.exists()
    assert MAX_BATCH == 500


# --- Shift --------------------------------------------------------------------------------------


def test_a_vendor_goes_on_and_off_shift(api, vendor):
    api.force_login(vendor.user)
    on = api.post(SHIFT, {"on_shift": True}, format="json")
    assert (on.status_code, on.json()) == (200, {"on_shift": True})
    assert VendorPosition.objects.get(vendor=vendor).on_shift
    assert api.get("/api/tracking/me/").json()["on_shift"] is True
    off = api.post(SHIFT, {"on_shift": False}, format="json")
    assert (off.status_code, off.json()) == (200, {"on_shift": False})
    assert not VendorPosition.objects.get(vendor=vendor).on_shift
    _error(api.post(SHIFT, {"on_shift": "maybe"}, format="json"), 400, "invalid")


@pytest.mark.parametrize("status", [Vendor.Status.PENDING, Vendor.Status.SUSPENDED])
def test_a_vendor_not_approved_cannot_go_on_shift(api, status):
    vendor = VendorFactory(status=status)
    api.force_login(vendor.user)
    _error(api.post(SHIFT, {"on_shift": True}, format="json"), 403, "forbidden")
    assert not VendorPosition.objects.filter(vendor=vendor, on_shift=True).exists()


def test_customers_and_anonymous_have_no_shift(api, customer):
    anonymous = api.post(SHIFT, {"on_shift": True}, format="json")
    assert anonymous.status_code in (401, 403)
    api.force_login(customer)
    _error(api.post(SHIFT, {"on_shift": True}, format="json"), 403)
    assert not VendorPosition.objects.exists()


# --- Pages --------------------------------------------------------------------------------------


def test_shift_page_is_for_vendors(client, customer, vendor):
    anonymous = client.get("/shift/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/?next=/shift/")
    client.force_login(customer)
    assert client.get("/shift/")["Location"] == "/vendors/apply/"
    client.force_login(vendor.user)
    page = client.get("/shift/")
    assert page.status_code == 200
    assert page.context["shift_config"]["canSell"] is True
    assert page.context["shift_config"]["onShift"] is False
    assert 'id="shift-config"' in page.content.decode()


def test_map_page_is_public(client):
    page = client.get("/map/")
    assert page.status_code == 200
    assert page.context["map_config"]["ws"] == "/ws/map/"
    assert page.context["map_config"]["addresses"] == []
    assert client.get("/")["Location"] == "/map/"


def test_manifest_and_service_worker(client):
    manifest = client.get("/shift/manifest.webmanifest")
    assert manifest.status_code == 200
    assert manifest["Content-Type"] == "application/manifest+json"
    data = json.loads(manifest.content)
    assert data["start_url"] == "/shift/" and data["scope"] == "/shift/"
    assert data["display"] == "standalone" and data["icons"]
    worker = client.get("/shift/sw.js")
    assert worker.status_code == 200
    assert worker["Content-Type"].startswith("text/javascript")
    assert worker["Service-Worker-Allowed"] == "/shift/"
    assert "no-cache" in worker["Cache-Control"]
    assert '"/shift/"' in worker.content.decode()


def test_a_null_field_in_a_batch_is_refused_per_ping_not_for_the_whole_batch(api, on_shift):
    vendor = on_shift
    api.force_authenticate(vendor.user)
    now = timezone.now()
    good = {"lat": 37.556, "lng": 126.906, "accuracy": 10, "ts": now.isoformat()}
    bad = {
        "lat": None,
        "lng": 126.906,
        "accuracy": 10,
        "ts": (now - timedelta(seconds=5)).isoformat(),
    }
    response = api.post("/api/tracking/pings/", {"pings": [bad, good]}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    reasons = {r["ts"]: r["reason"] for r in body["results"]}
    assert reasons[bad["ts"]] == "bad_coordinates"
    assert reasons[good["ts"]] == ""


def test_last_seen_always_carries_its_offset():
    # Raw SQL on the embedded SQLite gives naive datetimes (UTC); PostgreSQL gives aware ones
    from tracking.selectors import public_payload

    cell = h3.latlng_to_cell(*MAPO, 9)
    # (rounded down to the public step, a minute: 12:34:56.789 is shown as 12:34:00)
    naive = timezone.now().replace(tzinfo=None, second=56, microsecond=789)
    shown = naive.replace(second=0, microsecond=0)
    for moment in (naive, timezone.make_aware(naive, timezone.get_fixed_timezone(0))):
        payload = public_payload(
            slug="cart",
            name="Cart",
            cell=cell,
            coarse=cell,
            presence="moving",
            last_seen=moment,
            products=[],
        )
        seen = datetime.fromisoformat(payload["last_seen"])
        assert seen.utcoffset() is not None
        assert seen.replace(tzinfo=None) - seen.utcoffset() == shown


@pytest.mark.parametrize("fmt", ["multipart", "urlencoded"])
def test_a_shift_form_that_says_nothing_is_400_and_leaves_the_shift_alone(api, fmt):
    # Given a vendor on shift
    vendor = _on_map(*MAPO)
    api.force_authenticate(vendor.user)
    # When a form without on_shift is posted (DRF would read the missing boolean as False)
    if fmt == "multipart":
        response = api.post(SHIFT, {}, format="multipart")
    else:
        response = api.generic("POST", SHIFT, "", content_type="application/x-www-form-urlencoded")
    # Then it is refused, saying what is missing, and the vendor is still on shift
    error = _error(response, 400)
    assert "on_shift" in error["fields"]
    assert VendorPosition.objects.get(vendor=vendor).on_shift is True
    # And a form that says it is on shift works
    assert api.post(SHIFT, {"on_shift": "true"}, format="multipart").status_code == 200
