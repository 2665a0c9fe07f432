"""Benchmark: the national fleet, end to end (issue #18 item 1). Vendor phones ping through the
vendor websocket (`/ws/vendor/location/`, exactly as the phone does: a logged-in session cookie,
the Origin header, `{"type": "ping", ...}` answered with an ack), two uvicorn processes record the
pings (each its own ingest batcher) and fan the public cells out (each its own map hub, fed
through channels-redis), and map sockets watching random 2 km viewports receive the deltas.
Target: p95 from the phone's send to the map socket's frame < 300 ms, p99 < 500 ms, 0 lost
deltas, 0 refused pings, 0 failed connects.

    .venv/bin/python bench/fleet.py [--quick] [--vendors N] [--maps N] [--seconds S]
                                    [--cross-fraction F] [--server-cpus 1] [--client-cpu 0]
                                    [--server-profile DIR]

Full: 11,000 vendors (2,200 pings/s) + 1,000 map sockets for 300 s; quick: 1,000 + 100 for 15 s.
The vendors are spread over ~600 km² of Seoul (AREA). A fraction (--cross-fraction, default 0.2)
walk round the three public cells that meet at a vertex, as bench/map_latency.py's do (every ping
changes the public cell: a delta); the others walk straight on at 1.0-1.6 m/s (a crossing every
~45 pings). HEARTBEAT_S is raised to an hour in the servers' env, so the only deltas are cell
changes and every one is known from the acks (each ack says the cell): see bench/README.md.

Processes: the load generator (one process with every vendor socket, one map-client process per
server: map_latency's client, on uvloop) is pinned to --client-cpu; the two servers
(`uvicorn o2o.asgi:application`, ports 8781 and 8782, the sockets split between them) to
--server-cpus. PostgreSQL and Redis are the machine's shared ones (not pinned). Own database
`bench_o2o_fleet`, Redis db 12 with a per-run key prefix (never flushed; the run's keys are deleted
at the end). Sessions are made in bulk in the seed (django_session rows with the auth keys), one
per vendor. Progress on stderr; the figures as one JSON object on the last line of stdout.
"""

import argparse
import asyncio
import math
import multiprocessing as mp
import os
import pickle
import queue
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack  # noqa: E402
import map_latency  # noqa: E402
from _stack import log  # noqa: E402

DB_NAME = "bench_o2o_fleet"
REDIS_DB = 12
PORT = 8781  # and PORT + 1
TARGET_P95_MS, TARGET_P99_MS = 300.0, 500.0
# ~600 km² of Seoul: 24.5 km x 24.6 km round (37.55, 126.99).
AREA = (37.44, 126.85, 37.66, 127.13)
PING_EVERY_S = map_latency.PING_EVERY_S
WALK_MPS = (1.0, 1.6)
NOFILE = 20_000
ACK, REJECTED, ERROR, NO_ANSWER = 0, 1, 2, 3
WINDOW_S = 10  # latency p95 by window of the run


def uptime() -> str:
    """`uptime`, in UTC (Django sets TZ for this process to TIME_ZONE)."""
    env = {**os.environ, "TZ": "UTC"}
    return subprocess.run(["uptime"], capture_output=True, text=True, env=env).stdout.strip()


def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE if hard == resource.RLIM_INFINITY else min(NOFILE, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def pin(cpus: set[int]) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)


def use_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


# --- The fleet: where each cart goes ------------------------------------------------------------


def plan_fleet(rng: random.Random, n: int, cross_fraction: float, res: int, group_res: int):
    """[(kind, points)]: ("cross", the 3 points of map_latency.vendor_sides; ping k goes to
    points[(k + 1) % 3]) or ("walk", (lat0, lng0, dlat, dlng); ping k at start + (k + 1) x step).
    The seed puts each cart at its ping -1 (points[0] / the start)."""
    n_cross = round(n * cross_fraction)
    kinds = ["cross"] * n_cross + ["walk"] * (n - n_cross)
    rng.shuffle(kinds)
    margin_lat = 0.6 / map_latency.KM_LAT  # a walk of 300 s at 1.6 m/s is under 0.5 km
    margin_lng = margin_lat / math.cos(math.radians(AREA[0]))
    inner = (AREA[0] + margin_lat, AREA[1] + margin_lng, AREA[2] - margin_lat, AREA[3] - margin_lng)
    fleet = []
    for kind in kinds:
        if kind == "cross":
            sides = map_latency.vendor_sides(rng, res, group_res, area=inner)
            fleet.append(("cross", tuple((s[0], s[1]) for s in sides)))
            continue
        lat, lng = rng.uniform(inner[0], inner[2]), rng.uniform(inner[1], inner[3])
        step = rng.uniform(*WALK_MPS) * PING_EVERY_S
        heading = rng.uniform(0, 2 * math.pi)
        dlat = step * math.cos(heading) / (map_latency.KM_LAT * 1000)
        dlng = step * math.sin(heading) / (map_latency.KM_LAT * 1000 * math.cos(math.radians(lat)))
        fleet.append(("walk", (lat, lng, dlat, dlng)))
    return fleet


def fleet_point(kind: str, spec: tuple, k: int) -> tuple[float, float]:
    """Where ping k of a cart is sent from (k = -1: the seeded position)."""
    if kind == "cross":
        return spec[(k + 1) % 3]
    lat, lng, dlat, dlng = spec
    return lat + (k + 1) * dlat, lng + (k + 1) * dlng


def seed_sessions(user_ids: list[int]) -> list[str]:
    """One logged-in session per user, bulk-inserted as django.contrib.auth.login would leave it
    (the user's id, backend and session auth hash); their keys, in input order."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    from o2o.accounts.models import User

    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.db", settings.SESSION_ENGINE
    users = User.objects.in_bulk(user_ids)
    store = SessionStore()
    expire = timezone.now() + timedelta(days=1)
    keys, rows = [], []
    for uid in user_ids:
        user = users[uid]
        key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
        data = {
            SESSION_KEY: str(uid),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        rows.append(Session(session_key=key, session_data=store.encode(data), expire_date=expire))
        keys.append(key)
    Session.objects.bulk_create(rows, batch_size=5_000)
    return keys


# --- Vendor phones (one process, every vendor socket) ----------------------------------------


def phones_main(cpus, vendors, n_pings, concurrency, ready_q, go, start_at, stop, out_path):
    """Spawned: open every vendor socket (a session cookie each), report on `ready_q`, then from
    `start_at` send each cart's pings on its own 5 s rhythm; write what happened to `out_path`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    pin(cpus)
    raise_nofile()
    loop_kind = use_uvloop()
    result = asyncio.run(phones_run(vendors, n_pings, concurrency, ready_q, go, start_at, stop))
    result["loop"] = loop_kind
    with open(out_path + ".part", "wb") as fh:
        pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(out_path + ".part", out_path)


async def phones_run(vendors, n_pings, concurrency, ready_q, go, start_at, stop):
    import json

    from websockets.asyncio.client import connect

    n = len(vendors)
    sockets: list = [None] * n
    connect_errors: dict[str, int] = {}
    connect_ms = array("d")
    gate = asyncio.Semaphore(concurrency)
    # Per ping: send time, ack time, outcome, cell and reason (filled in by the readers).
    sent_at = [array("d", [0.0] * n_pings) for _ in range(n)]
    acked_at = [array("d", [0.0] * n_pings) for _ in range(n)]
    outcome = [array("b", [NO_ANSWER] * n_pings) for _ in range(n)]
    cells: list[list] = [[""] * n_pings for _ in range(n)]
    reasons: dict[str, int] = {}
    closed: dict[str, int] = {}

    async def open_one(i):
        _slug, port, session_key, *_rest = vendors[i]
        async with gate:
            t0 = time.monotonic()
            try:
                ws = await connect(
                    f"ws://127.0.0.1:{port}/ws/vendor/location/",
                    origin=f"http://127.0.0.1:{port}",
                    additional_headers={"Cookie": f"sessionid={session_key}"},
                    proxy=None,
                    compression=None,
                    open_timeout=120,
                    ping_interval=None,  # the server pings every 20 s; pongs are automatic
                    max_queue=16,
                )
            except Exception as exc:  # noqa: BLE001 - counted
                name = f"{type(exc).__name__}: {exc}"[:120]
                connect_errors[name] = connect_errors.get(name, 0) + 1
                return
            connect_ms.append((time.monotonic() - t0) * 1000)
            sockets[i] = ws

    t_open = time.monotonic()
    await asyncio.gather(*(open_one(i) for i in range(n)))
    # A refused socket is accepted, then closed at once with its code (o2o.consumers.refuse).
    await asyncio.sleep(1.0)
    for i, ws in enumerate(sockets):
        if ws is not None and ws.close_code is not None:
            key = f"closed {ws.close_code}"
            connect_errors[key] = connect_errors.get(key, 0) + 1
            sockets[i] = None
    connected = sum(ws is not None for ws in sockets)
    ready_q.put(("phones", connected, n, time.monotonic() - t_open))
    while not go.is_set() and not stop.is_set():
        await asyncio.sleep(0.02)
    t_start = start_at.value
    loads, dumps = json.loads, json.dumps

    async def reader(i, ws):
        base = int(t_start * 1000) + int(vendors[i][3] * 1000)
        try:
            async for raw in ws:
                t = time.time()
                msg = loads(raw)
                ts = msg.get("ts")
                k = round((ts - base) / (PING_EVERY_S * 1000)) if isinstance(ts, int) else -1
                if not 0 <= k < n_pings or sent_at[i][k] == 0.0:
                    reasons["unknown ts"] = reasons.get("unknown ts", 0) + 1
                    continue
                kind = msg.get("type")
                acked_at[i][k] = t
                if kind == "ack":
                    outcome[i][k] = ACK
                    cells[i][k] = msg.get("cell") or ""
                else:
                    outcome[i][k] = REJECTED if kind == "rejected" else ERROR
                    why = f"{kind}:{msg.get('reason')}"
                    reasons[why] = reasons.get(why, 0) + 1
        except Exception as exc:  # noqa: BLE001 - a closed socket ends its reader
            why = f"{type(exc).__name__} {ws.close_code} {ws.close_reason}"[:80]
            closed[why] = closed.get(why, 0) + 1

    async def writer(i, ws):
        _slug, _port, _key, phase, kind, spec = vendors[i]
        for k in range(n_pings):
            due = t_start + phase + k * PING_EVERY_S
            wait = due - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if stop.is_set():
                return
            lat, lng = fleet_point(kind, spec, k)
            # The phone's own time of the fix (epoch ms): due, not now, so the reader can tell
            # which ping an ack answers; the send is timed separately.
            ts = int(t_start * 1000) + int(phase * 1000) + k * int(PING_EVERY_S * 1000)
            text = dumps({"type": "ping", "lat": lat, "lng": lng, "accuracy": 10.0, "ts": ts})
            sent_at[i][k] = time.time()
            try:
                await ws.send(text)
            except Exception as exc:  # noqa: BLE001 - counted; this phone stops
                why = f"send {type(exc).__name__}"
                closed[why] = closed.get(why, 0) + 1
                sent_at[i][k] = 0.0
                return

    lag: list[float] = []
    stopping = asyncio.Event()
    probe = asyncio.create_task(map_latency.loop_lag_probe(lag, stopping))
    cpu0 = time.process_time()
    readers = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(sockets) if ws]
    writers = [asyncio.create_task(writer(i, ws)) for i, ws in enumerate(sockets) if ws]
    await asyncio.gather(*writers)
    t_sent = time.time()
    # The last acks: until every sent ping has its answer, at most 10 s.
    while time.time() - t_sent < 10:
        if all(
            outcome[i][k] != NO_ANSWER or sent_at[i][k] == 0.0
            for i in range(n)
            if sockets[i] is not None
            for k in range(n_pings)
        ):
            break
        await asyncio.sleep(0.25)
    cpu_s = time.process_time() - cpu0
    stopping.set()
    probe.cancel()
    for task in readers:
        task.cancel()
    await asyncio.gather(
        *(asyncio.wait_for(ws.close(), 5) for ws in sockets if ws), return_exceptions=True
    )
    return {
        "connected": connected,
        "connect_errors": connect_errors,
        "connect_ms": list(connect_ms),
        "sent_at": [a.tobytes() for a in sent_at],
        "acked_at": [a.tobytes() for a in acked_at],
        "outcome": [a.tobytes() for a in outcome],
        "cells": cells,
        "reasons": reasons,
        "closed": closed,
        "loop_lag": lag,
        "cpu_s": cpu_s,
    }


def maps_main(cpus, *args) -> None:
    """Spawned: map_latency's map-client process, pinned, on uvloop."""
    pin(cpus)
    raise_nofile()
    use_uvloop()
    map_latency.client_proc_main(*args)


# --- Servers ----------------------------------------------------------------------------------


def start_servers(ports, env, cpus, tmp: Path, profile_dir: str | None) -> list:
    procs = []
    for port in ports:
        cmd = [
            *_stack.uvicorn_command("o2o.asgi:application", port),
            "--log-level",
            "warning",
            "--backlog",
            "4096",
            "--timeout-graceful-shutdown",
            "5",
        ]
        if profile_dir:  # diagnostics: each server under cProfile (stats written when it stops)
            cmd = [str(_stack.PY), "-m", "cProfile", "-o", f"{profile_dir}/server{port}.prof", *cmd]
        fh = open(tmp / f"server{port}.log", "w")  # noqa: SIM115 - closed with the process

        def setup(cpus=cpus):
            pin(cpus)
            raise_nofile()

        proc = subprocess.Popen(
            cmd,
            cwd=_stack.ROOT,
            env={**os.environ, **env},
            stdout=fh,
            stderr=subprocess.STDOUT,
            preexec_fn=setup,  # noqa: PLW1509 - affinity and fd limit before exec, nothing else
        )
        proc._bench_log = fh  # type: ignore[attr-defined]
        procs.append(proc)
    return procs


def spy_on(servers, ports, out_dir: str, duration: float) -> list:
    """py-spy record (collapsed stacks, every thread, non-blocking) of each server for the run."""
    spy = _stack.ROOT / ".venv" / "bin" / "py-spy"
    if not spy.exists():
        log("py-spy is not installed (.venv/bin/pip install py-spy): no sampling")
        return []
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [str(spy), "record", "--pid", str(proc.pid), "--duration", str(int(duration)),
             "--rate", "50", "--nonblocking", "--threads", "--format", "raw",
             "--output", f"{out_dir}/server{port}.txt"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for proc, port in zip(servers, ports, strict=True)
    ]  # fmt: skip


def proc_cpu(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_pids() -> list[int]:
    """PostgreSQL backends serving this benchmark's database (their CPU is ours)."""
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", **_stack.PG)
    with conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [DB_NAME])
        pids = [row[0] for row in cur.fetchall()]
    conn.close()
    return pids


def redis_cpu(client) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# --- The run ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 vendors, 100 maps, 15 s")
    parser.add_argument("--vendors", type=int)
    parser.add_argument("--maps", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--cross-fraction", type=float, default=0.2)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--server-cpus", default="1", help="CPUs the servers run on ('' = any)")
    parser.add_argument("--client-cpu", default="0", help="CPU the load generator runs on")
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--server-profile", help="a directory: each server under cProfile")
    parser.add_argument(
        "--py-spy",
        help="a directory: py-spy (if installed) samples each server, every thread, while the "
        "phones ping (collapsed stacks, server<port>.txt)",
    )
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    n_vendors = args.vendors or (1_000 if args.quick else 11_000)
    n_maps = args.maps if args.maps is not None else (100 if args.quick else 1_000)
    duration = args.seconds or (15.0 if args.quick else 300.0)
    n_pings = int(duration // PING_EVERY_S)
    server_cpus = {int(c) for c in args.server_cpus.split(",") if c != ""}
    client_cpus = {int(c) for c in args.client_cpu.split(",") if c != ""}
    wall0 = time.monotonic()
    load_start = [round(x, 2) for x in os.getloadavg()]
    uptime_start = uptime()
    raise_nofile()

    run_id = f"{os.getpid():x}{int(time.time()) % 100000:05d}"
    prefix = f"bench-fleet-{run_id}"
    env = _stack.setup_stack(DB_NAME, redis_db=REDIS_DB, prefix=prefix)
    import h3
    import redis
    from django.conf import settings
    from django.db import connection

    from tracking.models import VendorPosition
    from vendors.models import Vendor

    rds = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    rng = random.Random(args.seed)
    res, group_res = settings.PUBLIC_CELL_RES, settings.MAP_GROUP_RES
    fleet = plan_fleet(rng, n_vendors, args.cross_fraction, res, group_res)
    slug_prefix = f"fl{run_id}"
    log(f"seeding {n_vendors} vendors over {AREA} and their sessions")
    seeded = _stack.seed_vendors(
        [fleet_point(kind, spec, -1) for kind, spec in fleet],
        slug_prefix=slug_prefix,
        stock_fraction=0.1,
        rng=rng,
    )
    users = dict(Vendor.objects.filter(pk__in=[v for v, _s in seeded]).values_list("pk", "user_id"))
    session_keys = seed_sessions([users[v] for v, _s in seeded])
    # No stationary anchor yet: the first ping sets it, so a walking cart never stands still (it
    # leaves the anchor's 40 m within 8 pings) and no presence change makes a delta of its own.
    VendorPosition.objects.update(anchor_lat=None, anchor_lng=None, anchor_at=None)
    _stack.analyze(["tracking_vendorposition", "vendors_vendor", "vendors_stock", "django_session"])
    connection.close()
    seed_cells = [h3.latlng_to_cell(*fleet_point(k, s, -1), res) for k, s in fleet]

    tmp = Path(tempfile.mkdtemp(prefix="bench_fleet_"))
    ports = [PORT + s for s in range(args.servers)]
    env = {
        **env,
        # Every socket of the bench comes from 127.0.0.1: lift the per-address cap on map sockets
        # (8 by default, a protection against one abusive client) above those opened.
        "MAP_SOCKETS_PER_ADDRESS": str(max(n_maps + 10, 8)),
        # No heartbeat during the run: the only deltas are cell changes, each known from its ack.
        "HEARTBEAT_S": "3600",
    }
    servers = start_servers(ports, env, server_cpus, tmp, args.server_profile)
    result: dict = {
        "benchmark": "fleet",
        "mode": "quick" if args.quick else "full",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "target": f"send->frame p95 < {TARGET_P95_MS:g} ms, p99 < {TARGET_P99_MS:g} ms; 0 lost "
        "deltas, 0 refused pings, 0 failed connects",
        "pass": False,
    }
    procs: list[mp.Process] = []
    try:
        for proc, port in zip(servers, ports, strict=True):
            up_s = map_latency.wait_healthy(proc, port, timeout_s=60)
            log(f"server :{port} healthy after {up_s:.1f}s, pid {proc.pid}, cpus {server_cpus}")
        ctx = mp.get_context("spawn")
        ready_q, go, stop = ctx.Queue(), ctx.Event(), ctx.Event()
        start_at = ctx.Value("d", 0.0)
        phases = [rng.uniform(0, PING_EVERY_S) for _ in range(n_vendors)]
        # Spread evenly over the period: vendor i starts at i/n of it (shuffled across servers).
        order = list(range(n_vendors))
        rng.shuffle(order)
        for rank, i in enumerate(order):
            phases[i] = PING_EVERY_S * rank / n_vendors
        vendors = [
            (slug, ports[i % len(ports)], session_keys[i], phases[i], *fleet[i])
            for i, (_vid, slug) in enumerate(seeded)
        ]
        phones = ctx.Process(
            target=phones_main,
            args=(
                client_cpus,
                vendors,
                n_pings,
                args.connect_concurrency,
                ready_q,
                go,
                start_at,
                stop,
                str(tmp / "phones.pickle"),
            ),
            daemon=True,
        )
        bboxes = [map_latency.random_bbox(rng, AREA) for _ in range(n_maps)]
        map_procs = min(len(ports), n_maps)
        last_msgs = [ctx.RawValue("d", 0.0) for _ in range(map_procs)]
        for k in range(map_procs):
            port = ports[k]
            assigned = [(i, bboxes[i]) for i in range(k, n_maps, map_procs)]
            p = ctx.Process(
                target=maps_main,
                args=(
                    client_cpus,
                    k,
                    f"ws://127.0.0.1:{port}/ws/map/",
                    f"http://127.0.0.1:{port}",
                    assigned,
                    slug_prefix + "-",
                    20,
                    ready_q,
                    go,
                    stop,
                    last_msgs[k],
                    str(tmp / f"maps{k}.pickle"),
                    600.0,
                ),
                daemon=True,
            )
            p.start()
            procs.append(p)

        # The map sockets first (their snapshots), then the phones: both go through each server's
        # one sync thread (snapshot reads; the session, user and vendor at a phone's connect).
        t_open = time.monotonic()
        waiting, maps_connected, phones_connected = map_procs, 0, 0
        phones_started = False
        while waiting or not phones_started:
            if not waiting:
                log(f"{maps_connected}/{n_maps} map sockets open; opening {n_vendors} phones")
                phones.start()
                procs.append(phones)
                phones_started, waiting = True, 1
            if time.monotonic() - t_open > 600:
                raise RuntimeError("the clients did not connect in 10 min")
            try:
                who, ok, _n, _s = ready_q.get(timeout=0.5)
            except queue.Empty:
                if any(not p.is_alive() for p in procs):
                    raise RuntimeError("a client process died while connecting") from None
                continue
            waiting -= 1
            if who == "phones":
                phones_connected = ok
            else:
                maps_connected += ok
        connect_s = time.monotonic() - t_open
        log(
            f"{phones_connected}/{n_vendors} vendor sockets and {maps_connected}/{n_maps} map "
            f"sockets open in {connect_s:.1f}s; pinging for {duration:g}s"
        )
        t_start = time.time() + 1.0
        start_at.value = t_start
        pg_pids = backend_pids()
        cpu0 = {
            "servers": [proc_cpu(p.pid) for p in servers],
            "postgres": {pid: proc_cpu(pid) for pid in pg_pids},
            "redis": redis_cpu(rds),
        }
        go.set()
        spies = spy_on(servers, ports, args.py_spy, duration) if args.py_spy else []
        load_mid = None
        while phones.is_alive() and time.time() < t_start + duration + 60:
            if load_mid is None and time.time() > t_start + duration / 2:
                load_mid = [round(x, 2) for x in os.getloadavg()]
            phones.join(timeout=0.5)
        t_end = time.time()
        # Drain: until 2 s without a map message, at most 15 s.
        while time.time() - t_end < 15:
            if time.time() - max([t_end, *(v.value for v in last_msgs)]) > 2.0:
                break
            time.sleep(0.1)
        busy_s = max(time.time() - t_start, 1e-6)
        cpu1 = {
            "servers": [proc_cpu(p.pid) for p in servers],
            "postgres": {pid: proc_cpu(pid) for pid in backend_pids()},
            "redis": redis_cpu(rds),
        }
        stop.set()
        for p in procs:
            p.join(timeout=60)
        for spy in spies:
            spy.wait(timeout=60)
        result.update(
            analyse(
                tmp=tmp,
                vendors=vendors,
                seeded=seeded,
                seed_cells=seed_cells,
                n_pings=n_pings,
                n_maps=n_maps,
                map_procs=map_procs,
                bboxes=bboxes,
                group_res=group_res,
                busy_s=busy_s,
                cpu0=cpu0,
                cpu1=cpu1,
                t_start=t_start,
            )
        )
        result.update(
            {
                "vendors": n_vendors,
                "maps": n_maps,
                "seconds": duration,
                "cross_fraction": args.cross_fraction,
                "servers": len(ports),
                "server_cpus": sorted(server_cpus),
                "client_cpu": sorted(client_cpus),
                "connect_s": round(connect_s, 1),
                "loadavg_mid": load_mid,
            }
        )
    except Exception as exc:  # noqa: BLE001 - reported in the JSON line, exit status 1
        import traceback

        traceback.print_exc()
        result["error"] = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        codes = []
        for proc in servers:
            # SIGINT under cProfile: it ends in KeyboardInterrupt, and cProfile writes its stats.
            codes.append(
                map_latency.stop_server(
                    proc, signal.SIGINT if args.server_profile else signal.SIGTERM
                )
            )
        result["server_exit"] = codes
        errors = 0
        for port in ports:
            text = (tmp / f"server{port}.log").read_text(errors="replace")
            errors += text.count("Traceback")
            if "error" in result:
                for line in text.splitlines()[-10:]:
                    log(f"  server {port}| {line}")
        result["server_log_tracebacks"] = errors
        log(f"servers stopped (exit {codes}); logs in {tmp}")
        if not args.keep_db:
            _stack.drop_database(DB_NAME)
        result["redis_keys_deleted"] = _stack.redis_cleanup(prefix, REDIS_DB)
    result["loadavg_start_end"] = [load_start, [round(x, 2) for x in os.getloadavg()]]
    result["uptime_start_end"] = [uptime_start, uptime()]
    result["wall_s"] = round(time.monotonic() - wall0, 1)
    _stack.emit(result)
    return 1 if "error" in result else 0


def analyse(
    *,
    tmp,
    vendors,
    seeded,
    seed_cells,
    n_pings,
    n_maps,
    map_procs,
    bboxes,
    group_res,
    busy_s,
    cpu0,
    cpu1,
    t_start,
) -> dict:
    """The figures from what the phones and the map clients wrote."""
    import h3

    phones = pickle.loads((tmp / "phones.pickle").read_bytes())
    # Every ping as map_latency.match_upserts takes it: [slug, -, new cell, its coarse cell, send
    # time, -, -, accepted, a delta (the public cell changed), reason].
    records: list[list] = []
    sent = acked = 0
    send_lag, ack_ms = [], []
    no_answer = 0
    for i, (slug, *_r) in enumerate(vendors):
        sent_at, acked_at, outcome = array("d"), array("d"), array("b")
        sent_at.frombytes(phones["sent_at"][i])
        acked_at.frombytes(phones["acked_at"][i])
        outcome.frombytes(phones["outcome"][i])
        phase = vendors[i][3]
        previous = seed_cells[i]
        for k in range(n_pings):
            if sent_at[k] == 0.0:
                continue
            sent += 1
            send_lag.append((sent_at[k] - (t_start + phase + k * PING_EVERY_S)) * 1000)
            if outcome[k] == NO_ANSWER:
                no_answer += 1
                continue
            ack_ms.append((acked_at[k] - sent_at[k]) * 1000)
            if outcome[k] != ACK:
                continue
            acked += 1
            cell = phones["cells"][i][k]
            changed = cell != previous
            previous = cell
            coarse = h3.cell_to_parent(cell, group_res) if changed else ""
            records.append([slug, "", cell, coarse, sent_at[k], 0, acked_at[k], True, changed, ""])

    received: dict = {}
    infos: list[dict] = [{} for _ in range(n_maps)]
    maps_cpu, lag_maps, messages, upserts, removes, foreign = 0.0, [], 0, 0, 0, 0
    for k in range(map_procs):
        data = pickle.loads((tmp / f"maps{k}.pickle").read_bytes())
        for i, info in data["infos"].items():
            infos[i] = info
        for key, raw in data["received"].items():
            times = array("d")
            times.frombytes(raw)
            received[key] = times
        maps_cpu += data["cpu_s"]
        lag_maps.extend(data["loop_lag"])
        messages += data["messages"]
        upserts += data["upserts"]
        removes += data["removes"]
        foreign += data["foreign"]
    subscribers: dict[str, int] = {}
    for info in infos:
        for cell in info.get("cells", ()):
            subscribers[cell] = subscribers.get(cell, 0) + 1
    deltas = [r for r in records if r[8]]
    expected = sum(subscribers.get(r[3], 0) for r in deltas)
    delivered, latencies, too_late = map_latency.match_upserts(records, received)
    matched = sum(
        min(delivered[n][0], subscribers.get(r[3], 0))
        for n, r in enumerate(records)
        if r[8] and n in delivered
    )
    by_window: dict[int, list[float]] = {}
    after_ack, ack_of_delta = [], []
    for n, r in enumerate(records):
        seen = delivered.get(n)
        if r[8] and seen:
            by_window.setdefault(int((r[4] - t_start) // WINDOW_S), []).append(
                (seen[2] - r[4]) * 1000
            )
            # The stages: send -> ack (the batcher's wait, the batch's transaction, the ack), then
            # ack -> the first map frame (the broadcast after commit, Redis, the hub's flush).
            ack_of_delta.append((r[6] - r[4]) * 1000)
            after_ack.append((seen[1] - r[6]) * 1000)
    lat = _stack.percentiles(latencies, 1)
    server_cpu = [b - a for a, b in zip(cpu0["servers"], cpu1["servers"], strict=True)]
    pg_cpu = sum(cpu1["postgres"][pid] - cpu0["postgres"].get(pid, 0.0) for pid in cpu1["postgres"])
    total_server = sum(server_cpu)
    lost = expected - matched
    refused = sum(n for r, n in phones["reasons"].items() if not r.startswith("unknown"))
    scheduled = phones["connected"] * n_pings
    send_lag_p = _stack.percentiles(send_lag, 1)
    p95, p99 = lat.get("p95"), lat.get("p99")
    maps_connected = sum(1 for i in infos if "cells" in i)
    map_errors: dict[str, int] = {}
    for info in infos:
        if "error" in info:
            map_errors[info["error"]] = map_errors.get(info["error"], 0) + 1
    connect_failed = len(vendors) - phones["connected"]
    return {
        "latency_send_to_frame_ms": lat,
        "deltas_expected": expected,
        "deltas_delivered": matched,
        "deltas_lost": lost,
        "upserts_unmatched_or_duplicate": upserts - matched,
        "upserts_later_than_cycle": too_late,
        "foreign_upserts": foreign,
        "removes": removes,
        "pings_scheduled": scheduled,
        "pings_sent": sent,
        "pings_acked": acked,
        "pings_refused": refused,
        "pings_unanswered": no_answer,
        "ping_outcomes": phones["reasons"],
        "phone_socket_errors": phones["closed"],
        "pings_per_s": round(sent / busy_s, 1),
        "pings_with_a_delta": len(deltas),
        "delta_fraction_of_pings": round(len(deltas) / max(acked, 1), 3),
        "deliveries_per_s": round(matched / busy_s, 1),
        "map_messages": messages,
        "deltas_per_map_message": round((upserts + removes) / max(messages, 1), 1),
        "subscribers_per_delta_mean": round(expected / max(len(deltas), 1), 1),
        "coarse_cells_per_map_mean": round(
            sum(len(i.get("cells", ())) for i in infos) / max(maps_connected, 1), 1
        ),
        "ack_ms": _stack.percentiles(ack_ms, 1),
        "stage_send_to_ack_ms_of_deltas": _stack.percentiles(ack_of_delta, 1),
        "stage_ack_to_first_frame_ms": _stack.percentiles(after_ack, 1),
        f"last_delivery_p95_ms_by_{WINDOW_S}s": [
            _stack.percentiles(by_window[w], 1).get("p95") for w in sorted(by_window)
        ],
        "send_lag_ms": send_lag_p,
        "vendor_connect_failed": connect_failed,
        "vendor_connect_errors": phones["connect_errors"],
        "vendor_connect_ms": _stack.percentiles(phones["connect_ms"], 1),
        "maps_connected": maps_connected,
        "map_errors": map_errors,
        "busy_s": round(busy_s, 1),
        "cpu_s": {
            "servers": [round(c, 1) for c in server_cpu],
            "postgres_backends": round(pg_cpu, 1),
            "redis_server": round(cpu1["redis"] - cpu0["redis"], 1),
            "phones": round(phones["cpu_s"], 1),
            "maps": round(maps_cpu, 1),
        },
        "cpu_pct_of_a_core": {
            "servers": [round(100 * c / busy_s, 1) for c in server_cpu],
            "postgres_backends": round(100 * pg_cpu / busy_s, 1),
            "redis_server": round(100 * (cpu1["redis"] - cpu0["redis"]) / busy_s, 1),
            "phones": round(100 * phones["cpu_s"] / busy_s, 1),
            "maps": round(100 * maps_cpu / busy_s, 1),
        },
        # For sizing: the servers' CPU over the pings they answered, and over the deltas they
        # delivered (both figures carry all of the servers' work; see bench/README.md).
        "server_cpu_ms_per_ping": round(1000 * total_server / max(acked, 1), 3),
        "server_cpu_ms_per_delivered_delta": round(1000 * total_server / max(matched, 1), 3),
        "postgres_cpu_ms_per_ping": round(1000 * pg_cpu / max(acked, 1), 3),
        "client_loop_lag_ms": {
            "phones": _stack.percentiles(phones["loop_lag"], 1),
            "maps": _stack.percentiles(lag_maps, 1),
        },
        "client_loop": phones.get("loop"),
        "pass": bool(
            p95 is not None
            and p95 < TARGET_P95_MS
            and p99 < TARGET_P99_MS
            and lost == 0
            and refused == 0
            and no_answer == 0
            and connect_failed == 0
            and maps_connected == n_maps
            and sent >= 0.99 * len(vendors) * n_pings
        ),
    }


if __name__ == "__main__":
    sys.exit(main())
