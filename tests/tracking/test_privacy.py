"""THE privacy test. A vendor's exact position never leaves the server except to that vendor and to
staff: every public surface shows only the H3 cell, i.e. numbers derived from the cell alone.

The check is on the raw bodies (JSON, HTML, socket frames), not on known keys, so a leak under
any name, in any format, is caught: no number may equal the exact coordinates to 4+ decimals, and
every number near them must be the cell's centre or one of its corners (or a known public
constant of the page, like the map's default centre or the viewer's own saved address)."""

import json
import math
import re
from datetime import timedelta

import h3
import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from tests.factories import AddressFactory, CustomerProfileFactory, StockFactory, VendorFactory
from tests.tracking.ws import box, communicator
from tracking import services
from tracking.views import DEFAULT_CENTRE

# The vendor's exact spot (7 decimals, ~1 cm) and their home base: both private. The spot is
# chosen at least ~40 m (in each axis) from its cell's centre and corners, so "rounded to 4
# decimals" cannot coincide with anything derived from the cell.
EXACT = (37.5566874, 126.9236121)
HOME = (37.5581234, 126.9201234)
# Where the viewing customer lives (their own data: they may see it on their own map page).
CUSTOMER_HOME = (37.5575, 126.9245)
WEST = (EXACT[0], EXACT[1] - 0.006)  # ~530 m west: another public cell
NEAR = 0.05  # degrees: numbers this close to the exact coordinates are looked at closely

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?")
NUMBER = re.compile(r"(?<![\w.:/-])-?\d+\.\d+")


def _cell_points(cell: str) -> list[tuple[float, float]]:
    return [h3.cell_to_latlng(cell), *h3.cell_to_boundary(cell)]


def _close(a: tuple[float, float], b: tuple[float, float]) -> bool:
    # The cell's points are published rounded to 6 decimals.
    return abs(a[0] - b[0]) <= 6e-7 and abs(a[1] - b[1]) <= 6e-7


def _truncated(value: float, decimals: int) -> str:
    factor = 10**decimals
    return f"{math.trunc(value * factor) / factor:.{decimals}f}"


def assert_only_the_cell(body: str, *cells: str, public=()) -> list[tuple[float, float]]:
    """Fail when `body` holds the exact position (or home) or any coordinate near it that is not
    a centre or corner of `cells` (or one of `public`). Returns the coordinate pairs found."""
    body = TIMESTAMP.sub("<time>", body)  # seconds like 12:00:37.5567 are not coordinates
    numbers = [(text, float(text)) for text in NUMBER.findall(body)]
    for what, point in {"exact position": EXACT, "home base": HOME}.items():
        for secret in point:
            assert repr(secret) not in body, f"{what} {secret} appears verbatim"
            roundings = {
                text
                for decimals in range(4, 8)
                for text in (f"{secret:.{decimals}f}", _truncated(secret, decimals))
            }
            for text, number in numbers:
                assert f"{number:.{_decimals(text)}f}" not in roundings, (
                    f"{what} {secret} appears as {text}"
                )
    allowed = [p for cell in cells for p in _cell_points(cell)] + list(public)
    for _text, number in numbers:
        if abs(number - EXACT[0]) < NEAR:
            assert any(abs(number - p[0]) <= 6e-7 for p in allowed), f"latitude {number} leaks"
        if abs(number - EXACT[1]) < NEAR:
            assert any(abs(number - p[1]) <= 6e-7 for p in allowed), f"longitude {number} leaks"
    values = [number for _text, number in numbers]
    pairs = [
        (a, b)
        for a, b in zip(values, values[1:], strict=False)
        if abs(a - EXACT[0]) < NEAR and abs(b - EXACT[1]) < NEAR
    ]
    for pair in pairs:
        assert any(_close(pair, p) for p in allowed), f"{pair} is not derived from a cell"
    return pairs


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1])


def _shows_the_cell(pairs, cell: str) -> bool:
    centre = h3.cell_to_latlng(cell)
    corners = h3.cell_to_boundary(cell)
    return any(_close(p, centre) for p in pairs) and all(
        any(_close(p, corner) for p in pairs) for corner in corners
    )


def test_the_chosen_spot_is_far_from_everything_the_cell_publishes():
    # The test is only as good as this premise: nothing public rounds to the secret's digits.
    cell = h3.latlng_to_cell(*EXACT, settings.PUBLIC_CELL_RES)
    for point in _cell_points(cell) + [DEFAULT_CENTRE, CUSTOMER_HOME]:
        assert abs(point[0] - EXACT[0]) > 2e-4 and abs(point[1] - EXACT[1]) > 2e-4, point
        assert abs(point[0] - HOME[0]) > 2e-4 and abs(point[1] - HOME[1]) > 2e-4, point
    assert h3.great_circle_distance(EXACT, h3.cell_to_latlng(cell), unit="m") > 50


CELL = h3.latlng_to_cell(*EXACT, settings.PUBLIC_CELL_RES)
LEAKS = {
    "verbatim": '{"lat": 37.5566874, "lng": 126.9236121}',
    "rounded to 4": '{"centre": [37.5567, 126.9236]}',
    "rounded to 5, in HTML": '<div data-pos="37.55669,126.92361">',
    "truncated to 4": "[37.5566, 126.9236]",
    "as text": "the cart is at 37.556687 N",
    "home base": '{"home": [37.5581234, 126.9201234]}',
    "a nearby pair not from the cell": "[37.5570, 126.9240]",
    "a jittered latitude": '{"lat": 37.557012}',
}


@pytest.mark.parametrize("body", LEAKS.values(), ids=LEAKS.keys())
def test_the_checker_catches_leaks(body):
    with pytest.raises(AssertionError):
        assert_only_the_cell(body, CELL)


def test_the_checker_lets_the_cell_through():
    centre = [round(x, 6) for x in h3.cell_to_latlng(CELL)]
    corners = [[round(x, 6) for x in corner] for corner in h3.cell_to_boundary(CELL)]
    body = json.dumps({"centre": centre, "boundary": corners, "distance_m": 300})
    assert _shows_the_cell(assert_only_the_cell(body, CELL), CELL)


def _vendor_at_the_exact_spot():
    """A vendor with stock, on shift, whose last ping was at EXACT; (vendor, public cell)."""
    vendor = VendorFactory(home_lat=HOME[0], home_lng=HOME[1])
    CustomerProfileFactory(user=vendor.user)
    StockFactory(vendor=vendor)
    services.shift_start(vendor=vendor, actor=vendor.user)
    now = timezone.now().replace(microsecond=0)
    result = services.ping_record(
        vendor_id=vendor.pk,
        lat=EXACT[0],
        lng=EXACT[1],
        accuracy_m=4.2,
        recorded_at=now - timedelta(seconds=3),
        now=now,
    )
    assert result.accepted, result
    return vendor, result.public_cell


@pytest.mark.django_db
def test_no_public_page_or_api_shows_more_than_the_cell(client, api):
    vendor, cell = _vendor_at_the_exact_spot()
    customer = AddressFactory(lat=CUSTOMER_HOME[0], lng=CUSTOMER_HOME[1]).customer.user
    lat, lng = CUSTOMER_HOME
    surfaces = [
        f"/api/vendors/nearby/?lat={lat}&lng={lng}&radius_m=1000",
        f"/api/vendors/nearby?lat={lat}&lng={lng}&radius_m=20000",
        "/api/vendors/",
        f"/api/vendors/{vendor.slug}/",
        "/vendors/",
        f"/vendors/{vendor.slug}/",
        "/map/",
    ]
    for viewer in ("anonymous", "customer"):
        if viewer == "customer":
            client.force_login(customer)
            api.force_authenticate(customer)
        for url in surfaces:
            http = api if url.startswith("/api/") else client
            response = http.get(url)
            assert response.status_code == 200, (viewer, url, response.status_code)
            body = response.content.decode()
            assert vendor.name in body or url == "/map/", (viewer, url)
            public = [DEFAULT_CENTRE] + ([CUSTOMER_HOME] if viewer == "customer" else [])
            pairs = assert_only_the_cell(body, cell, public=public)
            if "nearby" in url:
                # the vendor is there, drawn as its cell: centre and every corner
                assert _shows_the_cell(pairs, cell), (viewer, url)
                row = response.json()["results"][0]
                assert set(row) == {
                    "id",
                    "name",
                    "url",
                    "cell",
                    "coarse",
                    "centre",
                    "boundary",
                    "presence",
                    "last_seen",
                    "products",
                    "distance_m",
                }
                assert row["distance_m"] % 100 == 0


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_map_socket_shows_only_the_cell():
    vendor, cell = _vendor_at_the_exact_spot()

    async def main():
        client = communicator("/ws/map/")
        assert (await client.connect(timeout=5))[0]
        await client.send_json_to({"type": "viewport", "bbox": box(*EXACT, 0.01)})
        snapshot = await client.receive_output(timeout=5)
        assert json.loads(snapshot["text"])["type"] == "snapshot"
        # the vendor rides away and back: the move back is an upsert from the exact spot
        now = timezone.now()
        for (lat, lng), later in ((WEST, 60), (EXACT, 120)):
            result = await database_sync_to_async(services.ping_record)(
                vendor_id=vendor.pk,
                lat=lat,
                lng=lng,
                accuracy_m=5,
                recorded_at=now + timedelta(seconds=later),
                now=now + timedelta(seconds=later),
            )
            assert result.published, result
        # (a move across coarse cells is a remove on one group and an upsert on the other; deltas
        # come in batches, coalesced per vendor)
        frames = []
        while len(frames) < 6:
            frames.append((await client.receive_output(timeout=5))["text"])
            events = json.loads(frames[-1])["events"]
            if events[-1].get("vendor", {}).get("cell") == cell:
                break
        await client.disconnect(timeout=0.1)
        return snapshot["text"], frames

    snapshot, frames = async_to_sync(main)()
    assert _shows_the_cell(assert_only_the_cell(snapshot, cell), cell)
    assert {json.loads(f)["type"] for f in frames} == {"batch"}
    events = [e for f in frames for e in json.loads(f)["events"]]
    assert {e["type"] for e in events} <= {"upsert", "remove"}
    west_cell = h3.latlng_to_cell(*WEST, settings.PUBLIC_CELL_RES)
    for frame in frames:
        assert_only_the_cell(frame, cell, west_cell)
    back = events[-1]
    assert (back["type"], back["vendor"]["cell"]) == ("upsert", cell)
    assert _shows_the_cell(assert_only_the_cell(json.dumps(back), cell), cell)


@pytest.mark.django_db
def test_staff_and_the_vendor_see_the_exact_position_nobody_else_does(client, api, staff):
    vendor, cell = _vendor_at_the_exact_spot()
    other = VendorFactory()
    services.shift_start(vendor=other, actor=other.user)
    exact_texts = [repr(EXACT[0]), repr(EXACT[1])]

    # staff see it in the admin (positions and history)
    client.force_login(staff)
    for url in ("/admin/tracking/vendorposition/", "/admin/tracking/ping/"):
        body = client.get(url).content.decode()
        assert all(text in body for text in exact_texts), url

    # the vendor sees it on their own track (logged in as a browser would be: a fresh user)
    api.force_login(vendor.user)
    own = api.get("/api/tracking/me/")
    assert own.status_code == 200
    assert own.json()["position"] == {"lat": EXACT[0], "lng": EXACT[1], "accuracy_m": 4.2}
    assert own.json()["public_cell"] == cell
    assert [(p["lat"], p["lng"]) for p in own.json()["track"]] == [EXACT]

    # another vendor, a customer and anonymous get nothing of it
    api.force_login(other.user)
    theirs = api.get("/api/tracking/me/")
    assert theirs.status_code == 200
    assert theirs.json()["position"] is None and theirs.json()["track"] == []
    assert_only_the_cell(theirs.content.decode(), cell)
    for user in (CustomerProfileFactory().user, None):
        for http in (api, client):
            http.logout()
            if user:
                http.force_login(user)
        assert api.get("/api/tracking/me/").status_code in (401, 403)
        response = client.get("/admin/tracking/vendorposition/")
        assert response.status_code == 302
        assert_only_the_cell(response.content.decode(), cell)
