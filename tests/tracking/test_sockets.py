"""The live-map websockets on the real ASGI app and the real channels-redis layer: map clients get a
snapshot then batches of deltas, vendors' phones send pings, bad or abusive clients are closed
with a code.

Each test is sync and runs one event loop (async_to_sync) for its clients: one server process with
its own map hub (tracking.hub). Tests of several processes run a second loop in another thread:
another hub, with its own channel, sharing Redis."""

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import h3
import pytest
import redis
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from o2o.realtime import broadcaster
from tests.factories import MAPO, VendorFactory
from tests.tracking.conftest import EAST_500M
from tests.tracking.ws import MAP, VENDOR, box, communicator, refusal, session_cookie
from tracking import hub as hub_module
from tracking import selectors, services
from tracking.hub import Subscription, current_hub, map_hub
from tracking.models import Ping
from tracking.realtime import group_for
from vendors.models import Vendor

pytestmark = pytest.mark.redis
# Consumers read the database from other threads: the tests that need rows commit them.
with_db = pytest.mark.django_db(transaction=True)

FAR_EAST = (MAPO[0], MAPO[1] + 0.09)  # ~8 km east: another coarse cell, not a neighbour's
NEAR = (MAPO[0] + 0.00004, MAPO[1])  # 4 m north: the same public cell
WIDE = box(*MAPO, 0.01)  # ~2 km across around MAPO


def run(main) -> None:
    async_to_sync(main)()


def ping_ago(vendor, lat, lng, seconds_ago: float = 0.0, accuracy: float = 10.0):
    """A ping through ping_record, `seconds_ago` before the real now (sockets use the real clock)."""
    now = timezone.now()
    return services.ping_record(
        vendor_id=vendor.pk,
        lat=lat,
        lng=lng,
        accuracy_m=accuracy,
        recorded_at=now - timedelta(seconds=seconds_ago),
        now=now,
    )


def now_ms(seconds_ago: float = 0.0) -> int:
    return int((timezone.now() - timedelta(seconds=seconds_ago)).timestamp() * 1000)


async def watch(bbox: list[float]):
    """A map client watching a viewport: (communicator, its snapshot)."""
    client = communicator(MAP)
    connected, _code = await client.connect(timeout=5)
    assert connected
    await client.send_json_to({"type": "viewport", "bbox": bbox})
    snapshot = await client.receive_json_from(timeout=5)
    assert snapshot["type"] == "snapshot", snapshot
    return client, snapshot


async def hang_up(client, code: int = 1000) -> None:
    """The client goes away. A vendor's phone then waits on its pending Redis read (channels-redis
    lets it finish, up to 5 s) before it stops; a test need not wait for that."""
    await client.disconnect(code=code, timeout=0.1)


async def events(client, timeout: float = 5) -> list[dict]:
    """The events of the next message a map client gets, which must be a batch."""
    message = await client.receive_json_from(timeout=timeout)
    assert message["type"] == "batch", message
    assert message["events"], "a batch is never empty"
    return message["events"]


async def closed_with(client) -> int:
    """Read what the socket sends until the server closes it; the close code. Then the client
    hangs up too (see hang_up)."""
    for _ in range(100):
        out = await client.receive_output(timeout=5)
        if out["type"] == "websocket.close":
            await hang_up(client, out.get("code", 1000))
            return out.get("code")
    raise AssertionError("the socket was never closed")


def _coarse(lat, lng) -> str:
    cell = h3.latlng_to_cell(lat, lng, settings.PUBLIC_CELL_RES)
    return h3.cell_to_parent(cell, settings.MAP_GROUP_RES)


# --- Map socket ---------------------------------------------------------------------------------


@with_db
def test_origin_of_another_host_is_refused(vendor):
    cookie = session_cookie(vendor.user)

    async def main():
        for path, headers in ((MAP, ()), (VENDOR, (cookie,))):
            evil = communicator(path, *headers, origin=(b"origin", b"https://evil.example"))
            connected, _code = await evil.connect(timeout=5)
            assert not connected, path
            await hang_up(evil)
            good = communicator(path, *headers)
            connected, _code = await good.connect(timeout=5)
            assert connected, path
            await hang_up(good)

    run(main)


@with_db
def test_snapshot_shows_vendors_on_shift_in_the_viewport_only(on_shift):
    # given a vendor on the map at MAPO, one on the map 8 km away, one off shift at MAPO
    far = VendorFactory()
    services.shift_start(vendor=far, actor=far.user)
    home = VendorFactory()
    services.shift_start(vendor=home, actor=home.user)
    ping_ago(on_shift, *MAPO, 30)
    ping_ago(far, *FAR_EAST, 30)
    ping_ago(home, *MAPO, 30)
    services.shift_end(vendor=home, actor=home.user)

    async def main():
        # when a map client sends a viewport around MAPO
        client, snapshot = await watch(box(*MAPO))
        # then it gets the coarse cells it now follows and only the vendor on shift in them
        assert _coarse(*MAPO) in snapshot["cells"]
        assert len(snapshot["cells"]) <= settings.MAP_MAX_GROUPS
        assert [v["id"] for v in snapshot["vendors"]] == [on_shift.slug]
        vendor = snapshot["vendors"][0]
        assert vendor["cell"] == h3.latlng_to_cell(*MAPO, settings.PUBLIC_CELL_RES)
        assert vendor["presence"] == "moving"
        await hang_up(client)

    run(main)


@with_db
def test_a_new_cell_reaches_subscribed_map_clients_after_commit(on_shift):
    # given a vendor on the map and two map clients (think: two server processes) watching
    ping_ago(on_shift, *MAPO, 60)

    async def main():
        first, snapshot = await watch(WIDE)
        second, _snapshot = await watch(WIDE)
        assert [v["id"] for v in snapshot["vendors"]] == [on_shift.slug]

        def move_inside_a_transaction():
            with transaction.atomic():
                result = ping_ago(on_shift, *EAST_500M)
                assert result.published
                # then nothing is sent while the write is not committed
                assert async_to_sync(first.receive_nothing)(0.5)
            return result

        # when the vendor's ping moves them into another public cell
        result = await database_sync_to_async(move_inside_a_transaction)()
        # then, once committed, both clients get the delta through Redis
        for client in (first, second):
            [message] = await events(client)
            assert message["type"] == "upsert"
            assert message["vendor"]["id"] == on_shift.slug
            assert message["vendor"]["cell"] == result.public_cell
            assert message["vendor"]["cell"] != snapshot["vendors"][0]["cell"]
            assert await client.receive_nothing(0.3)
            await hang_up(client)

    run(main)


@with_db
def test_moving_to_another_coarse_cell_removes_the_vendor_from_the_old_one(on_shift):
    # given a vendor on the map at MAPO ten minutes ago, a client watching MAPO and one watching
    # an area 8 km east, whose coarse cells do not overlap
    ping_ago(on_shift, *MAPO, 600)
    old_coarse, new_coarse = _coarse(*MAPO), _coarse(*FAR_EAST)

    async def main():
        old_area, old_snapshot = await watch(box(*MAPO))
        new_area, new_snapshot = await watch(box(*FAR_EAST))
        assert new_coarse not in old_snapshot["cells"]
        assert old_coarse not in new_snapshot["cells"]
        assert [v["id"] for v in old_snapshot["vendors"]] == [on_shift.slug]
        assert new_snapshot["vendors"] == []
        # when the vendor rides 8 km east (13 m/s: fine for a cart on a road)
        result = await database_sync_to_async(ping_ago)(on_shift, *FAR_EAST)
        assert result.accepted, result
        # then the old area is told to remove them and the new area gets them
        assert await events(old_area) == [
            {"type": "remove", "id": on_shift.slug, "coarse": old_coarse}
        ]
        [upsert] = await events(new_area)
        assert upsert["type"] == "upsert"
        assert (upsert["vendor"]["id"], upsert["vendor"]["coarse"]) == (on_shift.slug, new_coarse)
        assert await old_area.receive_nothing(0.3)
        assert await new_area.receive_nothing(0.1)
        await hang_up(old_area)
        await hang_up(new_area)

    run(main)


@with_db
def test_a_ping_in_the_same_cell_sends_nothing_public(on_shift):
    # given a vendor put on the map (and broadcast) just now, by a ping recorded 2 minutes ago
    ping_ago(on_shift, *MAPO, 120)

    async def main():
        client, _snapshot = await watch(WIDE)
        # when they move 4 m (same cell, still moving, no heartbeat due)
        result = await database_sync_to_async(ping_ago)(on_shift, *NEAR, 60)
        assert result.accepted and not result.published
        # then map clients hear nothing
        assert await client.receive_nothing(0.5)
        # while a change of cell does reach them (the client was listening all along)
        await database_sync_to_async(ping_ago)(on_shift, *EAST_500M)
        assert [e["type"] for e in await events(client)] == ["upsert"]
        await hang_up(client)

    run(main)


@with_db
def test_going_off_shift_removes_the_vendor_from_map_clients(on_shift):
    ping_ago(on_shift, *MAPO, 10)

    async def main():
        client, snapshot = await watch(WIDE)
        assert [v["id"] for v in snapshot["vendors"]] == [on_shift.slug]
        # when the vendor goes off shift
        await database_sync_to_async(services.shift_end)(vendor=on_shift, actor=on_shift.user)
        # then the client is told to remove them
        assert await events(client) == [
            {"type": "remove", "id": on_shift.slug, "coarse": _coarse(*MAPO)}
        ]
        await hang_up(client)

    run(main)


@with_db
def test_the_last_pings_upsert_landing_after_the_shift_ended_does_not_bring_the_vendor_back(
    on_shift,
):
    ping_ago(on_shift, *MAPO, 10)
    last_ping, coarse = selectors.vendor_public_state(vendor_id=on_shift.pk)

    async def main():
        client, snapshot = await watch(WIDE)
        assert [v["id"] for v in snapshot["vendors"]] == [on_shift.slug]
        # when the vendor goes off shift: the map is told to remove them
        await database_sync_to_async(services.shift_end)(vendor=on_shift, actor=on_shift.user)
        assert await events(client) == [{"type": "remove", "id": on_shift.slug, "coarse": coarse}]
        # and the upsert of their last ping lands only after it (broadcasts run concurrently)
        await get_channel_layer().group_send(
            group_for(coarse), {"type": "map.upsert", "vendor": last_ping}
        )
        # then nothing puts them back on the map (they send no more pings to take them off)
        assert await client.receive_nothing(2 * settings.MAP_FLUSH_MS / 1000 + 0.3)
        await hang_up(client)

    run(main)


def test_a_remove_older_than_the_vendors_return_is_dropped():
    # Given a hub that has seen a vendor come back to a cell at t=10
    cell = h3.latlng_to_cell(*MAPO, settings.PUBLIC_CELL_RES)
    coarse = _coarse(*MAPO)
    hub = hub_module.MapHub(layer=None)
    sub = Subscription(hub, send_text=None)
    sub.due = 0.0  # a send is already scheduled: messages only queue
    hub.followers = {coarse: {sub}}
    start = timezone.now()
    back = selectors.public_payload(
        slug="cart",
        name="Cart",
        cell=cell,
        coarse=coarse,
        presence="moving",
        last_seen=start + timedelta(seconds=10),
        products=[],
    )
    # (stamped with the exact time of the change, as publish_payload sends it: the payload's
    # last_seen is rounded to the minute)
    at = (start + timedelta(seconds=10)).isoformat()
    hub.on_message({"type": "map.upsert", "vendor": back, "at": at})
    # When the remove of their leaving it at t=5 lands late
    left = (start + timedelta(seconds=5)).isoformat()
    hub.on_message({"type": "map.remove", "id": "cart", "coarse": coarse, "at": left})
    # Then the socket still shows them there
    events = json.loads(sub.take_batch())["events"]
    assert [e["type"] for e in events] == ["upsert"]
    assert hub.out_of_order == 1


# --- The map hub: one subscription per process, batches per socket -----------------------------


def _broadcasts_done(within: float = 5.0) -> None:
    """Wait until this process's broadcasts have gone out (set-up pings' own deltas go out before
    a hub follows the cell: nobody hears them)."""
    deadline = time.monotonic() + within
    while broadcaster._in_flight and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def _no_groups_left_from_other_tests():
    """Hubs of earlier tests (their event loops gone) stay group members in Redis until the
    group expiry, as a killed server process would; each test here counts members from zero."""
    if not settings.REDIS_URL:
        yield
        return
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = list(client.scan_iter(f"{prefix}:group:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
    yield


def _members(cell: str) -> set[str]:
    """The channels in a coarse cell's group, read straight from Redis (this test run's prefix)."""
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return {m.decode() for m in client.zrange(f"{prefix}:group:{group_for(cell)}", 0, -1)}
    finally:
        client.close()


async def _members_become(cell: str, expected: set[str], within: float = 5.0) -> set[str]:
    deadline = time.monotonic() + within
    while (members := _members(cell)) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return members


@with_db
def test_deltas_come_in_one_batch_coalesced_per_vendor(on_shift, settings):
    # given two vendors on the map and a client watching them, sent at most one message every 1.5 s
    settings.MAP_FLUSH_MS = 1500
    other = VendorFactory()
    services.shift_start(vendor=other, actor=other.user)
    ping_ago(on_shift, *MAPO, 60)
    ping_ago(other, *MAPO, 60)
    _broadcasts_done()
    home_cell = h3.latlng_to_cell(*MAPO, settings.PUBLIC_CELL_RES)
    east_cell = h3.latlng_to_cell(*EAST_500M, settings.PUBLIC_CELL_RES)

    def moves():
        with transaction.atomic():  # published together, on commit
            for vendor, point, ago in (
                (on_shift, EAST_500M, 30),
                (on_shift, MAPO, 0),
                (other, EAST_500M, 0),
            ):
                assert ping_ago(vendor, *point, ago).published

    async def main():
        client, snapshot = await watch(WIDE)
        assert len(snapshot["vendors"]) == 2
        # when, right after the snapshot, one vendor moves east and back, and the other east
        await database_sync_to_async(moves)()
        # then the client gets the last word about each vendor, batched: one message, or two
        # when the first delta finds the socket quiet (a busy machine delays the moves past
        # MAP_FLUSH_MS after the snapshot); the middle position of the first vendor is left out
        # unless it came alone in that first message
        last: dict[str, str] = {}
        messages = 0
        want = {on_shift.slug: home_cell, other.slug: east_cell}
        while last != want and messages < 3:
            for e in await events(client):
                last[e["vendor"]["id"]] = e["vendor"]["cell"]
            messages += 1
        assert last == want
        assert messages <= 2
        # and nothing more
        assert await client.receive_nothing(1.0)
        await hang_up(client)

    run(main)


@with_db
def test_sockets_on_a_cell_share_one_subscription_per_process(on_shift):
    ping_ago(on_shift, *MAPO, 60)
    coarse = _coarse(*MAPO)

    async def main():
        # given two map clients of this process watching the same cell
        first, snapshot = await watch(box(*MAPO))
        second, _snapshot = await watch(box(*MAPO))
        hub = current_hub()
        assert coarse in snapshot["cells"]
        # then the cell's group has one member: this process's hub, not a channel per socket
        for cell in snapshot["cells"]:
            assert _members(cell) == {hub.channel}
        # and a delta reaches both through it
        await database_sync_to_async(ping_ago)(on_shift, *EAST_500M)
        for client in (first, second):
            assert [e["vendor"]["id"] for e in await events(client)] == [on_shift.slug]
        # when one leaves, the other still follows the cell through the same membership
        await hang_up(first)
        assert await _members_become(coarse, {hub.channel}) == {hub.channel}
        # when the last one leaves, the hub leaves the group
        await hang_up(second)
        for cell in snapshot["cells"]:
            assert await _members_become(cell, set()) == set()
        assert hub.followers == {}

    run(main)


@with_db
def test_a_new_viewport_stops_the_old_cells(on_shift):
    ping_ago(on_shift, *MAPO, 60)
    old_coarse = _coarse(*MAPO)

    async def main():
        # given a client watching MAPO
        client, snapshot = await watch(box(*MAPO))
        assert [v["id"] for v in snapshot["vendors"]] == [on_shift.slug]
        hub = current_hub()
        # when it moves its viewport 8 km east
        await client.send_json_to({"type": "viewport", "bbox": box(*FAR_EAST)})
        moved = await client.receive_json_from(timeout=5)
        assert (moved["type"], moved["vendors"]) == ("snapshot", [])
        assert old_coarse not in moved["cells"]
        # then the hub no longer follows MAPO's cell and the client hears nothing from it
        assert await _members_become(old_coarse, set()) == set()
        assert _members(moved["cells"][0]) == {hub.channel}
        assert (await database_sync_to_async(ping_ago)(on_shift, *EAST_500M)).published
        assert await client.receive_nothing(0.6)
        await hang_up(client)

    run(main)


def _in_another_process(main):
    """Run `main` on an event loop of its own in another thread: another hub, as in another
    server process (its own channel in Redis)."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(async_to_sync(main))
    pool.shutdown(wait=False)
    return future


@with_db
def test_two_hubs_both_get_a_delta(on_shift):
    # given a vendor on the map, and map clients in two server processes watching it
    ping_ago(on_shift, *MAPO, 60)
    coarse = _coarse(*MAPO)
    ready = [threading.Event(), threading.Event()]

    def process(n: int):
        async def main():
            client, _snapshot = await watch(WIDE)
            channel = current_hub().channel
            ready[n].set()
            batch = await events(client, timeout=10)
            await hang_up(client)
            return channel, batch

        return main

    futures = [_in_another_process(process(n)) for n in range(2)]
    for flag in ready:
        assert flag.wait(15)
    channels = _members(coarse)
    assert len(channels) == 2
    # when the vendor moves (the ping is a third process)
    result = ping_ago(on_shift, *EAST_500M)
    # then both processes' clients get the delta, each through its own hub
    outcomes = [future.result(timeout=20) for future in futures]
    assert {channel for channel, _batch in outcomes} == channels
    for _channel, batch in outcomes:
        assert [(e["vendor"]["id"], e["vendor"]["cell"]) for e in batch] == [
            (on_shift.slug, result.public_cell)
        ]


@with_db
def test_a_hub_survives_a_lost_redis_connection_and_rejoins(on_shift):
    ping_ago(on_shift, *MAPO, 60)

    async def main():
        client, snapshot = await watch(WIDE)
        hub = current_hub()
        # when Redis forgets everything (a restart: groups gone) and the hub's connection drops
        await hub.layer.flush()
        for cell in snapshot["cells"]:
            assert _members(cell) == set()
        # then the hub notices, joins its groups again, and deltas flow as before
        for cell in snapshot["cells"]:
            assert await _members_become(cell, {hub.channel}, within=10) == {hub.channel}
        assert (await database_sync_to_async(ping_ago)(on_shift, *EAST_500M)).published
        assert [e["vendor"]["id"] for e in await events(client)] == [on_shift.slug]
        await hang_up(client)

    run(main)


@with_db
def test_a_slow_socket_does_not_hold_up_the_others(on_shift):
    ping_ago(on_shift, *MAPO, 60)

    async def main():
        # given a socket that never finishes a send (its writes block) on the same hub as a client
        client, snapshot = await watch(WIDE)
        hub = current_hub()
        stuck = asyncio.Event()
        sent: list[str] = []

        async def never_done(text: str) -> None:
            sent.append(text)
            await stuck.wait()

        slow = Subscription(hub, never_done)
        async with slow.viewport(snapshot["cells"]):
            pass
        # when the vendor moves twice
        await database_sync_to_async(ping_ago)(on_shift, *EAST_500M, 30)
        assert [e["vendor"]["id"] for e in await events(client)] == [on_shift.slug]
        await database_sync_to_async(ping_ago)(on_shift, *MAPO, 0)
        # then the client gets each move while the slow socket is stuck in its first send
        [back] = await events(client)
        assert back["vendor"]["cell"] == h3.latlng_to_cell(*MAPO, settings.PUBLIC_CELL_RES)
        assert len(sent) == 1
        # and what it missed waits for it, coalesced: the vendor's last position only
        assert list(slow.pending) == [on_shift.slug]
        stuck.set()
        await slow.close()
        await hang_up(client)

    run(main)


@with_db
def test_the_in_memory_layer_of_the_embedded_demo_delivers_batches(on_shift, settings):
    # given the embedded default: no Redis, the in-memory channel layer in the server process
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    ping_ago(on_shift, *MAPO, 60)

    async def main():
        client, _snapshot = await watch(WIDE)
        assert isinstance(current_hub().layer, InMemoryChannelLayer)
        # when the vendor moves (services publish from a worker thread of this process)
        result = await database_sync_to_async(ping_ago)(on_shift, *EAST_500M)
        # then the client gets the delta in a batch
        [upsert] = await events(client)
        assert upsert["vendor"]["cell"] == result.public_cell
        await hang_up(client)

    run(main)


@with_db
def test_an_upsert_that_lands_late_does_not_move_the_vendor_back(on_shift):
    # given a hub following MAPO's cell, and two upserts of a vendor, one newer than the other
    ping_ago(on_shift, *MAPO, 60)
    _broadcasts_done()
    coarse = _coarse(*MAPO)
    sent_at = timezone.now()
    older, newer = (
        selectors.public_payload(
            slug=on_shift.slug,
            name=on_shift.name,
            cell=h3.latlng_to_cell(*point, settings.PUBLIC_CELL_RES),
            coarse=coarse,
            presence="moving",
            last_seen=timezone.now() - timedelta(seconds=ago),
            products=[],
        )
        for point, ago in ((MAPO, 10), (EAST_500M, 5))
    )

    async def main():
        hub = await map_hub()
        got: list[str] = []

        async def send_text(text: str) -> None:
            got.append(text)

        sub = Subscription(hub, send_text)
        async with sub.viewport([coarse]):
            pass
        # when the newer lands first and the older after it (broadcasts run concurrently)
        layer = get_channel_layer()
        # (each with the exact time of its change, as publish_payload sends it: the payload's
        # last_seen is rounded to the minute, the same for both)
        for payload, ago in ((newer, 5), (older, 10)):
            at = (sent_at - timedelta(seconds=ago)).isoformat()
            message = {"type": "map.upsert", "vendor": payload, "at": at}
            await layer.group_send(group_for(coarse), message)
        while not got:
            await asyncio.sleep(0.05)
        await asyncio.sleep(2 * settings.MAP_FLUSH_MS / 1000)
        # then the socket is told the newer position only
        sent = [e["vendor"]["cell"] for text in got for e in json.loads(text)["events"]]
        assert sent == [newer["cell"]]
        assert hub.out_of_order == 1
        await sub.close()

    run(main)


def test_the_hub_of_a_stopped_loop_is_dropped():
    hubs = []

    async def main():
        hubs.append(await map_hub())
        assert await map_hub() is hubs[-1]  # one per loop

    # when two event loops in turn (as two tests do) ask for their hub
    run(main)
    run(main)
    # then each got its own, and the first went with its loop
    first, second = hubs
    assert first is not second
    assert first.dead and first.channel != second.channel
    assert first not in hub_module._hubs.values()


def test_pending_deltas_coalesce_as_the_map_applies_them():
    def upsert(vendor: str, coarse: str, n: int) -> tuple:
        return ("upsert", vendor, coarse, json.dumps({"type": "upsert", "n": n}))

    def remove(vendor: str, coarse: str, n: int) -> tuple:
        return ("remove", vendor, coarse, json.dumps({"type": "remove", "n": n}))

    cases = {
        # the last upsert wins
        "moved twice": ([upsert("a", "A", 1), upsert("a", "A", 2)], [2]),
        # a remove after an upsert in the same cell: gone
        "went offline": ([upsert("a", "A", 1), remove("a", "A", 2)], [2]),
        # left A for B: the upsert in B says it all
        "crossed cells": ([remove("a", "A", 1), upsert("a", "B", 2)], [2]),
        # a late remove for the cell it left is moot after its upsert elsewhere
        "late remove": ([upsert("a", "B", 1), remove("a", "A", 2)], [1]),
        # removed from two cells the socket follows: both, the client knows which applies
        "two removes": ([remove("a", "A", 1), remove("a", "B", 2), remove("a", "A", 3)], [1, 2]),
        # vendors do not mix, and the batch is in the order of the last word about each
        "two vendors": ([upsert("a", "A", 1), upsert("b", "A", 2), upsert("a", "A", 3)], [2, 3]),
    }
    for name, (deltas, expected) in cases.items():
        sub = Subscription(hub=None, send_text=None)
        for seq, delta in enumerate(deltas):
            sub.add(seq, *delta)
        batch = json.loads(sub.take_batch())
        assert batch["type"] == "batch", name
        assert [e["n"] for e in batch["events"]] == expected, name
        assert sub.pending == {}, name


VIEWPORT = json.dumps({"type": "viewport", "bbox": box(*MAPO)})
BAD_MAP_MESSAGES = {
    "not json": "{type: viewport",
    "not an object": "[1, 2, 3]",
    "no type": json.dumps({"bbox": box(*MAPO)}),
    "type not a string": json.dumps({"type": 7, "bbox": box(*MAPO)}),
    "wrong type": json.dumps({"type": "ping", "bbox": box(*MAPO)}),
    "no bbox": json.dumps({"type": "viewport"}),
    "bbox not a list": json.dumps({"type": "viewport", "bbox": "37,126,38,127"}),
    "bbox of 3": json.dumps({"type": "viewport", "bbox": box(*MAPO)[:3]}),
    "bbox of 5": json.dumps({"type": "viewport", "bbox": [*box(*MAPO), 1]}),
    "bbox of strings": json.dumps({"type": "viewport", "bbox": [str(x) for x in box(*MAPO)]}),
    "bbox of booleans": json.dumps({"type": "viewport", "bbox": [True, True, True, True]}),
    "bbox with null": json.dumps({"type": "viewport", "bbox": [None, 126.9, 37.6, 127.0]}),
    "south above north": json.dumps({"type": "viewport", "bbox": [37.6, 126.9, 37.5, 127.0]}),
    "west east of east": json.dumps({"type": "viewport", "bbox": [37.5, 127.0, 37.6, 126.9]}),
    "latitude 91": json.dumps({"type": "viewport", "bbox": [37.5, 126.9, 91, 127.0]}),
    "NaN": '{"type": "viewport", "bbox": [NaN, 126.9, 37.6, 127.0]}',
    "Infinity": '{"type": "viewport", "bbox": [37.5, 126.9, Infinity, 127.0]}',
    "an integer with 400 digits": '{"type": "viewport", "bbox": [37, 126, 1'
    + "0" * 400
    + ", 127]}",
    "over 2048 characters": VIEWPORT[:-1] + ', "pad": "' + "x" * 2048 + '"}',
    "over 2048 bytes in fewer characters": VIEWPORT[:-1] + ', "pad": "' + "가" * 700 + '"}',
}


@pytest.mark.parametrize("text", BAD_MAP_MESSAGES.values(), ids=BAD_MAP_MESSAGES.keys())
def test_bad_map_messages_close_with_4400(text):
    async def main():
        client = communicator(MAP)
        assert (await client.connect(timeout=5))[0]
        # when the client sends a bad message; then the server closes the socket with 4400
        await client.send_to(text_data=text)
        assert await closed_with(client) == 4400

    run(main)


def test_a_binary_frame_closes_with_4400():
    async def main():
        client = communicator(MAP)
        assert (await client.connect(timeout=5))[0]
        await client.send_to(bytes_data=VIEWPORT.encode())
        assert await closed_with(client) == 4400

    run(main)


@with_db
def test_a_good_message_just_under_the_size_limit_is_fine():
    text = VIEWPORT[:-1] + ', "pad": "' + "x" * (2048 - len(VIEWPORT) - 11) + '"}'
    assert len(text.encode()) == 2048

    async def main():
        client = communicator(MAP)
        assert (await client.connect(timeout=5))[0]
        await client.send_to(text_data=text)
        assert (await client.receive_json_from(timeout=5))["type"] == "snapshot"
        await hang_up(client)

    run(main)


HUGE = [30.0, 120.0, 40.0, 135.0]  # most of Korea and the sea around it


def test_sending_too_fast_closes_with_4429():
    async def main():
        client = communicator(MAP)
        assert (await client.connect(timeout=5))[0]
        # when a client fires 40 viewports at once (the bucket holds 10, refills 2 a second)
        for _ in range(40):
            await client.send_json_to({"type": "viewport", "bbox": HUGE})
        answered = 0
        while True:
            out = await client.receive_output(timeout=5)
            if out["type"] == "websocket.close":
                break
            answered += 1
        await hang_up(client)
        # then it is answered about ten times and closed with 4429
        assert out.get("code") == 4429
        assert 10 <= answered < 20

    run(main)


@with_db
def test_a_huge_viewport_is_asked_to_zoom_in_and_follows_nothing(on_shift):
    ping_ago(on_shift, *MAPO, 60)

    async def main():
        # given a client following MAPO's area
        client, snapshot = await watch(WIDE)
        assert snapshot["vendors"]
        # when it zooms out to a whole country; then it is asked to zoom in
        await client.send_json_to({"type": "viewport", "bbox": HUGE})
        assert await client.receive_json_from(timeout=5) == {
            "type": "zoom_in",
            "max_groups": settings.MAP_MAX_GROUPS,
        }
        # and it no longer gets deltas for the area it left
        result = await database_sync_to_async(ping_ago)(on_shift, *EAST_500M)
        assert result.published
        assert await client.receive_nothing(0.5)
        await hang_up(client)

    run(main)


# --- Vendor socket ------------------------------------------------------------------------------


def test_anonymous_phone_is_closed_with_4401():
    async def main():
        phone = communicator(VENDOR)
        code = await refusal(phone)
        await hang_up(phone)
        assert code == 4401

    run(main)


@with_db
def test_users_who_may_not_sell_are_closed_with_4403(customer, staff):
    # given a customer, staff (not a vendor), and vendors who are pending, suspended, rejected
    users = {
        "customer": customer,
        "staff": staff,
        **{
            status: VendorFactory(status=status).user
            for status in (Vendor.Status.PENDING, Vendor.Status.SUSPENDED, Vendor.Status.REJECTED)
        },
    }
    cookies = {who: session_cookie(user) for who, user in users.items()}

    async def main():
        codes = {}
        for who, cookie in cookies.items():
            # when their browser opens the vendor socket with their session
            phone = communicator(VENDOR, cookie)
            codes[who] = await refusal(phone)
            await hang_up(phone)
        # then each is refused as not allowed (accepted, then closed: a browser gets the code)
        assert codes == dict.fromkeys(users, 4403)

    run(main)


@with_db
def test_vendor_pings_are_acked_or_rejected_and_reach_the_map(on_shift):
    cookie = session_cookie(on_shift.user)

    async def main():
        # given a map client watching MAPO (one process) and the vendor's phone (another)
        watcher, snapshot = await watch(WIDE)
        assert snapshot["vendors"] == []
        phone = communicator(VENDOR, cookie)
        assert (await phone.connect(timeout=5))[0]
        # when the phone sends a good ping; then it is acked with its public cell
        ts = now_ms(2)
        await phone.send_json_to(
            {"type": "ping", "lat": MAPO[0], "lng": MAPO[1], "accuracy": 8, "ts": ts}
        )
        cell = h3.latlng_to_cell(*MAPO, settings.PUBLIC_CELL_RES)
        assert await phone.receive_json_from(timeout=5) == {"type": "ack", "ts": ts, "cell": cell}
        # and the map client sees the vendor appear
        [upsert] = await events(watcher)
        assert upsert["type"] == "upsert"
        assert (upsert["vendor"]["id"], upsert["vendor"]["cell"]) == (on_shift.slug, cell)
        # when it sends bad ones; then each is rejected with a reason and a message
        bad = [
            ({"lat": 91, "lng": MAPO[1], "accuracy": 8, "ts": now_ms()}, "bad_coordinates"),
            ({"lat": MAPO[0], "lng": MAPO[1], "accuracy": 8, "ts": "yesterday"}, "bad_timestamp"),
            ({"lat": MAPO[0], "lng": MAPO[1], "accuracy": 8}, "bad_timestamp"),
            ({"lat": MAPO[0], "lng": MAPO[1], "accuracy": 8, "ts": ts}, "duplicate"),
            ({"lat": MAPO[0], "lng": MAPO[1], "accuracy": 900, "ts": now_ms()}, "bad_accuracy"),
        ]
        for body, reason in bad:
            await phone.send_json_to({"type": "ping", **body})
            answer = await phone.receive_json_from(timeout=5)
            assert (answer["type"], answer["reason"]) == ("rejected", reason), answer
            assert answer["message"]
            assert answer["ts"] == body.get("ts")
        # and nothing of them is stored or sent to the map
        assert await database_sync_to_async(Ping.objects.count)() == 1
        assert await watcher.receive_nothing(0.3)
        # when the phone sends something that is not a ping; then it is closed with 4400
        await phone.send_json_to({"type": "viewport", "bbox": WIDE})
        assert await closed_with(phone) == 4400
        await hang_up(watcher)

    run(main)


@with_db
def test_a_socket_closed_while_its_ping_is_in_the_batcher_ends_without_an_error(on_shift):
    """Found by bench/lunch_rush.py: uvicorn closed vendor sockets (keepalive timeout) while their
    pings waited in the ingest batcher; the ack sent after that raised out of the consumer
    ("Exception in ASGI application", 111 tracebacks in one run). The ping is recorded all the
    same, and the consumer ends on the disconnect that follows, without an error."""
    from o2o.asgi import application
    from tests.tracking.ws import ORIGIN, WebsocketCommunicator

    cookie = session_cookie(on_shift.user)
    closed = threading.Event()

    async def server(scope, receive, send):
        async def send_until_closed(message):
            # What uvicorn does with a send after it closed the socket itself.
            if closed.is_set() and message["type"] == "websocket.send":
                raise RuntimeError(
                    "Unexpected ASGI message 'websocket.send', after sending 'websocket.close'."
                )
            await send(message)

        await application(scope, receive, send_until_closed)

    async def main():
        phone = WebsocketCommunicator(server, VENDOR, headers=[ORIGIN, cookie])
        assert (await phone.connect(timeout=5))[0]
        # given the server gave up on the socket (its keepalive ping went unanswered)
        closed.set()
        # when a ping it had already read is answered
        await phone.send_json_to(
            {"type": "ping", "lat": MAPO[0], "lng": MAPO[1], "accuracy": 8, "ts": now_ms(1)}
        )
        for _ in range(50):
            if await database_sync_to_async(Ping.objects.count)():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)  # the answer that has nowhere to go
        # then the ping is recorded, and the consumer ends cleanly on the disconnect
        assert await database_sync_to_async(Ping.objects.count)() == 1
        await phone.send_input({"type": "websocket.disconnect", "code": 1011})
        await phone.wait(timeout=10)


@with_db
def test_pings_do_not_hop_to_the_sync_thread_nor_hold_a_layer_channel(on_shift, monkeypatch):
    """The phone's pings are dispatched on the event loop: channels' dispatch would run
    close_old_connections in the one sync thread (where the batcher records pings) before each
    one; and the phone takes no channel on the layer (it joins no group)."""
    import channels.consumer

    hops = []
    real_hop = channels.consumer.aclose_old_connections

    async def counted_hop():
        hops.append(1)
        await real_hop()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted_hop)
    layer = get_channel_layer()
    channels_made = []
    real_new_channel = layer.new_channel

    async def counted_new_channel(*args, **kwargs):
        channels_made.append(args)
        return await real_new_channel(*args, **kwargs)

    monkeypatch.setattr(layer, "new_channel", counted_new_channel)
    cookie = session_cookie(on_shift.user)

    async def main():
        phone = communicator(VENDOR, cookie)
        assert (await phone.connect(timeout=5))[0]
        at_connect = len(hops)
        for k in range(3):
            ts = now_ms(30 - 5 * k)
            lat = MAPO[0] + 0.0001 * k
            await phone.send_json_to(
                {"type": "ping", "lat": lat, "lng": MAPO[1], "accuracy": 8, "ts": ts}
            )
            answer = await phone.receive_json_from(timeout=5)
            assert (answer["type"], answer["ts"]) == ("ack", ts), answer
        # then none of the three pings hopped to the sync thread before its handler
        assert len(hops) == at_connect
        await hang_up(phone)

    run(main)
    assert channels_made == []


@with_db
def test_a_phone_is_read_while_its_ping_waits_for_a_slow_batch(on_shift, monkeypatch):
    """uvicorn reads a socket's next frame (and its keepalive pong) only when the app asks for
    it: a ping waiting for its batch must not stop the socket being read."""
    from tracking import ingest

    release = asyncio.Event()
    real_submit = ingest.submit

    async def slow_submit(ping):
        await release.wait()  # the ingest is behind
        return await real_submit(ping)

    monkeypatch.setattr(ingest, "submit", slow_submit)
    cookie = session_cookie(on_shift.user)

    async def main():
        phone = communicator(VENDOR, cookie)
        assert (await phone.connect(timeout=5))[0]
        # given a ping waiting for its batch
        ts = now_ms(10)
        await phone.send_json_to(
            {"type": "ping", "lat": MAPO[0], "lng": MAPO[1], "accuracy": 8, "ts": ts}
        )
        # when a second ping follows; then it is read (and waits too): no answer yet
        await phone.send_json_to(
            {"type": "ping", "lat": MAPO[0], "lng": MAPO[1], "accuracy": 8, "ts": now_ms(5)}
        )
        assert await phone.receive_nothing(0.3)
        # and when the batch goes through, both are answered
        release.set()
        answers = [await phone.receive_json_from(timeout=5) for _ in range(2)]
        assert {a["type"] for a in answers} == {"ack"}, answers
        assert ts in {a["ts"] for a in answers}
        # when another waits and the phone sends something that is not a ping, then it is
        # closed at once with 4400, the ping still pending
        release.clear()
        await phone.send_json_to(
            {"type": "ping", "lat": MAPO[0], "lng": MAPO[1], "accuracy": 8, "ts": now_ms()}
        )
        await phone.send_json_to({"type": "viewport", "bbox": WIDE})
        assert await closed_with(phone) == 4400
        release.set()

    run(main)


def test_an_answer_to_a_phone_gone_meanwhile_is_dropped(monkeypatch):
    """uvicorn raises ClientDisconnected (an OSError) for an answer to a phone that went away
    while its ping was recorded: dropped, not an unhandled task exception."""
    from uvicorn.protocols.utils import ClientDisconnected

    from tracking import ingest
    from tracking.consumers import VendorLocationConsumer

    async def recorded(ping):
        return services.PingResult(accepted=True, public_cell="89283082803ffff")

    async def gone(content, close=False):
        raise ClientDisconnected

    monkeypatch.setattr(ingest, "submit", recorded)
    consumer = VendorLocationConsumer()
    consumer.vendor_id = 1
    monkeypatch.setattr(consumer, "send_json", gone)
    async_to_sync(consumer._answer_ping)({"type": "ping", "ts": 1})


@with_db
def test_answers_to_odd_timestamps_are_strict_json(on_shift):
    cookie = session_cookie(on_shift.user)

    def strict(text: str) -> dict:
        def refuse(constant):
            raise AssertionError(f"{constant} is not JSON: a browser's JSON.parse fails on it")

        return json.loads(text, parse_constant=refuse)

    async def main():
        phone = communicator(VENDOR, cookie)
        assert (await phone.connect(timeout=5))[0]
        for ts in ("NaN", "Infinity", "-Infinity", "1" + "0" * 400, "true", "[1]"):
            text = (
                f'{{"type": "ping", "lat": {MAPO[0]}, "lng": {MAPO[1]}, "accuracy": 8, "ts": {ts}}}'
            )
            await phone.send_to(text_data=text)
            answer = strict((await phone.receive_output(timeout=5))["text"])
            assert (answer["type"], answer["reason"]) == ("rejected", "bad_timestamp"), ts
        await hang_up(phone)

    run(main)


@with_db
def test_the_sweep_tells_map_clients_who_went_stale_and_offline(on_shift):
    ping_ago(on_shift, *MAPO, 0)

    async def main():
        client, snapshot = await watch(WIDE)
        assert [v["presence"] for v in snapshot["vendors"]] == ["moving"]
        later = timezone.now()
        # when the vendor has been silent for over two minutes; then they are shown as stale
        moved = await database_sync_to_async(services.presence_sweep)(
            now=later + timedelta(seconds=150)
        )
        assert moved == {"stale": 1, "offline": 0}
        [upsert] = await events(client)
        assert (upsert["type"], upsert["vendor"]["presence"]) == ("upsert", "stale")
        # when over ten minutes; then they are removed
        moved = await database_sync_to_async(services.presence_sweep)(
            now=later + timedelta(seconds=700)
        )
        assert moved == {"stale": 0, "offline": 1}
        assert await events(client) == [
            {"type": "remove", "id": on_shift.slug, "coarse": _coarse(*MAPO)}
        ]
        await hang_up(client)

    run(main)


@with_db
def test_an_approved_vendor_off_shift_connects_but_pings_are_refused(vendor):
    cookie = session_cookie(vendor.user)

    async def main():
        phone = communicator(VENDOR, cookie)
        assert (await phone.connect(timeout=5))[0]
        await phone.send_json_to(
            {"type": "ping", "lat": MAPO[0], "lng": MAPO[1], "accuracy": 8, "ts": now_ms()}
        )
        answer = await phone.receive_json_from(timeout=5)
        assert (answer["type"], answer["reason"]) == ("rejected", "off_shift")
        await hang_up(phone)

    run(main)
    assert not selectors.positions_live().exists()
