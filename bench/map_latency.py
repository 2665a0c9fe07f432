"""Benchmark: ping-to-map latency on the real stack (PostgreSQL, channels-redis, uvicorn).
Target: p95 < 300 ms from just before ping_record to the upsert arriving at a map socket (in the
batch message that carries it: the server sends each socket its deltas every MAP_FLUSH_MS).

    .venv/bin/python bench/map_latency.py [--quick] [--drivers N] [--client-procs N]
                                          [--server serve|uvicorn2]
                                          [--fix socket-timeout|pubsub|no-db-hop|overlap|all]

Own database `bench_o2o_map` (dropped and recreated), Redis db 14 (flushed). Seeds 1,000 approved
vendors on shift around Mapo-gu (quick: 200), starts the ASGI server on 127.0.0.1:8765
(`manage.py serve`, or `uvicorn --workers 2`), opens 200 map sockets (quick: 50), each with a
random ~2 km x 2 km viewport, spread over --client-procs processes (default 2; each its own event
loop, so the bench's client does not become the bottleneck it measures), and waits for their
snapshots. Then 1-4 driver processes (--drivers, default 2; each its own Django and DB
connection) ping for every vendor every 5 s for 60 s (quick: 20 s) as the vendor sockets' ingest
batcher does (--ingest batch: the pings that arrive within 25 ms, at most 200, in one
services.ping_record_many; --ingest single: services.ping_record one by one): the broadcast goes
through channels-redis to the server's map sockets. Each vendor stands at a vertex where three
public H3 cells meet and walks round them, ~20 m inside each (~35 m a ping: a cart), so every ping
changes its public cell and is broadcast. The server runs with the public cell's privacy delay off
(PUBLIC_CELL_MARGIN_M, PUBLIC_CELL_HOLD_S, PUBLIC_CELL_DELAY_MIN_S/MAX_S = 0, set by
bench/_stack.py): this measures fan-out latency, not privacy; with the defaults a crossing is shown
only 45-120 s later, on purpose. The per-address cap on map sockets (MAP_SOCKETS_PER_ADDRESS) is
lifted above --clients, all of which come from 127.0.0.1.

The driver passes `now` = the wall-clock time the batch opened (its first ping; single: just
before ping_record), so the batching delay is counted. The public payload's last_seen is rounded
(PUBLIC_TIME_STEP_S), so it cannot tell pings apart: a map client records each upsert by (socket,
vendor, cell) with its receive time, and after the run each is matched to the latest ping of that
vendor into that cell published before the frame arrived and not yet matched on that socket, if
it is less than one cycle (3 pings, 15 s) old: a vendor's pings into one cell are 15 s apart, so
there is exactly one candidate (older ones are counted unmatched, never delivered). Latency =
receive time of the message holding the upsert - the ping's time. Expected deliveries of a ping:
every client whose subscribed coarse cells (the snapshot's "cells") hold the vendor's new coarse
cell; lost = expected - delivered (at most one delivery per socket and ping). The run has its own
CHANNELS_PREFIX and vendor slugs, so other users of Redis db 14 cannot leak into it. Diagnostics split the latency (ping_record, group_send
done, first socket, last socket), and give server CPU per delta and per websocket message and the
clients' event-loop lag (merged, and p95 per client process).

--fix measures a proposed change without touching the project: a settings module and/or an ASGI
module written to the run's temp dir override the channel layer / patch MapConsumer at import
(see SETTINGS_FIXES and BENCH_ASGI). The verdict ("pass") is for whatever ran; the default is
the code as it is. Progress on stderr; the figures as one JSON object on the last line of stdout.
"""

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import queue
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack  # noqa: E402
from _stack import log  # noqa: E402

DB_NAME = "bench_o2o_map"
TARGET_P95_MS = 300.0
AREA = (37.53, 126.88, 37.58, 126.96)  # Mapo-gu: south, west, north, east
VIEW_KM = 2.0
PING_EVERY_S = 5.0
BATCH_WINDOW_S, BATCH_MAX = 0.025, 200  # tracking/ingest.py's MAX_WAIT_S, MAX_BATCH
STEP_M = 20.0  # from the vertex into each cell: ~35 m between two of them, 7 m/s (a cart)
CYCLE = 3  # cells a vendor walks round: its pings into one cell are 15 s apart
KM_LAT = 111.32
SENTINEL = "bench:map_latency:sentinel"


# --- Vendors: points just inside the three public cells that meet at a vertex -----------------


def _offset(lat: float, lng: float, toward: tuple[float, float], metres: float):
    """The point `metres` from (lat, lng) toward `toward` (flat-earth; metres-scale)."""
    kx = KM_LAT * 1000 * math.cos(math.radians(lat))
    ky = KM_LAT * 1000
    dx, dy = (toward[1] - lng) * kx, (toward[0] - lat) * ky
    norm = math.hypot(dx, dy) or 1.0
    return lat + dy / norm * metres / ky, lng + dx / norm * metres / kx


def vendor_sides(rng: random.Random, res: int, group_res: int, area: tuple = AREA) -> list[tuple]:
    """[(lat, lng, cell, coarse)] x CYCLE: STEP_M inside each of the three public cells that meet
    at one vertex. The driver walks the cart round them, so every ping changes its public cell
    and a vendor's pings into one cell are CYCLE x PING_EVERY_S apart (what the clients' matching
    of an upsert to its ping by (vendor, cell) relies on)."""
    import h3

    while True:
        lat = rng.uniform(area[0], area[2])
        lng = rng.uniform(area[1], area[3])
        a = h3.latlng_to_cell(lat, lng, res)
        vertex = rng.choice(sorted(h3.cell_to_vertexes(a)))
        cells = [a] + [c for c in sorted(h3.grid_ring(a, 1)) if vertex in h3.cell_to_vertexes(c)]
        if len(cells) != CYCLE:
            continue
        vlat, vlng = h3.vertex_to_latlng(vertex)
        sides = []
        for cell in cells:
            p = _offset(vlat, vlng, h3.cell_to_latlng(cell), STEP_M)
            if h3.latlng_to_cell(p[0], p[1], res) != cell:
                break
            sides.append((p[0], p[1], cell, h3.cell_to_parent(cell, group_res)))
        if len(sides) == CYCLE:
            return sides


# --- Driver processes ------------------------------------------------------------------------


def driver_main(
    db_name: str,
    settings_module: str | None,
    extra_path: str | None,
    plan: list,
    ready,
    go,
    start_at,
    halt,
    duration: float,
    out_path: str,
    ingest: str = "batch",
) -> None:
    """Runs in a spawned process: ping_record for its vendors on a fixed schedule, from the
    moment the bench sets `go` (with the common start time in `start_at`)."""
    _stack.django_child_setup(db_name, settings_module, extra_path)
    import logging

    from django.db import connection

    from tracking.services import PingIn, ping_record, ping_record_many

    failures = {"broadcast_errors": 0}

    class CountErrors(logging.Handler):
        def emit(self, record):
            failures["broadcast_errors"] += 1

    for name in ("tracking.realtime", "o2o.realtime"):  # failed broadcasts are logged there
        logging.getLogger(name).addHandler(CountErrors(level=logging.WARNING))

    # When each upsert's group_send completes in Redis (this process only; the app is unchanged):
    # the broadcaster's send() is wrapped to time the future it returns. Optional: skipped if the
    # project's broadcaster changes shape.
    sent_done: dict[str, float] = {}
    futures: list = []
    try:
        from o2o.realtime import broadcaster
    except ImportError:
        broadcaster = None
    if broadcaster is not None and hasattr(broadcaster, "send"):
        original_send = broadcaster.send

        def timed_send(group, message):
            future = original_send(group, message)
            if future is not None and message.get("type") == "map.upsert":
                # The channel message's exact "at" is the driver's `now` (the payload's
                # last_seen is rounded to PUBLIC_TIME_STEP_S and never reaches this far).
                key = f"{message['vendor']['id']}|{message.get('at')}"
                future.add_done_callback(
                    lambda _f, key=key: sent_done.__setitem__(key, time.time())
                )
                futures.append(future)
            return future

        broadcaster.send = timed_send

    connection.ensure_connection()
    ready.set()
    if not go.wait(timeout=300):
        return
    t_start = start_at.value
    schedule = []
    for idx, (_vid, _slug, _sides, phase) in enumerate(plan):
        k = 0
        while phase + k * PING_EVERY_S < duration:
            schedule.append((t_start + phase + k * PING_EVERY_S, idx, k))
            k += 1
    schedule.sort()
    records = []
    cpu0 = time.process_time()

    def record(batch, t0, now, t1, results):
        for (due, idx, k), res in zip(batch, results, strict=True):
            _vid, slug, sides, _phase = plan[idx]
            _lat, _lng, cell, coarse = sides[(k + 1) % CYCLE]
            if isinstance(res, Exception):
                accepted, published, reason = False, False, f"error:{type(res).__name__}"
            else:
                accepted, published, reason = res.accepted, res.published, res.reason
            records.append(
                [
                    slug,
                    now.isoformat(),
                    cell,
                    coarse,
                    t0,
                    t0 - due,
                    t1 - t0,
                    accepted,
                    published,
                    reason,
                ]
            )

    def ping_of(idx, k, at):
        vendor_id, _slug, sides, _phase = plan[idx]
        # Seeded on side 0: the first ping crosses into side 1, and so on round the cycle.
        lat, lng, _cell, _coarse = sides[(k + 1) % CYCLE]
        return PingIn(
            vendor_id=vendor_id, lat=lat, lng=lng, accuracy_m=10.0, recorded_at=at, source="bench"
        )

    i = 0
    while i < len(schedule):
        if halt.is_set():  # behind schedule at the deadline: report what was sent
            break
        due = schedule[i][0]
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        if ingest == "single":
            batch = [schedule[i]]
        else:
            # As the server's ingest batcher does with its vendor sockets' pings: the first ping
            # opens a batch, which is written BATCH_WINDOW_S later (or at BATCH_MAX pings) with all
            # the pings that came in meanwhile.
            close_at = due + BATCH_WINDOW_S
            wait = close_at - time.time()
            if wait > 0:
                time.sleep(wait)
            j = i
            while j < len(schedule) and j - i < BATCH_MAX and schedule[j][0] <= close_at:
                j += 1
            batch = schedule[i:j]
        i += len(batch)
        # Every ping of a batch is timed from the batch's first ping (its `now`, the channel
        # message's "at"): the later ones waited less, so the latency counted is an upper bound.
        t0 = max(time.time() - BATCH_WINDOW_S, batch[0][0]) if ingest == "batch" else time.time()
        now = datetime.fromtimestamp(t0, UTC)
        pings = [ping_of(idx, k, datetime.fromtimestamp(max(d, t0), UTC)) for d, idx, k in batch]
        try:
            if ingest == "single":
                p = pings[0]
                results = [
                    ping_record(
                        vendor_id=p.vendor_id,
                        lat=p.lat,
                        lng=p.lng,
                        accuracy_m=p.accuracy_m,
                        recorded_at=p.recorded_at,
                        source=p.source,
                        now=now,
                    )
                ]
            else:
                results = ping_record_many(pings=pings, now=now)
        except Exception as exc:  # noqa: BLE001 - counted, the run goes on
            results = [exc] * len(batch)
        record(batch, t0, now, time.time(), results)
    if futures:  # let the last broadcasts leave before the process ends (bounded)
        import concurrent.futures

        concurrent.futures.wait(futures, timeout=10)
    connection.close()
    with open(out_path, "w") as fh:
        json.dump(
            {
                "records": records,
                "cpu_s": time.process_time() - cpu0,
                "sent_done": sent_done,
                "broadcaster_dropped": getattr(broadcaster, "dropped", None),
                "broadcast_errors": failures["broadcast_errors"],
            },
            fh,
        )


# --- Server ----------------------------------------------------------------------------------

# --fix: bench-only overrides of proposed changes, written to the run's temp dir (never to the
# project) so their effect can be measured against the code as it is. Default: none.
SETTINGS_FIXES = {
    # redis-py 8 times reads out after 5 s by default; channels-redis blocks 5 s in BZPOPMIN.
    "socket-timeout": """
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [{"address": REDIS_URL, "socket_timeout": None}]
""",
    # Redis pub/sub: one subscription per group per process, fan-out in the process.
    "pubsub": """
CHANNEL_LAYERS["default"]["BACKEND"] = "channels_redis.pubsub.RedisPubSubChannelLayer"
""",
}
ASGI_FIXES = ("no-db-hop", "overlap")
BENCH_ASGI = """
import os

import h3
from django.conf import settings

from o2o.asgi import application  # noqa: F401 - sets Django up; served as is, patched below
from tracking import consumers, selectors

fixes = os.environ.get("BENCH_FIXES", "").split(",")

if "no-db-hop" in fixes:
    # Channels' dispatch() runs close_old_connections in the sync thread before every handler;
    # map deltas never touch the database. (Historical: map sockets now get their deltas from
    # the process's map hub, not through dispatch(), so this changes nothing for them.)
    from channels.consumer import get_handler_name

    base_dispatch = consumers.MapConsumer.dispatch

    async def dispatch(self, message):
        if message["type"] in ("map.upsert", "map.remove"):
            await getattr(self, get_handler_name(message))(message)
        else:
            await base_dispatch(self, message)

    consumers.MapConsumer.dispatch = dispatch

if "overlap" in fixes:
    # Subscribe to the coarse cells that overlap the viewport, not those plus a ring around them.
    base_cover = selectors.coarse_cells_for_bbox

    def coarse_cells_for_bbox(*, south, west, north, east):
        if base_cover(south=south, west=west, north=north, east=east) is None:
            return None  # the same "zoom in" limit
        poly = h3.LatLngPoly([(south, west), (south, east), (north, east), (north, west)])
        cells = h3.h3shape_to_cells_experimental(poly, settings.MAP_GROUP_RES, contain="overlap")
        return sorted(cells)

    selectors.coarse_cells_for_bbox = coarse_cells_for_bbox
"""


def write_fixes(fixes: list[str], tmp: Path) -> tuple[str | None, str]:
    """(settings module or None, ASGI app path) for the fixes asked for."""
    settings_module = None
    layer = [f for f in fixes if f in SETTINGS_FIXES]
    if layer:
        text = "from o2o.settings import *  # noqa: F403\n"
        text += "from o2o.settings import CHANNEL_LAYERS, REDIS_URL  # noqa: F401\n"
        text += "".join(SETTINGS_FIXES[f] for f in layer)
        (tmp / "bench_fix_settings.py").write_text(text)
        settings_module = "bench_fix_settings"
    app = "o2o.asgi:application"
    if any(f in ASGI_FIXES for f in fixes):
        (tmp / "bench_fix_asgi.py").write_text(BENCH_ASGI)
        app = "bench_fix_asgi:application"
    return settings_module, app


def start_server(
    kind: str, port: int, env: dict, log_path: Path, app: str, profile: str | None = None
) -> subprocess.Popen:
    if kind == "uvicorn2" or app != "o2o.asgi:application":
        # The same options as `manage.py serve` (which always serves o2o.asgi:application).
        cmd = _stack.uvicorn_command(app, port, deflate=env.get("WS_PER_MESSAGE_DEFLATE", "false"))
        if kind == "uvicorn2":
            cmd += ["--workers", "2"]
    else:
        cmd = [str(_stack.PY), "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if profile:  # diagnostics: the server under cProfile (stats written when it stops)
        script = cmd[1:] if cmd[0] == str(_stack.PY) else cmd
        cmd = [str(_stack.PY), "-m", "cProfile", "-o", profile, *script]
    fh = open(log_path, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        cmd, cwd=_stack.ROOT, env={**os.environ, **env}, stdout=fh, stderr=subprocess.STDOUT
    )
    proc._bench_log = fh  # type: ignore[attr-defined]
    return proc


def wait_healthy(proc: subprocess.Popen, port: int, timeout_s: float = 40.0) -> float:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not become healthy in time")


def stop_server(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> int | None:
    if proc.poll() is None:
        proc.send_signal(sig)  # uvicorn shuts down gracefully on SIGTERM and SIGINT
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    proc._bench_log.close()  # type: ignore[attr-defined]
    return proc.returncode


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its reaped children (uvicorn --workers: the workers)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


# --- Map clients -------------------------------------------------------------------------------


class Collector:
    """Everything the clients of one client process see."""

    def __init__(self) -> None:
        # (socket, vendor id, public cell) -> receive times of the upserts that put the vendor
        # there. The parent matches them to the drivers' pings after the run (match_upserts): the
        # public payload's last_seen is rounded to PUBLIC_TIME_STEP_S, so it cannot say which
        # ping an upsert carries; the cell the ping moved the cart into, and when, can.
        self.received: dict[tuple[int, str, str], array] = {}
        self.upserts = 0
        self.removes = 0
        self.messages = 0  # websocket messages (a batch holds many deltas)
        self.last_message_at = 0.0
        self.slug_prefix = ""
        self.foreign = 0  # upserts of vendors this run did not seed (should stay 0)


async def run_client(uri, origin, bbox, collector, ready, stop, info, opened, sock=0) -> None:
    from websockets.asyncio.client import connect

    async with connect(
        uri,
        origin=origin,
        proxy=None,
        open_timeout=30,
        max_size=16 * 2**20,
        max_queue=256,
        ping_interval=None,
    ) as ws:
        opened.append(ws)
        t0 = time.time()
        await ws.send(json.dumps({"type": "viewport", "bbox": bbox}))
        while True:
            msg = json.loads(await ws.recv())
            if msg.get("type") == "snapshot":
                break
            if msg.get("type") == "zoom_in":
                info["zoom_in"] = True
                break
        info["snapshot_ms"] = (time.time() - t0) * 1000
        info["cells"] = set(msg.get("cells") or [])
        info["snapshot_vendors"] = len(msg.get("vendors") or [])
        ready.set()
        loads, now = json.loads, time.time
        received = collector.received
        try:
            async for raw in ws:
                t = now()
                msg = loads(raw)
                collector.last_message_at = t
                collector.messages += 1
                kind = msg.get("type")
                # A batch (the deltas of one flush) or, from older servers, one delta a message:
                # every event is stamped with the receipt of the message that holds it.
                for event in msg["events"] if kind == "batch" else (msg,):
                    kind = event.get("type")
                    if kind == "upsert":
                        vendor = event["vendor"]
                        if not str(vendor.get("id")).startswith(collector.slug_prefix):
                            collector.foreign += 1
                            continue
                        key = (sock, vendor["id"], vendor.get("cell") or "")
                        collector.upserts += 1
                        times = received.get(key)
                        if times is None:
                            received[key] = times = array("d")
                        times.append(t)
                    elif kind == "remove":
                        collector.removes += 1
                if stop.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - a closed socket ends the client
            info["error"] = f"{type(exc).__name__}: {exc}"[:200]
            info["error_at"] = time.time()


def random_bbox(rng: random.Random, area: tuple = AREA) -> list[float]:
    """A VIEW_KM x VIEW_KM viewport [south, west, north, east] inside `area`."""
    dlat = VIEW_KM / KM_LAT
    dlng = VIEW_KM / (KM_LAT * math.cos(math.radians((area[0] + area[2]) / 2)))
    south = rng.uniform(area[0], area[2] - dlat)
    west = rng.uniform(area[1], area[3] - dlng)
    return [round(south, 6), round(west, 6), round(south + dlat, 6), round(west + dlng, 6)]


def overlap_cells(bbox: list[float], res: int) -> int:
    """How many coarse cells actually overlap the viewport (for the fan-out comparison)."""
    import h3

    south, west, north, east = bbox
    poly = h3.LatLngPoly([(south, west), (south, east), (north, east), (north, west)])
    return len(h3.h3shape_to_cells_experimental(poly, res, contain="overlap"))


async def loop_lag_probe(samples: list[float], stop: asyncio.Event) -> None:
    """How late the clients' event loop wakes up (a saturated client inflates latency)."""
    while not stop.is_set():
        t = time.monotonic()
        await asyncio.sleep(0.05)
        samples.append((time.monotonic() - t - 0.05) * 1000)


# --- Client processes --------------------------------------------------------------------------
#
# One Python process cannot read and parse ~14,000 deltas a second for 200 sockets and still
# timestamp them on time (its event loop lagged 0.7 s at full scale), so the map sockets are spread
# over --client-procs spawned processes, each with its own event loop (no Django in them). Every
# process stamps receipts with time.time(), the same wall clock the drivers stamp pings with, so
# latencies from all processes are comparable and are merged in the parent.


def client_proc_main(
    k: int,
    uri: str,
    origin: str,
    assigned: list,
    slug_prefix: str,
    gate_n: int,
    ready_q,
    go,
    stop,
    last_msg,
    out_path: str,
    open_timeout_s: float = 180.0,
) -> None:
    """Runs in a spawned process: opens its share of the map sockets, reports on `ready_q` when
    they have their snapshots, reads deltas from `go` until `stop`, then writes its figures
    (pickle) to `out_path`. `last_msg` (shared) tells the parent when a message last arrived."""
    import pickle

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    result = asyncio.run(
        client_proc_run(
            k,
            uri,
            origin,
            assigned,
            slug_prefix,
            gate_n,
            ready_q,
            go,
            stop,
            last_msg,
            open_timeout_s,
        )
    )
    tmp_path = out_path + ".part"
    with open(tmp_path, "wb") as fh:
        pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp_path, out_path)


async def client_proc_run(
    k, uri, origin, assigned, slug_prefix, gate_n, ready_q, go, stop, last_msg, open_timeout_s=180.0
):
    collector = Collector()
    collector.slug_prefix = slug_prefix
    infos = {i: {} for i, _bbox in assigned}
    stopping = asyncio.Event()
    gate = asyncio.Semaphore(gate_n)  # sockets of this process waiting for their snapshot
    opened: list = []

    async def one(i, bbox):
        snapped = asyncio.Event()
        async with gate:
            task = asyncio.create_task(
                run_client(uri, origin, bbox, collector, snapped, stopping, infos[i], opened, i)
            )
            waiter = asyncio.create_task(snapped.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        return task

    t_open = time.monotonic()
    tasks = await asyncio.wait_for(
        asyncio.gather(*(one(i, bbox) for i, bbox in assigned)), timeout=open_timeout_s
    )
    connected = sum(1 for info in infos.values() if "cells" in info)
    ready_q.put((k, connected, len(assigned), time.monotonic() - t_open))
    while not go.is_set() and not stop.is_set():
        await asyncio.sleep(0.02)
    lag: list[float] = []
    probe = asyncio.create_task(loop_lag_probe(lag, stopping))
    cpu0 = time.process_time()
    while not stop.is_set():
        last_msg.value = collector.last_message_at
        await asyncio.sleep(0.1)
    cpu_s = time.process_time() - cpu0
    stopping.set()
    probe.cancel()
    await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    await asyncio.wait(tasks, timeout=15)
    for (i, _bbox), task in zip(assigned, tasks, strict=True):
        if not task.done():
            task.cancel()
        elif not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            infos[i]["error"] = f"{type(exc).__name__}: {exc}"[:200]
    return {
        "proc": k,
        "infos": infos,
        "received": {key: times.tobytes() for key, times in collector.received.items()},
        "upserts": collector.upserts,
        "removes": collector.removes,
        "messages": collector.messages,
        "foreign": collector.foreign,
        "last_message_at": collector.last_message_at,
        "loop_lag": lag,
        "cpu_s": cpu_s,
    }


# --- Matching upserts to pings ---------------------------------------------------------------


def match_upserts(records: list, received: dict) -> tuple[dict, list[float], int]:
    """Each socket's upsert of vendor v into cell c is matched to the latest ping of v into c that
    was published before the frame arrived and that this socket has not matched yet, if that ping
    is less than one cycle (CYCLE x PING_EVERY_S) old: a vendor's pings into one cell are a cycle
    apart, so there is then exactly one candidate. Returns ({record index: [deliveries, first
    receive, last receive]}, the matched upserts' latencies in ms (frame receipt - ping time),
    how many upserts had only a candidate a cycle old or older)."""
    import bisect

    pings: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for n, r in enumerate(records):
        if r[8]:  # published: slug, new cell, ping time (the batch's first ping)
            pings.setdefault((r[0], r[2]), []).append((r[4], n))
    for items in pings.values():
        items.sort()
    horizon = CYCLE * PING_EVERY_S
    delivered: dict[int, list] = {}
    latencies: list[float] = []
    too_late = 0
    for (_sock, slug, cell), times in received.items():
        items = pings.get((slug, cell), [])
        stamps = [t0 for t0, _n in items]
        taken: set[int] = set()
        for t in sorted(times):
            k = bisect.bisect_right(stamps, t) - 1
            while k >= 0 and items[k][1] in taken:
                k -= 1
            if k < 0:
                continue  # nothing sent to that cell before the frame: unmatched
            t0, n = items[k]
            if t - t0 >= horizon:
                too_late += 1
                continue
            taken.add(n)
            latencies.append((t - t0) * 1000)
            seen = delivered.get(n)
            if seen is None:
                delivered[n] = [1, t, t]
            else:
                seen[0] += 1
                seen[1] = min(seen[1], t)
                seen[2] = max(seen[2], t)
    return delivered, latencies, too_late


# --- The run ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 vendors, 50 clients, 20 s")
    parser.add_argument("--vendors", type=int)
    parser.add_argument("--clients", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--drivers", type=int, default=2, choices=[1, 2, 3, 4])
    parser.add_argument(
        "--client-procs",
        type=int,
        default=2,
        help="processes the map sockets are spread over (each its own event loop; default 2)",
    )
    parser.add_argument("--server", choices=["serve", "uvicorn2"], default="serve")
    parser.add_argument(
        "--ingest",
        choices=["batch", "single"],
        default="batch",
        help="drivers write pings as the vendor sockets do (ping_record_many, 25 ms / 200 pings "
        "batches) or one by one through ping_record",
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--fix",
        action="append",
        default=[],
        choices=[*SETTINGS_FIXES, *ASGI_FIXES, "all"],
        help="measure a proposed change through a bench-only override (repeatable; 'all' = "
        "socket-timeout, no-db-hop, overlap)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--server-profile", help="run `serve` under cProfile, stats to this file")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    n_vendors = args.vendors or (200 if args.quick else 1_000)
    n_clients = args.clients or (50 if args.quick else 200)
    duration = args.seconds or (20.0 if args.quick else 60.0)
    drain_max = 10.0 if args.quick else 20.0
    wall0 = time.monotonic()
    load_start = [round(x, 2) for x in os.getloadavg()]

    env = _stack.setup_stack(DB_NAME)
    import redis
    from django.conf import settings
    from django.db import connection

    rds = redis.Redis(host="127.0.0.1", port=6379, db=_stack.REDIS_DB)
    rds.set(SENTINEL, "1")
    rng = random.Random(args.seed)
    run_id = f"{os.getpid():x}{int(time.time()) % 100000:05d}"
    slug_prefix = f"map{run_id}"
    res, group_res = settings.PUBLIC_CELL_RES, settings.MAP_GROUP_RES
    sides = [vendor_sides(rng, res, group_res) for _ in range(n_vendors)]
    log(f"seeding {n_vendors} vendors around Mapo-gu")
    seeded = _stack.seed_vendors(
        [(s[0][0], s[0][1]) for s in sides], slug_prefix=slug_prefix, stock_fraction=0.1, rng=rng
    )
    _stack.analyze(["tracking_vendorposition", "vendors_vendor", "vendors_stock"])
    connection.close()

    tmp = Path(tempfile.mkdtemp(prefix="bench_map_"))
    fixes = sorted(
        {"socket-timeout", "no-db-hop", "overlap"} if "all" in args.fix else set(args.fix)
    )
    settings_module, app = write_fixes(fixes, tmp)
    env = {
        **env,
        # Own channel-layer prefix: other processes on Redis db 14 cannot talk to these sockets.
        "CHANNELS_PREFIX": f"bench-map-{run_id}",
        "BENCH_FIXES": ",".join(fixes),
        # Every map socket of the bench comes from 127.0.0.1: lift the per-address cap (a
        # protection against one abusive client, 8 by default) above the sockets opened.
        "MAP_SOCKETS_PER_ADDRESS": str(max(n_clients + 10, 8)),
        "PYTHONPATH": os.pathsep.join([str(tmp), str(_stack.ROOT)]),
    }
    if settings_module:
        env["DJANGO_SETTINGS_MODULE"] = settings_module
    os.environ["CHANNELS_PREFIX"] = env["CHANNELS_PREFIX"]  # the spawned drivers inherit it
    server = start_server(args.server, args.port, env, tmp / "server.log", app, args.server_profile)
    result: dict = {
        "benchmark": "map_latency",
        "mode": "quick" if args.quick else "full",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "target": f"p95 < {TARGET_P95_MS:g} ms ping_record start -> upsert at map socket",
        "pass": False,
    }
    drivers: list[mp.Process] = []
    client_procs: list[mp.Process] = []
    try:
        up_s = wait_healthy(server, args.port)
        log(f"server ({args.server}) healthy after {up_s:.1f}s, pid {server.pid}")
        uri = f"ws://127.0.0.1:{args.port}/ws/map/"
        origin = f"http://127.0.0.1:{args.port}"
        bboxes = [random_bbox(rng) for _ in range(n_clients)]
        infos = [{} for _ in range(n_clients)]
        collector = Collector()
        collector.slug_prefix = slug_prefix + "-"

        # Drivers: vendors split round-robin, each with a phase in [0, 5) s.
        plans = [[] for _ in range(args.drivers)]
        for n, ((vid, slug), s) in enumerate(zip(seeded, sides, strict=True)):
            plans[n % args.drivers].append((vid, slug, s, rng.uniform(0, PING_EVERY_S)))

        # Drivers are spawned now (Django setup takes a while) and start on a signal once every
        # map socket has its snapshot, so the server is not left quiet for long before pings.
        ctx = mp.get_context("spawn")
        go, start_at, halt = ctx.Event(), ctx.Value("d", 0.0), ctx.Event()
        readies = []
        for d, plan in enumerate(plans):
            ready = ctx.Event()
            p = ctx.Process(
                target=driver_main,
                args=(
                    DB_NAME,
                    settings_module,
                    str(tmp) if settings_module else None,
                    plan,
                    ready,
                    go,
                    start_at,
                    halt,
                    duration,
                    str(tmp / f"driver{d}.json"),
                    args.ingest,
                ),
                daemon=True,
            )
            p.start()
            drivers.append(p)
            readies.append(ready)

        # Map clients: spread round-robin over --client-procs processes (no Django in them), which
        # open their sockets while the drivers set Django up.
        n_procs = max(1, min(args.client_procs, n_clients))
        gate_n = max(1, 20 // n_procs)  # at most ~20 sockets in all waiting for their snapshot
        ready_q, stop_clients = ctx.Queue(), ctx.Event()
        last_msgs = [ctx.RawValue("d", 0.0) for _ in range(n_procs)]
        for k in range(n_procs):
            assigned = [(i, bboxes[i]) for i in range(k, n_clients, n_procs)]
            p = ctx.Process(
                target=client_proc_main,
                args=(
                    k,
                    uri,
                    origin,
                    assigned,
                    collector.slug_prefix,
                    gate_n,
                    ready_q,
                    go,
                    stop_clients,
                    last_msgs[k],
                    str(tmp / f"clients{k}.pickle"),
                ),
                daemon=True,
            )
            p.start()
            client_procs.append(p)

        def orchestrate() -> dict:
            t_open = time.monotonic()
            waiting, connected = set(range(n_procs)), 0
            while waiting:
                if time.monotonic() - t_open > 240:
                    raise RuntimeError("client processes did not get their snapshots in time")
                try:
                    k, ok, _n, _s = ready_q.get(timeout=0.5)
                except queue.Empty:
                    if any(not client_procs[k].is_alive() for k in waiting):
                        raise RuntimeError("a client process died before its snapshots") from None
                    continue
                waiting.discard(k)
                connected += ok
            log(
                f"{connected}/{n_clients} clients have their snapshot, in {n_procs} client "
                f"process(es) ({time.monotonic() - t_open:.1f}s)"
            )

            # Pings: all drivers start together, as soon as they are ready.
            for ready in readies:
                while not ready.is_set():
                    if not any(p.is_alive() for p in drivers):
                        raise RuntimeError("driver processes died before starting")
                    time.sleep(0.05)
            t_start = time.time() + 0.2
            start_at.value = t_start
            go.set()
            server_cpu0 = cpu_seconds(server.pid)
            log(
                f"driving {n_vendors} vendors x 1 ping / {PING_EVERY_S:g}s for {duration:g}s "
                f"in {len(drivers)} driver process(es)"
            )
            # Drivers that fall behind (a busy machine) stop 30 s after the schedule ends and
            # report what they sent: pings_per_s then says the load was not reached.
            deadline = t_start + duration + 30
            while any(p.is_alive() for p in drivers) and time.time() < deadline:
                time.sleep(0.2)
            halt.set()
            while any(p.is_alive() for p in drivers) and time.time() < deadline + 30:
                time.sleep(0.2)
            t_end = time.time()
            # Drain: until 2 s pass without a message in any client process, at most drain_max.
            while time.time() - t_end < drain_max:
                last = max([t_end, *(v.value for v in last_msgs)])
                if time.time() - last > 2.0:
                    break
                time.sleep(0.1)
            server_cpu = cpu_seconds(server.pid) - server_cpu0
            busy_s = max(t_end - t_start, 1e-6)
            stop_clients.set()
            for p in client_procs:
                p.join(timeout=60)
            return {
                "busy_s": busy_s,
                "server_cpu_pct": round(100 * server_cpu / busy_s, 1),
                "server_cpu_s": server_cpu,
            }

        run = orchestrate()
        for p in drivers:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()

        # Client results, merged: every socket's upserts by (vendor, cell), matched to the pings
        # once the drivers' records are in (below).
        import pickle

        received: dict[tuple[int, str, str], array] = {}

        clients_cpu, lag_all, lag_by_proc, cpu_by_proc = 0.0, [], [], []
        for k in range(n_procs):
            path = tmp / f"clients{k}.pickle"
            if not path.exists():
                raise RuntimeError(f"client process {k} reported nothing")
            data = pickle.loads(path.read_bytes())
            for i, info in data["infos"].items():
                infos[i] = info
            for key, raw in data["received"].items():  # sockets are disjoint between processes
                times = array("d")
                times.frombytes(raw)
                received[key] = times
            collector.upserts += data["upserts"]
            collector.removes += data["removes"]
            collector.messages += data["messages"]
            collector.foreign += data["foreign"]
            clients_cpu += data["cpu_s"]
            lag_all.extend(data["loop_lag"])
            lag_by_proc.append(_stack.percentiles(data["loop_lag"], 1).get("p95"))
            cpu_by_proc.append(round(100 * data["cpu_s"] / run["busy_s"], 1))
        run["loop_lag"] = lag_all
        run["loop_lag_p95_by_proc"] = lag_by_proc
        run["clients_cpu_pct"] = round(100 * clients_cpu / run["busy_s"], 1)
        run["clients_cpu_pct_by_proc"] = cpu_by_proc

        # Driver results.
        records, driver_cpu, bcast_errors, sent_done, dropped = [], 0.0, 0, {}, 0
        for d in range(len(drivers)):
            path = tmp / f"driver{d}.json"
            if path.exists():
                data = json.loads(path.read_text())
                records.extend(data["records"])
                driver_cpu += data["cpu_s"]
                bcast_errors += data["broadcast_errors"]
                sent_done.update(data["sent_done"])
                dropped += data["broadcaster_dropped"] or 0
        sent = len(records)
        accepted = sum(1 for r in records if r[7])
        published = [r for r in records if r[8]]
        reasons: dict[str, int] = {}
        for r in records:
            if not r[7]:
                reasons[r[9]] = reasons.get(r[9], 0) + 1
        span = (max(r[4] for r in records) - min(r[4] for r in records)) if records else 0
        # Expected deliveries: clients subscribed to the ping's new coarse cell.
        subscribers: dict[str, int] = {}
        for info in infos:
            for cell in info.get("cells", ()):
                subscribers[cell] = subscribers.get(cell, 0) + 1
        expected = sum(subscribers.get(r[3], 0) for r in published)
        matched = 0
        lost_pings = 0
        first_after_return, spread, by_window = [], [], {}
        undelivered_at: list[float] = []
        group_send_done, first_after_send = [], []
        t_first_ping = min((r[4] for r in records), default=0.0)
        delivered, latencies_ms, too_late = match_upserts(records, received)
        for n, r in enumerate(records):
            if not r[8]:
                continue
            want = subscribers.get(r[3], 0)
            seen = delivered.get(n)
            got = min(seen[0], want) if seen else 0
            matched += got
            lost_pings += got < want
            if want and not seen:
                undelivered_at.append(round(r[4] - t_first_ping, 1))
            done_at = sent_done.get(f"{r[0]}|{r[1]}")
            if done_at is not None:  # the upsert's group_send finished (delivered or not)
                group_send_done.append((done_at - r[4]) * 1000)
            if seen:
                # Decomposition: ping_record (which publishes on commit) returns at r[4] + r[6];
                # then the first socket gets it; then the last subscriber does.
                first_after_return.append((seen[1] - (r[4] + r[6])) * 1000)
                spread.append((seen[2] - seen[1]) * 1000)
                if done_at is not None:
                    first_after_send.append((seen[1] - done_at) * 1000)
                by_window.setdefault(int((r[4] - t_first_ping) // 5), []).append(
                    (seen[2] - r[4]) * 1000
                )
        lat = _stack.percentiles(latencies_ms, 1)
        client_errors: dict[str, int] = {}
        for info in infos:
            if "error" in info:
                client_errors[info["error"]] = client_errors.get(info["error"], 0) + 1
        server_log = (tmp / "server.log").read_text(errors="replace")
        result["server_log_errors"] = {
            "exceptions_in_asgi_app": server_log.count("Exception in ASGI application"),
            "redis_read_timeouts": server_log.count("Timeout reading from"),
        }
        snap = _stack.percentiles([i["snapshot_ms"] for i in infos if "snapshot_ms" in i], 1)
        cells_sub = [len(i["cells"]) for i in infos if "cells" in i]
        cells_overlap = [overlap_cells(b, group_res) for b in bboxes]
        p95 = lat.get("p95")
        lost = expected - matched
        scheduled = n_vendors * math.ceil(duration / PING_EVERY_S)
        load_reached = sent >= 0.95 * scheduled
        result.update(
            {
                "vendors": n_vendors,
                "clients": n_clients,
                "clients_connected": len(cells_sub),
                "client_errors": client_errors,
                "server": args.server,
                "ingest": args.ingest,
                "ws_per_message_deflate": os.environ.get("WS_PER_MESSAGE_DEFLATE", "false"),
                "fixes": fixes,
                "drivers": len(drivers),
                "seconds": duration,
                "latency_ms": lat,
                "deliveries": matched,
                "expected_deliveries": expected,
                "lost": lost,
                "lost_pct": round(100 * lost / expected, 2) if expected else None,
                "pings_with_a_loss": lost_pings,
                "pings_delivered_to_nobody": len(undelivered_at),
                "pings_delivered_to_nobody_at_s": undelivered_at[:10],
                "client_errors_at_s": sorted(
                    round(i["error_at"] - t_first_ping, 1) for i in infos if "error_at" in i
                )[:10],
                "duplicate_or_unmatched_upserts": collector.upserts - matched,
                # Upserts whose only candidate ping was a full cycle (CYCLE x PING_EVERY_S) or more
                # before the frame: ambiguous, so not counted as delivered (part of the above).
                "unmatched_upserts_later_than_cycle": too_late,
                "match": f"(vendor, cell) over a {CYCLE}-cell cycle, latest unmatched ping before "
                "the frame",
                "foreign_upserts": collector.foreign,
                "removes": collector.removes,
                "pings_sent": sent,
                "pings_accepted": accepted,
                "pings_published": len(published),
                "pings_rejected": reasons,
                "pings_per_s": round(sent / span, 1) if span else 0,
                "pings_per_s_target": round(n_vendors / PING_EVERY_S, 1),
                "ping_record_ms": _stack.percentiles([r[6] * 1000 for r in records], 1),
                # Upserts whose group_send completed in the driver, of pings_published; the rest
                # failed (broadcast_errors) or were still queued when the driver stopped.
                "group_sends_completed": len(group_send_done),
                "group_send_done_after_ping_start_ms": _stack.percentiles(group_send_done, 1),
                "first_delivery_after_group_send_done_ms": _stack.percentiles(first_after_send, 1),
                "broadcaster_dropped": dropped,
                "first_delivery_after_ping_record_returned_ms": _stack.percentiles(
                    first_after_return, 1
                ),
                "fanout_spread_first_to_last_client_ms": _stack.percentiles(spread, 1),
                "last_delivery_p95_ms_by_5s_window": [
                    _stack.percentiles(by_window[w], 1).get("p95") for w in sorted(by_window)
                ],
                "driver_lag_ms": _stack.percentiles([max(r[5], 0) * 1000 for r in records], 1),
                "broadcast_errors": bcast_errors,
                "deliveries_per_s": round(matched / run["busy_s"], 1),
                # Server CPU per delta delivered to a map socket (upserts + removes) and per
                # websocket message (a batch holds many deltas).
                "server_cpu_ms_per_socket_message": round(
                    1000 * run["server_cpu_s"] / max(collector.upserts + collector.removes, 1), 3
                ),
                "socket_messages": collector.messages,
                "server_cpu_ms_per_websocket_message": round(
                    1000 * run["server_cpu_s"] / max(collector.messages, 1), 3
                ),
                "deltas_per_websocket_message": round(
                    (collector.upserts + collector.removes) / max(collector.messages, 1), 1
                ),
                "snapshot_ms": snap,
                "coarse_cells_subscribed_mean": round(sum(cells_sub) / len(cells_sub), 1)
                if cells_sub
                else None,
                "coarse_cells_overlapping_viewport_mean": round(
                    sum(cells_overlap) / len(cells_overlap), 1
                ),
                "snapshot_vendors_mean": round(
                    sum(i.get("snapshot_vendors", 0) for i in infos) / max(len(cells_sub), 1), 1
                ),
                "client_procs": n_procs,
                "client_loop_lag_ms": _stack.percentiles(run["loop_lag"], 1),
                "client_loop_lag_p95_ms_by_proc": run["loop_lag_p95_by_proc"],
                "cpu_pct": {
                    "server": run["server_cpu_pct"],
                    "clients": run["clients_cpu_pct"],
                    "clients_by_proc": run["clients_cpu_pct_by_proc"],
                    "drivers": round(100 * driver_cpu / run["busy_s"], 1),
                },
                "redis_flushed_during_run": not bool(rds.exists(SENTINEL)),
                # The verdict holds only if the drivers kept the schedule (within 5 %).
                "load_reached": load_reached,
                "pass": bool(
                    p95 is not None
                    and p95 < TARGET_P95_MS
                    and lost == 0
                    and load_reached
                    and len(cells_sub) == n_clients
                ),
            }
        )
    except Exception as exc:  # noqa: BLE001 - reported in the JSON line, exit status 1
        import traceback

        traceback.print_exc()
        result["error"] = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        for p in [*drivers, *client_procs]:
            if p.is_alive():
                p.terminate()
        # SIGINT under cProfile: it ends in KeyboardInterrupt, and cProfile writes its stats.
        code = stop_server(server, signal.SIGINT if args.server_profile else signal.SIGTERM)
        result["server_exit"] = code
        log(f"server stopped (exit {code}); log: {tmp / 'server.log'}")
        tail = (tmp / "server.log").read_text(errors="replace").splitlines()[-15:]
        if code not in (0, None) or "error" in result or not result.get("latency_ms"):
            for line in tail:
                log(f"  server| {line}")
        if not args.keep_db:
            _stack.drop_database(DB_NAME)
    result["loadavg_start_end"] = [load_start, [round(x, 2) for x in os.getloadavg()]]
    result["wall_s"] = round(time.monotonic() - wall0, 1)
    _stack.emit(result)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    _soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if _hard == resource.RLIM_INFINITY or _hard >= 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(_soft, 4096), _hard))
    sys.exit(main())
