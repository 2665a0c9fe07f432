"""A city's lunch rush over HTTP (issue #18 item 2): customers order and pay through the phone
pages at a constant arrival rate, vendors work their inboxes and stock, and vendor phones ping
over their websockets beside it.

    .venv/bin/python bench/lunch_rush.py --quick          # 2 orders/s offered for 12 s, 200 sockets
    .venv/bin/python bench/lunch_rush.py                  # step search, then 100 orders/s
    .venv/bin/python bench/lunch_rush.py --rate 8 --seconds 60 --steps none

Target (issue #18): 100 orders/s offered, p99 < 500 ms for every request of the journey, 0
errors, beside 1,000 pings/s on the vendor sockets (5,000 sockets pinging every 5 s); the
correctness counters (oversold, double captures, unbalanced ledger, lost deltas, stuck money)
zero. On this 2-core machine, load generator included, 100/s is out of reach: the run also
searches for the highest rate at which the request targets hold (--steps, ascending, each for
--step-seconds; the search stops at the first rate that fails).

The stack, as production runs it (docker-compose.yml): `uvicorn --workers 2` on port 8795 serving
the platform and the sandbox payment provider (bench/_rush_asgi.py: the project's ASGI app with
at most RUSH_MAX_REQUESTS page/API requests in Django at once per process, the rest queued, so
the two processes stay within PostgreSQL's max_connections; the sandbox's own API and webhooks
are outside that bound, since a page request waits on them), one Celery worker (`-c 2`, every
queue) and beat (DatabaseScheduler), so captures, settlement postings and notifications run as
they would. Own database `bench_o2o_rush` (shared PostgreSQL on 5432; copied from
the benchmarks' migrated template database, `_stack.migrate`), Redis
db 11 (FLUSHDB at the start), channel prefix `rush`.

The load generator, pinned to one core (the last) with sched_setaffinity: locust headless
(bench/_locust_lunch.py: the journeys, an open arrival model; see there) and bench/_pings.py
(asyncio + websockets: the vendor sockets and a few map sockets counting deltas), two processes.
Every user starts signed in: the seed bulk-inserts a Django session for every customer and vendor.
All clients come from 127.0.0.1, so the per-address limits (API throttles, map sockets per
address) are lifted for the run; a city's phones come from many addresses.

After the load: the pings stop (their figures: acks, lost deltas), beat's effect sweeps drain the
backlog, one convergence runs (as beat would), and the database is audited: oversold (a stock
row below zero, or a cart's units not adding up: initial + top-ups = on the cart + in orders that
hold or took units), double captures (a payment captured above its amount, more than one capture
posting per payment, a provider intent over-captured), unbalanced ledger transactions, stuck
money (bench/faults.py's money_state after the sweep and the convergence), and the invariants.

Progress on stderr; one JSON object on the last line of stdout. Logs: test-artifacts/rush-*.
Everything started is stopped on the way out (Ctrl-C too).
"""

import argparse
import contextlib
import csv
import json
import math
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack  # noqa: E402
from _stack import ROOT, log  # noqa: E402
from faults import (  # noqa: E402
    Proc,
    _fresh_db,
    log_findings,
    money_state,
    provider_agreement,
    queue_lengths,
    wait_effects_swept,
)
from map_latency import random_bbox, vendor_sides  # noqa: E402
from order_placement import wait_for_services  # noqa: E402

DB = "bench_o2o_rush"
REDIS_DB = 11
PORT = 8795  # 8781-8782 are the fleet benchmark's (bench/fleet.py)
BASE = f"http://127.0.0.1:{PORT}"
BIN = ROOT / ".venv" / "bin"
ARTIFACTS = ROOT / "test-artifacts"
PACING_S = 30.0  # a customer's journeys start this far apart (users = rate x pacing)
PING_EVERY_S = 5.0
MAX_REQUESTS = int(
    os.environ.get("RUSH_MAX_REQUESTS", "8")
)  # per web process (bench/_rush_asgi.py)
STOCK = 5_000  # units of each of a cart's 5 products at the start
P99_TARGET_MS = 500.0


# --- the world ----------------------------------------------------------------------------------


def sessions(users) -> list[str]:
    """A signed-in Django session for each user, bulk-inserted (no login: axes' lockouts and the
    password hash would be the load). Returns the session keys, in order."""
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    store = SessionStore()
    expire = timezone.now() + timedelta(days=1)
    backend = "django.contrib.auth.backends.ModelBackend"
    assert backend in settings.AUTHENTICATION_BACKENDS
    keys, rows = [], []
    for user in users:
        key = secrets.token_hex(16)
        data = {
            "_auth_user_id": str(user.pk),
            "_auth_user_backend": backend,
            "_auth_user_hash": user.get_session_auth_hash(),
        }
        keys.append(key)
        rows.append(Session(session_key=key, session_data=store.encode(data), expire_date=expire))
    Session.objects.bulk_create(rows, batch_size=2_000)
    return keys


def seed(*, customers: int, order_vendors: int, ping_vendors: int) -> dict:
    """Carts that take orders (stocked, round the benches' pickup point), the pinging fleet (each
    at a vertex of three public cells, bench/map_latency.py), customers; a session for each."""
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from customers.models import CustomerProfile
    from o2o.accounts.models import User
    from vendors.models import Stock
    from vendors.services import stock_lots_fill

    rng = random.Random(18)
    near = [
        (_stack.PICKUP[0] + rng.uniform(-0.004, 0.004), _stack.PICKUP[1] + rng.uniform(-0.004, 0.004))
        for _ in range(order_vendors)
    ]  # fmt: skip
    sides = [
        vendor_sides(rng, settings.PUBLIC_CELL_RES, settings.MAP_GROUP_RES)
        for _ in range(ping_vendors)
    ]
    fleet_points = [(s[0][0], s[0][1]) for s in sides]
    sellers = _stack.seed_vendors(near, slug_prefix="rush")
    fleet = _stack.seed_vendors(fleet_points, slug_prefix="rush-fleet")
    now = timezone.now()
    with transaction.atomic():
        _point, _category, products = _stack.pickup_and_snacks(slug="rush")
        carried = {vid: rng.sample([p.pk for p in products], 5) for vid, _slug in sellers}
        Stock.objects.bulk_create(
            [
                Stock(vendor_id=vid, product_id=pid, quantity=STOCK)
                for vid, pids in carried.items()
                for pid in pids
            ]
        )
        stock_lots_fill()  # every row the sum of its lots
        users = User.objects.bulk_create(
            [
                User(
                    email=f"lunch-{i}@bench.test",
                    name=f"Lunch {i}",
                    password="!bench",
                    date_joined=now,
                )
                for i in range(customers)
            ],
            batch_size=2_000,
        )
        CustomerProfile.objects.bulk_create(
            [CustomerProfile(user=u, phone="010-0000-0000") for u in users], batch_size=2_000
        )
    vendor_users = {
        u.vendor.pk: u
        for u in User.objects.filter(
            vendor__pk__in=[v for v, _s in sellers + fleet]
        ).select_related("vendor")
    }
    customer_keys = sessions(users)
    seller_keys = sessions([vendor_users[v] for v, _s in sellers])
    fleet_keys = sessions([vendor_users[v] for v, _s in fleet])
    _stack.analyze(["vendors_stock", "vendors_vendor", "tracking_vendorposition", "django_session"])
    return {
        "customers": customer_keys,
        "vendors": [
            {"id": vid, "slug": slug, "session": key, "lat": lat, "lng": lng}
            for (vid, slug), key, (lat, lng) in zip(sellers, seller_keys, near, strict=True)
        ],
        "fleet": [
            [key, slug, [list(side) for side in s]]
            for (_vid, slug), key, s in zip(fleet, fleet_keys, sides, strict=True)
        ],
        "stock": {f"{v}:{p}": STOCK for v, pids in carried.items() for p in pids},
    }


# --- the processes ------------------------------------------------------------------------------


def loadgen_cpu() -> set[int]:
    cpus = sorted(os.sched_getaffinity(0))
    return {cpus[-1]}


def pin(pid: int, cpus: set[int]) -> None:
    """The process and its threads on `cpus` (locust and the pings: the load generator's core)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task), cpus)


def stack_procs(env: dict, tmp: Path) -> list[Proc]:
    web = Proc(
        "web",
        [str(BIN / "uvicorn"), "_rush_asgi:application", "--app-dir", str(ROOT / "bench"),
         "--host", "127.0.0.1", "--port", str(PORT), "--workers", "2",
         "--log-level", "warning", "--no-access-log", "--ws-per-message-deflate", "false"],
        # CONN_MAX_AGE 0 under ASGI: a connection per request (settings). INFO: channels-redis
        # says at INFO when a group_send found channels over capacity (deltas dropped).
        {**env, "CONN_MAX_AGE": "0", "LOG_LEVEL": "INFO"},
        ARTIFACTS / "rush-web.log",
    )  # fmt: skip
    worker = Proc(
        "worker",
        [str(BIN / "celery"), "-A", "o2o", "worker", "-Q", "money,notifications,bulk", "-c", "2",
         "--pool", "prefork", "--prefetch-multiplier", "1", "--loglevel", "warning",
         "-n", "rush@%h"],
        env,
        ARTIFACTS / "rush-worker.log",
    )  # fmt: skip
    beat = Proc(
        "beat",
        [str(BIN / "celery"), "-A", "o2o", "beat", "--loglevel", "warning",
         "--pidfile", str(tmp / "beat.pid"),
         "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"],
        env,
        ARTIFACTS / "rush-beat.log",
    )  # fmt: skip
    return [web, worker, beat]


def port_free(port: int) -> None:
    """Refuse to start on a port someone else serves (the load would go to their server)."""
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise SystemExit(f"port {port} is taken ({exc}): not starting") from exc


def wait_healthy(web: Proc, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        if not web.alive():
            raise SystemExit(f"uvicorn exited:\n{web.logfile.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{BASE}/healthz", timeout=3).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise SystemExit(f"uvicorn did not answer /healthz:\n{web.logfile.read_text()}")
        time.sleep(0.3)


def warm_up(world: dict, rounds: int = 6) -> float:
    """Every page and API the journeys read, a few times over fresh connections (so both
    workers answer some), before anything is measured: imports, templates, first queries.
    Reads only: no order, no stock change. Returns the seconds it took."""
    import httpx

    t0 = time.monotonic()
    vendor = world["vendors"][0]
    customer = {"sessionid": world["customers"][-1]}
    seller = {"sessionid": vendor["session"]}
    pages = [
        (customer, "/map/"),
        (customer, f"/api/vendors/nearby?lat={vendor['lat']}&lng={vendor['lng']}&radius_m=1000"),
        (customer, f"/vendors/{vendor['slug']}/"),
        (customer, "/orders/cart/"),
        (customer, "/orders/"),
        (seller, "/orders/vendor/"),
        (seller, "/api/vendor/orders/"),
        (seller, "/api/vendors/me/stock/"),
    ]
    for _ in range(rounds):
        for cookies, path in pages:
            with httpx.Client(base_url=BASE, cookies=cookies, timeout=30) as client:
                client.get(path)
    return round(time.monotonic() - t0, 1)


class Pings:
    """bench/_pings.py in its own process, pinned to the load generator's core."""

    def __init__(self, world: dict, sockets: int, maps: int, env: dict, tmp: Path) -> None:
        rng = random.Random(11)
        self.cfg = tmp / "pings-config.json"
        self.status = tmp / "pings-status.json"
        self.result = tmp / "pings-result.json"
        self.cfg.write_text(
            json.dumps(
                {
                    "ws": BASE.replace("http://", "ws://"),
                    "origin": BASE,
                    "every_s": PING_EVERY_S,
                    "vendors": world["fleet"][:sockets],
                    "maps": [random_bbox(rng) for _ in range(maps)],
                }
            )
        )
        self.proc = Proc(
            "pings",
            [str(BIN / "python"), str(ROOT / "bench" / "_pings.py"), str(self.cfg),
             str(self.status), str(self.result)],
            env,
            ARTIFACTS / "rush-pings.log",
        )  # fmt: skip

    def read_status(self) -> dict:
        with contextlib.suppress(OSError, ValueError):
            return json.loads(self.status.read_text())
        return {}

    def start(self, cpus: set[int], timeout: float = 240) -> dict:
        self.proc.start()
        pin(self.proc.proc.pid, cpus)
        deadline = time.monotonic() + timeout
        last = 0.0
        while True:
            status = self.read_status()
            if status.get("phase") == "pinging":
                return status
            if not self.proc.alive():
                raise SystemExit(f"pings exited:\n{self.proc.logfile.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"pings not ready: {status}")
            if time.monotonic() - last > 10:
                last = time.monotonic()
                log(f"  pings: {status}")
            time.sleep(0.5)

    def stop(self) -> dict:
        if self.proc.alive():
            self.proc.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.proc.wait(timeout=180)
        self.proc.stop()
        with contextlib.suppress(OSError, ValueError):
            return json.loads(self.result.read_text())
        return {"error": "no result", "status": self.read_status()}


# --- where the CPU goes -------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (uvicorn's workers, Celery's pool)."""
    import psutil

    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in family:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def machine_busy() -> float:
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + t.steal


# Where a web process's sample goes: the first of these found walking its stack from the top
# (the running function) down, so each sample counts once.
PROFILE_BUCKETS = {
    "DB driver, connect/close (psycopg2, django/db/backends)": ("psycopg2", "django/db/backends/"),
    "ORM (querysets, SQL compiler)": ("django/db/models/", "django/db/transaction.py"),
    "Django templates (render)": ("django/template/", "django/templatetags/"),
    "Redis (cache, channel layer)": ("redis/", "channels_redis/", "django/core/cache/"),
    "httpx (platform -> sandbox API calls)": ("httpx/", "httpcore/"),
    "DRF": ("rest_framework/",),
    "sessions, auth, signing": ("django/contrib/sessions/", "django/contrib/auth/",
                                "django/core/signing.py"),
    "middleware (csrf, csp, locale, messages, axes, whitenoise)": (
        "django/middleware/", "csp/", "axes/", "whitenoise/", "django/contrib/messages/"),
    "i18n, urls, forms, other Django": ("django/",),
    "asgiref (sync <-> async hops)": ("asgiref/",),
    "websockets, channels": ("channels/", "websockets/", "uvicorn/protocols/websockets/"),
    "uvicorn HTTP": ("uvicorn/",),
    "asyncio, threads": ("asyncio/", "concurrent/futures/", "threading.py", "selectors.py"),
    "project code": ("o2o/", "orders/", "vendors/", "payments/", "tracking/", "customers/",
                     "insights/", "subscriptions/", "counter/", "partners/"),
}  # fmt: skip
SKIP_IN_VIEW = ("django/", "rest_framework/", "asgiref/", "functools", "contextlib", "o2o/api.py")


def _frames(stack: str) -> list[str]:
    return [f for f in stack.split(";") if not f.startswith("process ")]


def _view_of(frames: list[str]) -> str:
    """The view a request sample is under: the first frame past Django's handler (and DRF's
    dispatch) that is not Django's, DRF's or a decorator's; else what the process was doing."""
    hops = [i for i, frame in enumerate(frames) if "run_child (asgiref/sync.py)" in frame]
    if hops:  # the innermost hop into a thread is the one the view runs in
        for later in frames[hops[-1] + 1 :]:
            name = later.split(" (", 1)[0]
            if not any(skip in later for skip in SKIP_IN_VIEW) and "<locals>" not in name:
                return later
        return "middleware (in the request's thread)"
    text = ";".join(frames)
    if "tracking/ingest.py" in text:
        return "ping ingest (tracking/ingest.py)"
    if "consumers.py" in text or "websockets" in text or "channels/" in text:
        return "websockets (consumers, channels)"
    return "event loop, other"


def read_profile(path: Path) -> dict:
    """py-spy's raw (collapsed) stacks of the web processes, GIL-holding samples only (Python on
    the CPU): the share per kind of work (each sample once, by its running function) and per
    view, and the functions most often running."""
    if not path.exists():
        return {}
    total = 0
    kinds: Counter = Counter()
    views: Counter = Counter()
    leaf: Counter = Counter()
    for line in path.read_text().splitlines():
        stack, _sp, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = _frames(stack)
        kind = "other"
        for frame in reversed(frames):
            kind = next(
                (k for k, marks in PROFILE_BUCKETS.items() if any(m in frame for m in marks)), ""
            )
            if kind:
                break
        kinds[kind or "other"] += n
        views[_view_of(frames)] += n
        leaf[(frames[-1] if frames else "?")[:120]] += n
    if not total:
        return {}
    pct = lambda n: round(100.0 * n / total, 1)  # noqa: E731
    return {
        "samples": total,
        "by_kind_pct": {k: pct(n) for k, n in kinds.most_common()},
        "by_view_pct": {k: pct(n) for k, n in views.most_common(15)},
        "top_self_pct": {k: pct(n) for k, n in leaf.most_common(15)},
    }


def start_profile(web_pid: int, seconds: float, path: Path, cpus: set[int]):
    """py-spy on the web processes (both workers, not paused: --nonblocking), on the load
    generator's core; only samples holding the GIL (--gil: Python running, not waiting)."""
    spy = BIN / "py-spy"
    if not spy.exists():
        log("py-spy is not installed (pip install py-spy): no profile")
        return None
    proc = subprocess.Popen(
        [str(spy), "record", "--pid", str(web_pid), "--subprocesses", "--nonblocking",
         "--rate", "50", "--gil", "--nolineno", "--format", "raw", "--duration", str(int(seconds)),
         "--output", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    pin(proc.pid, cpus)
    return proc


# --- one rate -----------------------------------------------------------------------------------


def read_stats(prefix: Path) -> dict:
    """locust's per-request figures (its CSV: percentiles are its rounded buckets)."""
    steps = {}
    with open(f"{prefix}_stats.csv") as fh:
        for row in csv.DictReader(fh):
            name = row["Name"] if row["Type"] else "all requests"
            steps[name] = {
                "n": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "p50": float(row["50%"]),
                "p95": float(row["95%"]),
                "p99": float(row["99%"]),
                "max": round(float(row["Max Response Time"])),
            }
    failures = []
    with contextlib.suppress(OSError), open(f"{prefix}_failures.csv") as fh:
        failures = [
            f"{r['Occurrences']} x {r['Method']} {r['Name']}: {r['Error'][:160]}"
            for r in csv.DictReader(fh)
        ]
    return {"steps": steps, "failures": failures[:10]}


def run_rate(world: dict, *, rate: float, seconds: float, tmp: Path, cpus: set[int], env: dict,
             label: str, meter: dict[str, int], vendor_drain_s: float,
             profile: bool = False) -> dict:  # fmt: skip
    """One constant-rate run of locust; its figures and a verdict. `meter`: the processes whose
    CPU is counted (name -> pid); vendors go on working `vendor_drain_s` after the window."""
    customers = math.ceil(rate * PACING_S)
    if customers > len(world["customers"]):
        raise SystemExit(f"{customers} customers needed, {len(world['customers'])} seeded")
    vendors = min(len(world["vendors"]), max(4, math.ceil(2 * rate)))
    spawn = max(50.0, 2 * rate)
    start_after = vendors / spawn + 2.0
    run_world = tmp / f"world-{label}.json"
    run_world.write_text(
        json.dumps(
            {
                "rate": rate,
                "pacing_s": PACING_S,
                "seconds": seconds,
                "start_after_s": start_after,
                "vendor_drain_s": vendor_drain_s,
                "vendors_active": vendors,
                "customers": world["customers"][:customers],
                "vendors": world["vendors"][:vendors],
            }
        )
    )
    result_path = tmp / f"locust-{label}.json"
    prefix = ARTIFACTS / f"rush-locust-{label}"
    cmd = [
        str(BIN / "locust"), "-f", str(ROOT / "bench" / "_locust_lunch.py"), "--headless",
        "-u", str(customers + vendors), "-r", str(spawn),
        "-t", f"{math.ceil(start_after + seconds + vendor_drain_s)}s", "--stop-timeout", "30",
        "--host", BASE, "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    log(f"[{label}] locust: {rate}/s offered for {seconds:.0f} s, {customers} customers, "
        f"{vendors} vendors")  # fmt: skip
    load0 = os.getloadavg()
    cpu0 = {name: cpu_seconds(pid) for name, pid in meter.items()}
    busy0 = machine_busy()
    t0 = time.monotonic()
    spy = None
    profile_path = ARTIFACTS / f"rush-profile-{label}.txt"
    with open(ARTIFACTS / f"rush-locust-{label}.log", "w") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**env, "RUSH_WORLD": str(run_world), "RUSH_RESULT": str(result_path)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        pin(proc.pid, cpus)
        if profile:  # the middle half of the window
            time.sleep(start_after + seconds / 4)
            spy = start_profile(meter["web"], seconds / 2, profile_path, cpus)
        deadline = time.monotonic() + start_after + seconds + vendor_drain_s + 120
        while True:  # wait4: the generator's own CPU comes with its exit
            pid, _status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = 0
                break
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.2)
    wall = time.monotonic() - t0
    cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in meter.items()}
    cpu["locust"] = usage.ru_utime + usage.ru_stime
    busy = machine_busy() - busy0
    if spy is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.wait(timeout=30)
    users = json.loads(result_path.read_text())
    stats = read_stats(prefix)
    window0 = users["t0"] + seconds / 4  # steady state: the last three quarters of the window
    window1 = users["t0"] + seconds
    steady = sum(1 for t in users["done_at"] if window0 <= t <= window1)
    achieved = steady / (window1 - window0)
    unfinished = users["started"] - users["completed"] - sum(users["failed"].values())
    lag = _stack.percentiles(users["lag_ms"], 0)
    request_failures = stats["steps"].get("all requests", {}).get("failures", 0)
    worst_p99 = max(
        (s["p99"] for name, s in stats["steps"].items() if name != "all requests"), default=0
    )
    figures = {
        "label": label,
        "offered_orders_per_s": rate,
        "seconds": seconds,
        "journeys_scheduled": users["scheduled"],
        "journeys_completed": users["completed"],
        "journeys_failed": users["failed"],
        "journeys_unfinished": unfinished,
        "achieved_orders_per_s": round(achieved, 2),
        "achieved_over_whole_window": round(
            sum(1 for t in users["done_at"] if users["t0"] <= t <= window1) / seconds, 2
        ),
        "journey_ms": _stack.percentiles(users["journey_ms"], 0),
        "start_lag_ms": lag,
        "customers": customers,
        "vendors": vendors,
        "vendor_actions": users["vendor"],
        "requests": stats["steps"],
        "request_failures": request_failures,
        "failures_sample": stats["failures"],
        "worst_step_p99_ms": worst_p99,
        "wall_s": round(wall, 1),
        # CPU seconds over the run (window + vendors' drain), and per completed journey; the
        # machine's busy CPU includes PostgreSQL and whatever else runs on it.
        "cpu_s": {name: round(v, 1) for name, v in {**cpu, "machine": busy}.items()},
        "cpu_ms_per_order": {
            name: round(1000 * v / max(1, users["completed"]))
            for name, v in {**cpu, "machine": busy}.items()
        },
        "cpu_machine_pct_of_2_cores": round(100 * busy / (2 * wall), 1),
        "profile": read_profile(profile_path) if profile else None,
        "loadavg_start_end": [round(load0[0], 2), round(os.getloadavg()[0], 2)],
        "topped_up": users["topped_up"],
    }
    figures["pass"] = bool(
        request_failures == 0
        and not users["failed"]
        and unfinished == 0
        and worst_p99 < P99_TARGET_MS
        and achieved >= 0.95 * rate
    )
    log(
        f"[{label}] offered {rate}/s, achieved {achieved:.2f}/s; journeys "
        f"{users['completed']}/{users['scheduled']} (failed {users['failed']}, unfinished "
        f"{unfinished}); worst step p99 {worst_p99:.0f} ms; request failures {request_failures}; "
        f"start lag p99 {lag.get('p99')} ms -> {'pass' if figures['pass'] else 'FAIL'}"
    )
    return figures


# --- correctness --------------------------------------------------------------------------------


def audit(world: dict, topped_up: Counter) -> dict:
    from django.db.models import Count, F, Sum

    from o2o.invariants import check_invariants
    from orders.models import Order, OrderLine, Status
    from payments import ledger
    from payments.models import JournalKind, JournalTransaction, Payment
    from payments.sandbox.models import SandboxIntent
    from vendors.models import Stock

    try:
        released = (Status.CANCELLED, Status.REJECTED, Status.EXPIRED, Status.FAILED)
        taken = Counter(
            {
                f"{r['order__vendor_id']}:{r['product_id']}": r["n"]
                for r in OrderLine.objects.exclude(order__status__in=released)
                .values("order__vendor_id", "product_id")
                .annotate(n=Sum("quantity"))
            }
        )
        final = {
            f"{v}:{p}": q for v, p, q in Stock.objects.values_list("vendor_id", "product_id", "quantity")
        }  # fmt: skip
        initial = world["stock"]
        negative = sum(1 for q in final.values() if q < 0)
        off = [
            f"{k}: initial {initial[k]} + topped up {topped_up[k]} != on the cart {final.get(k)}"
            f" + in orders {taken[k]}"
            for k in initial
            if initial[k] + topped_up[k] != final.get(k, 0) + taken[k]
        ]
        captures = (
            JournalTransaction.objects.filter(kind=JournalKind.CAPTURE, payment__isnull=False)
            .values("payment_id")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .count()
        )
        over = Payment.objects.filter(amount_captured__gt=F("amount")).count()
        intents_over = SandboxIntent.objects.filter(amount_captured__gt=F("amount")).count()
        report = check_invariants()
        orders = dict(Order.objects.values_list("status").annotate(n=Count("id")).order_by())
        return {
            "oversold": negative + len(off),
            "oversold_detail": {"negative_rows": negative, "units_not_adding_up": off[:5]},
            "double_captures": captures + over + intents_over,
            "double_captures_detail": {
                "payments_with_2+_capture_postings": captures,
                "payments_captured_above_amount": over,
                "provider_intents_captured_above_amount": intents_over,
            },
            "unbalanced_ledger": len(ledger.unbalanced_transactions()),
            "invariants_ok": report.ok,
            "invariants_problems": report.counts(),
            "invariants_sample": {k: v[:3] for k, v in report.problems.items()},
            "orders_by_status": orders,
        }
    finally:
        _fresh_db()


def drain(redis_url: str) -> dict:
    """Beat's sweeps run what is due; one convergence as beat would run it; the money state."""
    from orders.services import orders_converge

    backlog = queue_lengths(redis_url)
    swept_s = wait_effects_swept(at_least=6.0, at_most=180.0, redis_url=redis_url)
    try:
        converged = orders_converge()
    finally:
        _fresh_db()
    swept_again_s = wait_effects_swept(at_least=2.0, at_most=60.0, redis_url=redis_url)
    money = money_state()
    return {
        "broker_backlog_at_load_stop": backlog,
        "effects_sweep_wait_s": swept_s,
        "orders_converge_run": converged,
        "effects_sweep_again_s": swept_again_s,
        "money": money,
    }


def capture_lag() -> dict:
    from orders.models import Order

    try:
        return _stack.percentiles(
            [
                (done - handed).total_seconds()
                for done, handed in Order.objects.filter(
                    completed_at__isnull=False, handed_over_at__isnull=False
                ).values_list("completed_at", "handed_over_at")
            ],
            1,
        )
    finally:
        _fresh_db()


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2/s for 12 s, 200 sockets")
    parser.add_argument("--rate", type=float, default=None, help="orders/s offered (100)")
    parser.add_argument("--seconds", type=float, default=None, help="at --rate (120)")
    parser.add_argument(
        "--steps",
        default=None,
        help="rates of the sustainable-rate search, ascending, comma-separated, or 'none' "
        "(default 0.25,0.5,1,1.5,2,3,4,6,8; none with --quick)",
    )
    parser.add_argument("--step-seconds", type=float, default=40.0)
    parser.add_argument("--sockets", type=int, default=None, help="vendor sockets (5000)")
    parser.add_argument("--maps", type=int, default=None, help="map sockets (10)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy on the web processes over the middle half of the --rate run (on by default "
        "without --quick)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    rate = args.rate or (2.0 if args.quick else 100.0)
    seconds = args.seconds or (12.0 if args.quick else 120.0)
    steps_arg = args.steps or ("none" if args.quick else "0.25,0.5,1,1.5,2,3,4,6,8")
    steps = [] if steps_arg == "none" else [float(s) for s in steps_arg.split(",")]
    sockets = args.sockets if args.sockets is not None else (200 if args.quick else 5000)
    maps = args.maps if args.maps is not None else (4 if args.quick else 10)
    max_rate = max([rate, *steps])
    load_start = os.getloadavg()
    t_start = time.monotonic()

    def on_term(_signo, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in ("web", "worker", "beat", "pings"):  # this run's logs only
        (ARTIFACTS / f"rush-{name}.log").write_text("")
    tmp = Path(tempfile.mkdtemp(prefix="o2o-rush-"))
    procs: list[Proc] = []
    pings: Pings | None = None
    result: dict = {}
    try:
        port_free(PORT)
        wait_for_services()
        extra = {
            "SANDBOX_BASE_URL": BASE,
            "PLATFORM_BASE_URL": BASE,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "SANDBOX_WEBHOOK_DUPLICATE_RATE": "0",
            "CHANNELS_PREFIX": "rush",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            # Every client is 127.0.0.1 here; a city's phones are not.
            "THROTTLE_ANON": "1000000/min",
            "THROTTLE_USER": "1000000/min",
            "MAP_SOCKETS_PER_ADDRESS": "100000",
            "RUSH_MAX_REQUESTS": str(MAX_REQUESTS),
            "PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}",
        }
        os.environ.update(extra)
        env = {**os.environ, **_stack.setup_stack(DB, redis_db=REDIS_DB), **extra}
        redis_url = env["REDIS_URL"]
        customers = math.ceil(max_rate * PACING_S)
        order_vendors = max(4, math.ceil(2 * max_rate))
        log(f"seeding {customers} customers, {order_vendors} carts taking orders, "
            f"{sockets} pinging carts, a session each")  # fmt: skip
        procs = stack_procs(env, tmp)
        for proc in procs:  # they boot while the seed is made
            proc.start()
        world = seed(customers=customers, order_vendors=order_vendors, ping_vendors=sockets)
        _fresh_db()
        wait_healthy(procs[0])
        log(f"stack up: uvicorn --workers 2 on {BASE}, worker -c 2, beat; warming up")
        log(f"warmed up in {warm_up(world, rounds=2 if args.quick else 6)} s")
        cpus = loadgen_cpu()
        t_pings = time.monotonic()
        pings = Pings(world, sockets, maps, env, tmp)
        opened = pings.start(cpus)
        log(f"pings: {opened} ({time.monotonic() - t_pings:.1f} s to open)")
        meter = {p.name: p.proc.pid for p in [*procs, pings.proc] if p.proc is not None}
        drain_s = 3.0 if args.quick else 20.0

        runs = []
        sustainable = None
        for step in steps:
            run = run_rate(world, rate=step, seconds=args.step_seconds, tmp=tmp, cpus=cpus,
                           env=env, label=f"step-{step:g}", meter=meter,
                           vendor_drain_s=drain_s)  # fmt: skip
            runs.append(run)
            wait_effects_swept(at_least=0.0, at_most=60.0, redis_url=redis_url)
            if not run["pass"]:
                break
            sustainable = step
        main_run = run_rate(world, rate=rate, seconds=seconds, tmp=tmp, cpus=cpus, env=env,
                            label=f"rate-{rate:g}", meter=meter, vendor_drain_s=drain_s,
                            profile=args.profile or not args.quick)  # fmt: skip
        runs.append(main_run)
        ping_figures = pings.stop()
        log(f"pings: {ping_figures}")
        alive = {p.name: p.alive() for p in procs}
        log("load stopped; draining the effects")
        drained = drain(redis_url)
        topped: Counter = Counter()
        for run in runs:
            for vid, pid, n in run.pop("topped_up"):
                topped[f"{vid}:{pid}"] += n
        correctness = audit(world, topped)
        provider = provider_agreement()
        counters = {
            "oversold": correctness["oversold"],
            "double_captures": correctness["double_captures"],
            "unbalanced_ledger": correctness["unbalanced_ledger"],
            "lost_deltas": ping_figures.get("deltas_lost", -1),
            "stuck_money": drained["money"]["stuck_total"],
            "payments_vs_provider_mismatch": provider["payments_vs_provider_mismatch"],
        }
        server_errors = log_findings(ARTIFACTS / "rush-web.log")
        web_log = (ARTIFACTS / "rush-web.log").read_text(errors="replace")
        server_errors["channel_layer_messages_dropped_over_capacity"] = sum(
            int(n) for n in re.findall(r"(\d+) of \d+ channels over capacity", web_log)
        )
        server_errors["vendor_sockets_closed_before_an_answer"] = web_log.count(
            "the socket closed before a ping's answer"
        )
        result = {
            "benchmark": "lunch_rush",
            "quick": args.quick,
            "offered_orders_per_s": rate,
            "achieved_orders_per_s": main_run["achieved_orders_per_s"],
            "sustainable_orders_per_s": sustainable,
            "main_run": main_run,
            "steps": runs[:-1],
            "pings": ping_figures,
            "pings_target_per_s": round(sockets / PING_EVERY_S),
            "correctness_counters": counters,
            "correctness": correctness,
            "provider": provider,
            "drain": drained,
            "capture_lag_s": capture_lag(),
            "processes_alive_at_end": alive,
            "logs": {p.name: log_findings(p.logfile) for p in procs},
            "server_log": server_errors,
            "setup": {
                "web": "uvicorn --workers 2 (bench/_rush_asgi.py, "
                f"{MAX_REQUESTS} requests in Django at once per process)",
                "worker": "celery -c 2, every queue",
                "beat": "DatabaseScheduler",
                "load_generator_cpus": sorted(cpus),
                "pacing_s": PACING_S,
                "vendor_sockets": sockets,
                "map_sockets": maps,
            },
            "wall_s": round(time.monotonic() - t_start, 1),
            "loadavg_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
            "target": "100 orders/s offered with p99 < 500 ms for every step and 0 errors beside "
            "1,000 pings/s; correctness counters all 0",
        }
        result["counters_pass"] = all(v == 0 for v in counters.values())
        result["pass"] = bool(
            result["counters_pass"]
            and main_run["pass"]
            and ping_figures.get("pings_per_s", 0) >= 0.95 * sockets / PING_EVERY_S
        )
    except KeyboardInterrupt:
        log("interrupted: stopping everything this run started")
        result = {}
    finally:
        if pings is not None:
            with contextlib.suppress(Exception):
                pings.proc.stop()
        for proc in reversed(procs):
            try:
                proc.stop()
            except Exception as exc:  # noqa: BLE001
                log(f"stopping {proc.name}: {exc}")
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if not args.keep:
            with contextlib.suppress(Exception):
                _stack.drop_database(DB)
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    if not result:
        raise SystemExit(130)
    _stack.emit(result)


if __name__ == "__main__":
    main()
