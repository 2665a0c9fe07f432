"""What an anonymous client must not be able to do to the map socket (issue #13, items 1-3): make
one message cost the event loop a lot of CPU (a viewport box from a pole), hold many sockets from
one address, crash the consumer with deeply nested JSON, or leave a subscription behind in the
map hub (and its channel in Redis groups) when a consumer dies."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote

import h3
import pytest
import redis
from asgiref.sync import async_to_sync
from django.conf import settings

from tests.factories import MAPO
from tests.tracking.ws import MAP, VENDOR, box, communicator, session_cookie
from tracking import consumers, selectors
from tracking import hub as hub_module
from tracking.hub import Subscription, current_hub, map_hub
from tracking.realtime import group_for

POLE = [-89.999, 0, 89.999, 0.0209]  # the box: ~16,600 coarse cells, 100-250 ms of h3
POLE_FRAME = json.dumps({"type": "viewport", "bbox": POLE})
DEEP = "[" * 1000 + "]" * 1000  # 2,000 characters: under the 2 KiB frame limit
pytestmark = pytest.mark.redis  # the map sockets' hub is on the channel layer
ROOT = Path(__file__).resolve().parents[2]


def run(main) -> None:
    """Run a test's sockets on a loop of its own, then close that loop's map hub the way the
    server's lifespan shutdown does (bounded), so no Redis read outlives the test's loop."""

    async def main_then_close() -> None:
        from tracking.hub import close_hub

        try:
            await main()
        finally:
            await close_hub()

    async_to_sync(main_then_close)()


async def closed_with(client) -> int:
    for _ in range(50):
        out = await client.receive_output(timeout=5)
        if out["type"] == "websocket.close":
            await client.disconnect(code=out.get("code", 1000), timeout=2)
            return out.get("code")
    raise AssertionError("the socket was never closed")


def _members(cell: str) -> set[str]:
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return {m.decode() for m in client.zrange(f"{prefix}:group:{group_for(cell)}", 0, -1)}
    finally:
        client.close()


def _coarse(lat: float, lng: float) -> str:
    return h3.cell_to_parent(h3.latlng_to_cell(lat, lng, settings.PUBLIC_CELL_RES), 7)


# --- 1. The viewport's size is bounded before any cell is computed ------------------------------


HOSTILE = {
    "the issue's pole-to-pole sliver": POLE,
    "from the south pole to the equator": [-89.999, 0, 0, 0.0209],
    "a 20 degree strip on the equator": [0, 0, 20, 0.001],
    "a polar cap": [89.0, -180, 89.999, 180],
    "the world": [-90, -180, 90, 180],
}


@pytest.mark.parametrize("bbox", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_huge_box_is_refused_before_h3_computes_a_cell(bbox, monkeypatch):
    def no_cells(*args, **kwargs):
        raise AssertionError("h3 was asked to fill a box that is too big")

    monkeypatch.setattr(selectors.h3, "h3shape_to_cells_experimental", no_cells)
    assert (
        selectors.coarse_cells_for_bbox(**dict(zip(("south", "west", "north", "east"), bbox)))
        is None
    )


def test_the_size_bound_never_underestimates_the_cells():
    # Boxes of every size, shape and latitude that pass the bound: h3 finds no more cells than it
    import random

    rng = random.Random(13)
    checked = 0
    for _ in range(1500):
        lat, lng = rng.uniform(-89.5, 89.5), rng.uniform(-179, 177)
        s, w = lat, lng
        n, e = min(90.0, lat + 10 ** rng.uniform(-4, 0.3)), lng + 10 ** rng.uniform(-4, 0.3)
        bound = selectors.viewport_cells_at_most(south=s, west=w, north=n, east=e, res=7)
        if bound > 480:
            continue
        poly = h3.LatLngPoly([(s, w), (s, e), (n, e), (n, w)])
        assert len(h3.h3shape_to_cells_experimental(poly, 7, contain="overlap")) <= bound
        checked += 1
    assert checked > 200


def test_a_city_viewport_still_gets_its_cells():
    cells = selectors.coarse_cells_for_bbox(
        **dict(zip(("south", "west", "north", "east"), box(*MAPO, 0.03)))
    )
    assert cells and _coarse(*MAPO) in cells and len(cells) <= settings.MAP_MAX_GROUPS


def test_the_worst_viewport_costs_a_few_ms_of_cpu():
    worst = 0.0
    for bbox in [POLE, *HOSTILE.values(), [0, 0, 1.4, 0.0001], [60, 0, 60.7, 0.0001]]:
        start = time.thread_time()
        selectors.coarse_cells_for_bbox(**dict(zip(("south", "west", "north", "east"), bbox)))
        worst = max(worst, time.thread_time() - start)
    assert worst < 0.010, f"{worst * 1000:.1f} ms"


def test_the_pole_box_is_asked_to_zoom_in():
    async def main():
        client = communicator(MAP)
        assert (await client.connect(timeout=5))[0]
        await client.send_to(text_data=POLE_FRAME)
        assert await client.receive_json_from(timeout=5) == {
            "type": "zoom_in",
            "max_groups": settings.MAP_MAX_GROUPS,
        }
        await client.disconnect(timeout=2)

    run(main)


def test_sockets_per_address_are_limited_and_given_back(settings):
    settings.MAP_SOCKETS_PER_ADDRESS = 3

    async def main():
        # given an address with three map sockets open (WebsocketCommunicator has no client)
        clients = [communicator(MAP) for _ in range(3)]
        for client in clients:
            assert (await client.connect(timeout=5))[0]
        # when it opens a fourth; then it is accepted and closed at once with 4429
        extra = communicator(MAP)
        assert (await extra.connect(timeout=5))[0]
        assert await closed_with(extra) == 4429
        # when one closes; then a new one may open
        await clients[0].disconnect(timeout=1)
        again = communicator(MAP)
        assert (await again.connect(timeout=5))[0]
        await again.send_to(text_data=POLE_FRAME)
        assert (await again.receive_json_from(timeout=5))["type"] == "zoom_in"
        for client in (*clients[1:], again):
            await client.disconnect(timeout=1)
        assert consumers._map_sockets == {}

    run(main)


def test_the_address_is_the_one_the_throttles_use(settings):
    scope = {
        "client": ("10.0.0.2", 5555),
        "headers": [(b"x-forwarded-for", b"203.0.113.9, 198.51.100.7")],
    }
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    assert consumers.client_address(scope) == "10.0.0.2"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert consumers.client_address(scope) == "198.51.100.7"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 2}
    assert consumers.client_address(scope) == "203.0.113.9"
    assert consumers.client_address({"client": ("10.0.0.3", 1), "headers": []}) == "10.0.0.3"


# --- 2. Deep JSON is a bad message, not a crash --------------------------------------------------


DEEP_MESSAGES = {
    "a 1,000-deep array": DEEP,
    "a deep array in a viewport": '{"type": "viewport", "bbox": ' + "[" * 900 + "]" * 900 + "}",
    "deep objects": '{"a":' * 300 + "1" + "}" * 300,
}


@pytest.mark.parametrize("text", DEEP_MESSAGES.values(), ids=DEEP_MESSAGES.keys())
def test_deep_json_closes_the_map_socket_with_4400(text):
    assert len(text.encode()) <= consumers.MAX_MESSAGE_BYTES

    async def main():
        client = communicator(MAP)
        assert (await client.connect(timeout=5))[0]
        await client.send_to(text_data=text)
        assert await closed_with(client) == 4400

    run(main)


@pytest.mark.django_db(transaction=True)
def test_deep_json_closes_the_vendor_socket_with_4400(on_shift):
    cookie = session_cookie(on_shift.user)

    async def main():
        phone = communicator(VENDOR, cookie)
        assert (await phone.connect(timeout=5))[0]
        await phone.send_to(text_data=DEEP)
        assert await closed_with(phone) == 4400

    run(main)


def test_brackets_inside_strings_do_not_count_as_nesting():
    from o2o import wsjson

    text = json.dumps({"type": "viewport", "note": "[" * 500})
    assert wsjson.nesting_depth(text) == 1
    assert wsjson.loads(text)["note"] == "[" * 500
    assert wsjson.nesting_depth(r'["\"[[[", [1]]') == 2
    with pytest.raises(ValueError):
        wsjson.loads(DEEP)


def test_a_frame_with_few_brackets_is_not_scanned(monkeypatch):
    """A frame with no more opening brackets than the limit cannot nest deeper: no scan in Python
    (a ping has one bracket; the fleet sends thousands a second)."""
    from o2o import wsjson

    def scan(text):
        raise AssertionError("scanned")

    monkeypatch.setattr(wsjson, "nesting_depth", scan)
    ping = json.dumps({"type": "ping", "lat": 37.5, "lng": 127.0, "accuracy": 8, "ts": 1})
    assert wsjson.loads(ping)["type"] == "ping"
    assert wsjson.loads("[" * 8 + "{}" + "]" * 8) == [[[[[[[[{}]]]]]]]]
    with pytest.raises(AssertionError, match="scanned"):
        wsjson.loads(DEEP)


# --- 3. A consumer's subscription goes with it, however it ends ---------------------------------


def test_a_crashed_map_consumer_leaves_no_subscription_behind(monkeypatch):
    coarse = _coarse(*MAPO)

    def crash(*, coarse_cells):
        raise RuntimeError("the snapshot read blew up")

    monkeypatch.setattr(selectors, "map_snapshot", crash)

    async def main():
        client = communicator(MAP)
        assert (await client.connect(timeout=5))[0]
        # when the consumer raises while answering a viewport (after its hub followed the cells)
        await client.send_json_to({"type": "viewport", "bbox": box(*MAPO)})
        with pytest.raises(RuntimeError, match="blew up"):
            await client.receive_output(timeout=5)
        hub = current_hub()
        # then the hub holds nothing for it and its channel left the cell's group
        assert hub.followers == {}
        assert hub.channel not in _members(coarse)
        assert consumers._map_sockets == {}

    run(main)


def test_the_sweep_drops_orphaned_subscriptions_and_leaves_their_groups(monkeypatch):
    monkeypatch.setattr(hub_module, "SWEEP_S", 0.05)
    coarse = _coarse(*MAPO)

    async def main():
        hub = await map_hub()
        sent: list[str] = []

        async def send_text(text: str) -> None:
            sent.append(text)

        owner_alive = True
        # given a subscription whose owner is gone without closing it (as a killed consumer)
        orphan = Subscription(hub, send_text, alive=lambda: owner_alive)
        async with orphan.viewport([coarse]):
            pass
        # and one whose socket has not taken a message for longer than UNREACHABLE_S
        stuck = Subscription(hub, send_text)
        async with stuck.viewport([coarse]):
            pass
        stuck.sending_since = asyncio.get_running_loop().time() - hub_module.UNREACHABLE_S - 1
        # and a live one elsewhere
        live = Subscription(hub, send_text, alive=lambda: True)
        far = _coarse(MAPO[0], MAPO[1] + 0.09)
        async with live.viewport([far]):
            pass
        assert hub.channel in _members(coarse)
        owner_alive = False
        # when the periodic sweep runs
        deadline = time.monotonic() + 5
        while hub.subscriptions() != {live} and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # then the orphans are gone, the hub left their cell's group, and the live one stays
        assert hub.subscriptions() == {live}
        assert hub.swept == 2
        assert coarse not in hub.joined
        assert hub.channel not in _members(coarse)
        assert hub.channel in _members(far)
        # and a delta in the orphans' cell is sent to nobody
        hub.on_message({"type": "map.remove", "id": "x", "coarse": coarse, "at": None})
        assert orphan.pending == {} and stuck.pending == {}
        await live.close()
        assert hub.channel not in _members(far)

    run(main)


def test_a_socket_the_sweep_gave_up_on_follows_again_with_its_next_viewport(monkeypatch):
    monkeypatch.setattr(selectors, "map_snapshot", lambda *, coarse_cells: [])

    async def main():
        client = communicator(MAP)
        assert (await client.connect(timeout=5))[0]
        await client.send_json_to({"type": "viewport", "bbox": box(*MAPO)})
        assert (await client.receive_json_from(timeout=5))["type"] == "snapshot"
        hub = current_hub()
        [sub] = hub.subscriptions()
        # given the hub's sweep dropped it (its sends looked stuck)
        sub.sending_since = asyncio.get_running_loop().time() - hub_module.UNREACHABLE_S - 1
        assert await hub.sweep() == 1
        # when the socket sends its next viewport; then it follows the cells again
        await client.send_json_to({"type": "viewport", "bbox": box(*MAPO)})
        assert (await client.receive_json_from(timeout=5))["type"] == "snapshot"
        [again] = hub.subscriptions()
        assert again is not sub and not again.closed
        await client.disconnect(timeout=1)
        assert hub.subscriptions() == set()

    run(main)


def test_a_leave_that_failed_is_retried_by_the_sweep():
    coarse = _coarse(*MAPO)

    async def main():
        hub = await map_hub()

        async def send_text(text: str) -> None: ...

        sub = Subscription(hub, send_text)
        async with sub.viewport([coarse]):
            pass
        real_discard = hub.layer.group_discard

        async def redis_away(group, channel):
            raise ConnectionError("Redis is away")

        # when the socket leaves while Redis is away
        hub.layer.group_discard = redis_away
        await sub.close()
        assert hub.channel in _members(coarse)
        # then the next sweep, once Redis is back, leaves the group
        hub.layer.group_discard = real_discard
        await hub.sweep()
        assert hub.channel not in _members(coarse)

    run(main)


# --- Over a real server, with a real websocket client --------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def uvicorn_server(transactional_db):
    port = _free_port()
    db = settings.DATABASES["default"]
    auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "o2o.settings",
        "O2O_IGNORE_DOTENV": "true",
        "DJANGO_ENV": "development",
        "DEBUG": "false",
        "DATABASE_URL": f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "CONN_MAX_AGE": "0",
        "REDIS_URL": settings.REDIS_URL,
        "CHANNELS_PREFIX": f"o2o-map-abuse-{uuid.uuid4().hex[:12]}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "INPROCESS_SCHEDULER": "false",
        "MAP_SOCKETS_PER_ADDRESS": "4",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log = (ROOT / "test-artifacts").joinpath("map-abuse-server.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "o2o.asgi:application", "--host", "127.0.0.1"]
            + ["--port", str(port), "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with opener.open(f"{url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"uvicorn did not become healthy:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
        yield url, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.mark.postgres
def test_pole_frames_do_not_freeze_the_server(uvicorn_server):
    import websockets
    from websockets.exceptions import ConnectionClosed

    url, log = uvicorn_server
    ws_url = url.replace("http", "ws") + MAP

    async def health_times(stop: asyncio.Event) -> list[float]:
        times = []
        while not stop.is_set():
            reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
            start = time.monotonic()
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            await writer.drain()
            status = await reader.readline()
            times.append(time.monotonic() - start)
            assert b" 200 " in status, status
            await reader.read()
            writer.close()
            await asyncio.sleep(0.02)
        return times

    async def pole_client(ws) -> int:
        answers = 0
        for _ in range(10):
            await ws.send(POLE_FRAME)
        for _ in range(10):
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "zoom_in"
            answers += 1
        return answers

    async def main():
        # given four anonymous map sockets from one address (the server allows four)
        sockets = [await websockets.connect(ws_url, origin=url) for _ in range(4)]
        # then a fifth is accepted and closed with 4429, a code the client sees
        fifth = await websockets.connect(ws_url, origin=url)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(fifth.recv(), 5)
        assert closed.value.rcvd.code == 4429
        # when each sends ten pole-to-pole frames while /healthz is polled
        stop = asyncio.Event()
        health = asyncio.create_task(health_times(stop))
        await asyncio.sleep(0.1)
        answered = await asyncio.gather(*(pole_client(ws) for ws in sockets))
        await asyncio.sleep(0.1)
        stop.set()
        times = await health
        for ws in sockets:
            await ws.close()
        return answered, times

    answered, times = asyncio.run(main())
    # then every frame is answered (zoom in) and the server kept answering /healthz quickly
    # (before the fix: each frame held the event loop 100-250 ms, /healthz waited seconds; with
    # it ~10-110 ms at load 14 on two cores)
    assert answered == [10, 10, 10, 10]
    assert times and max(times) < 0.3, [round(t * 1000) for t in times]
    assert "Exception in ASGI application" not in log.read_text()
