"""The vendor phones beside the lunch rush (bench/lunch_rush.py): N vendor sockets on
/ws/vendor/location/ (each its session cookie and the Origin header a browser sends) pinging every
5 s, and a few map sockets on /ws/map/ that count the deltas they are sent.

Not a benchmark on its own (its name starts with "_", so `make bench` skips it): lunch_rush.py
runs it as its own process, pinned to the load generator's core, beside locust (gevent; this is
asyncio, so the two never share a process).

    python bench/_pings.py CONFIG.json STATUS.json RESULT.json

CONFIG: {"ws": "ws://127.0.0.1:PORT", "origin": "http://127.0.0.1:PORT", "every_s": 5.0,
         "vendors": [[session_key, slug, [[lat, lng, cell, coarse] x 3]], ...],
         "maps": [[south, west, north, east], ...]}
Each vendor walks round the three public cells that meet at one vertex (bench/map_latency.py's
vendor_sides), starting from the second: the seed put it in the first, so every ping changes its
public cell, and (the privacy delay off, bench/_stack.py) every ping is published to the map.
STATUS is rewritten while it runs ({"phase", "vendors_open", "maps_ready", "acked", ...}); on
SIGTERM it stops pinging, waits for the last acks (DRAIN_S) and deltas (until the map sockets hear
nothing for QUIET_S, at most LATE_CAP_S: a late delta is not a lost one), closes everything and
writes RESULT:
pings sent / acked / rejected / errors / unanswered, ack latency, the pinging window, and the
map sockets' expected against delivered deltas (not delivered = expected - delivered, counted per
socket, vendor and cell: a ping into a cell is expected on every map socket whose snapshot's
coarse cells hold that cell's coarse parent; under a backlog the hub coalesces a cart's deltas
within one flush, so a superseded delta counts here though nothing is wrong), and the lost deltas:
(map socket, cart) pairs whose final position on the map differs from the cart's last acked cell.
"""

import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
from collections import Counter

DRAIN_S = 3.0
QUIET_S = 5.0
LATE_CAP_S = 90.0
OPEN_AT_ONCE = 50  # vendor sockets opening at the same time


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pct(p: float) -> float:
        return round(
            ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))], 1
        )

    return {"n": len(ordered), "p50": pct(50), "p95": pct(95), "p99": pct(99),
            "max": round(ordered[-1], 1)}  # fmt: skip


class State:
    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.ack_ms: list[float] = []
        # (slug, cell, coarse) of every acked ping whose ack says the cart is now in that cell
        self.published: Counter = Counter()
        self.received: Counter = Counter()  # (map socket, slug, cell) -> upserts
        self.last_acked: dict[str, tuple[str, str]] = {}  # slug -> (cell, coarse) of its last ack
        # (map socket, slug) -> (cell, coarse) the map shows it in
        self.last_shown: dict[tuple[int, str], tuple[str, str]] = {}
        self.map_cells: dict[int, set[str]] = {}
        self.map_errors: list[str] = []
        self.vendor_errors: Counter = Counter()
        self.first_ping = 0.0
        self.last_ping = 0.0
        self.stop = asyncio.Event()
        self.pinging = asyncio.Event()


async def vendor_socket(cfg: dict, st: State, i: int, vendor: list, gate: asyncio.Semaphore):
    from websockets.asyncio.client import connect

    session_key, slug, sides = vendor
    uri = f"{cfg['ws']}/ws/vendor/location/"
    try:
        async with gate:
            ws = await connect(
                uri,
                origin=cfg["origin"],
                additional_headers={"Cookie": f"sessionid={session_key}"},
                proxy=None,
                open_timeout=60,
                ping_interval=None,
                compression=None,
            )
    except Exception as exc:  # noqa: BLE001 - counted, never hidden
        st.vendor_errors[f"open {type(exc).__name__}"] += 1
        return
    st.counts["vendors_open"] += 1
    sent: dict[int, tuple[float, str, str]] = {}  # ts -> (send time, cell, coarse)

    async def reader():
        async for raw in ws:
            msg = json.loads(raw)
            entry = sent.pop(msg.get("ts"), None)
            kind = msg.get("type")
            if kind == "ack" and entry is not None:
                st.counts["acked"] += 1
                st.ack_ms.append((time.monotonic() - entry[0]) * 1000)
                if msg.get("cell") == entry[1]:
                    st.published[(slug, entry[1], entry[2])] += 1
                    st.last_acked[slug] = (entry[1], entry[2])
                else:
                    st.counts["acked_not_moved"] += 1
            else:
                st.counts[kind or "unknown"] += 1

    reading = asyncio.create_task(reader())
    try:
        await st.pinging.wait()
        every = cfg["every_s"]
        n = len(cfg["vendors"])
        await asyncio.sleep(every * i / n)  # spread over the period: a steady rate
        k = 1
        while not st.stop.is_set() and not reading.done():
            lat, lng, cell, coarse = sides[k % len(sides)]
            ts = int(time.time() * 1000)
            while ts in sent:
                ts += 1
            sent[ts] = (time.monotonic(), cell, coarse)
            body = {"type": "ping", "lat": lat, "lng": lng, "accuracy": 10, "ts": ts}
            await ws.send(json.dumps(body))
            st.counts["sent"] += 1
            st.last_ping = time.monotonic()
            k += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(st.stop.wait(), timeout=every)
        await asyncio.sleep(DRAIN_S)  # the last acks
        st.counts["unanswered"] += len(sent)
    except Exception as exc:  # noqa: BLE001
        st.vendor_errors[f"{type(exc).__name__}"] += 1
    finally:
        reading.cancel()
        await ws.close()
    if reading.done() and not reading.cancelled() and reading.exception() is not None:
        st.vendor_errors[f"closed by the server: {ws.close_code} {ws.close_reason}"[:80]] += 1


async def map_socket(cfg: dict, st: State, k: int, bbox: list, ready: asyncio.Event):
    from websockets.asyncio.client import connect

    try:
        async with connect(
            f"{cfg['ws']}/ws/map/",
            origin=cfg["origin"],
            proxy=None,
            open_timeout=60,
            max_size=16 * 2**20,
            ping_interval=None,
            compression=None,
        ) as ws:
            await ws.send(json.dumps({"type": "viewport", "bbox": bbox}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("type") in ("snapshot", "zoom_in"):
                    break
            st.map_cells[k] = set(msg.get("cells") or [])
            ready.set()
            received = st.received
            heard = time.monotonic()
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                except TimeoutError:
                    # After the pings stop: until the server has been quiet for QUIET_S (a
                    # server behind on its fan-out still delivers late: late is not lost), at
                    # most LATE_CAP_S.
                    now = time.monotonic()
                    drained = st.stop.is_set() and now - st.last_ping > DRAIN_S
                    if drained and (now - heard > QUIET_S or now - st.last_ping > LATE_CAP_S):
                        return
                    continue
                heard = time.monotonic()
                msg = json.loads(raw)
                for event in msg["events"] if msg.get("type") == "batch" else (msg,):
                    if event.get("type") == "upsert":
                        v = event["vendor"]
                        slug, cell = str(v.get("id")), v.get("cell") or ""
                        received[(k, slug, cell)] += 1
                        st.last_shown[(k, slug)] = (cell, v.get("coarse") or "")
                    elif event.get("type") == "remove":  # off the map, if still in that group
                        key = (k, str(event.get("id")))
                        if st.last_shown.get(key, ("", ""))[1] == event.get("coarse"):
                            del st.last_shown[key]
    except Exception as exc:  # noqa: BLE001
        st.map_errors.append(f"map {k}: {type(exc).__name__}: {exc}"[:200])
        ready.set()


def write(path: str, data: dict) -> None:
    tmp = path + ".part"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


async def run(cfg: dict, status_path: str) -> dict:
    st = State()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, st.stop.set)
    loop.add_signal_handler(signal.SIGINT, st.stop.set)
    t0 = time.monotonic()

    def status(phase: str) -> None:
        write(status_path, {"phase": phase, "t": round(time.monotonic() - t0, 1), **st.counts,
                            "maps_ready": len(st.map_cells), "vendor_errors": dict(st.vendor_errors),
                            "map_errors": st.map_errors[:5]})  # fmt: skip

    readies = [asyncio.Event() for _ in cfg["maps"]]
    maps = [
        asyncio.create_task(map_socket(cfg, st, k, bbox, readies[k]))
        for k, bbox in enumerate(cfg["maps"])
    ]
    for ready in readies:
        await ready.wait()
    gate = asyncio.Semaphore(OPEN_AT_ONCE)
    vendors = [
        asyncio.create_task(vendor_socket(cfg, st, i, v, gate))
        for i, v in enumerate(cfg["vendors"])
    ]
    while st.counts["vendors_open"] + sum(st.vendor_errors.values()) < len(vendors):
        status("opening")
        await asyncio.sleep(0.5)
        if st.stop.is_set():
            break
    st.pinging.set()
    st.first_ping = time.monotonic()
    while not st.stop.is_set():
        status("pinging")
        await asyncio.sleep(1.0)
    status("draining")
    window = max(1e-9, st.last_ping - st.first_ping)
    await asyncio.gather(*vendors, return_exceptions=True)
    await asyncio.wait_for(asyncio.gather(*maps, return_exceptions=True), timeout=LATE_CAP_S + 30)
    # Expected deltas: every published ping on every map socket subscribed to its coarse cell.
    expected = delivered = 0
    for k, cells in st.map_cells.items():
        for (slug, cell, coarse), n in st.published.items():
            if coarse in cells:
                got = st.received.get((k, slug, cell), 0)
                expected += n
                delivered += min(n, got)
    # What each map shows at the end: every cart whose last acked cell is in a socket's cells
    # must be shown there, in that cell. A delta superseded by a later one of the same cart in
    # the same flush (the hub coalesces per cart) is not lost; a wrong final position is.
    wrong_at_end = sum(
        1
        for k, cells in st.map_cells.items()
        for slug, (cell, coarse) in st.last_acked.items()
        if coarse in cells and st.last_shown.get((k, slug), ("", ""))[0] != cell
    )
    counts = dict(st.counts)
    return {
        "vendor_sockets": len(cfg["vendors"]),
        "vendor_sockets_open": counts.get("vendors_open", 0),
        "map_sockets": len(cfg["maps"]),
        "map_sockets_ready": len(st.map_cells),
        "pings_sent": counts.get("sent", 0),
        "pings_acked": counts.get("acked", 0),
        "pings_acked_not_moved": counts.get("acked_not_moved", 0),
        "pings_rejected": counts.get("rejected", 0),
        "pings_error": counts.get("error", 0),
        "pings_unanswered": counts.get("unanswered", 0),
        "pinging_s": round(window, 1),
        "pings_per_s": round(counts.get("sent", 0) / window, 1),
        "ack_ms": percentiles(st.ack_ms),
        "deltas_expected": expected,
        "deltas_delivered": delivered,
        "deltas_not_delivered": expected - delivered,
        "deltas_lost": wrong_at_end,
        "carts_shown_by_map_sockets_at_end": sum(
            1
            for k, cells in st.map_cells.items()
            for _slug, (_cell, coarse) in st.last_acked.items()
            if coarse in cells
        ),
        "upserts_received": sum(st.received.values()),
        "vendor_errors": dict(st.vendor_errors),
        "map_errors": st.map_errors[:5],
    }


def main() -> None:
    cfg_path, status_path, result_path = sys.argv[1:4]
    with open(cfg_path) as fh:
        cfg = json.load(fh)
    result = asyncio.run(run(cfg, status_path))
    write(result_path, result)


if __name__ == "__main__":
    main()
