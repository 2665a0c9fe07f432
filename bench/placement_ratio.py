"""Placement against pgbench (issue #18 item 3): `orders.services.order_place` in-process, from K
threads with a database connection each, beside pgbench's one-row conditional UPDATE, measured
back to back on the same database server in one run.

    .venv/bin/python bench/placement_ratio.py [--quick] [--keep] [--threads 4] [--processes 1]
                                              [--profile]

(a) pgbench, a custom script like the stock reservation:
    \\set id random(1, N)
    UPDATE bench_stock SET quantity = quantity - 1 WHERE id = :id AND quantity >= 1;
    N = 1,000 rows, -c 4 -j 2 -T 10 (quick: -T 3); its tps.
(b) order_place from K = 4 threads for the same length of time: pickup orders of 1-3 lines on
    20 random on-shift vendors with ample stock (1,000,000 of each product), each order its own
    checkout token. Placement alone: no payment provider (the order stays PENDING_PAYMENT), but
    everything order_place does is counted, its after-commit hooks too (the map and stock
    broadcasts, which read the database and send to Redis). The customer is read once per
    thread, as a view has it from the request. Orders/s, latency per placement, the ratio to (a)
    and pass/fail against 25 %.
Also: the queries of one placement (CaptureQueriesContext, after-commit hooks included), each
statement's shape, and with --profile a cProfile of one thread placing serially (top functions on
stderr, the .prof file in test-artifacts/).

Creates its own database (bench_o2o_place_ratio) and uses Redis db 8 (flushed). Prints progress to
stderr and one JSON object on the last line of stdout.
"""

import argparse
import cProfile
import io
import os
import pstats
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack  # noqa: E402
from _stack import PG, ROOT, log  # noqa: E402

DB = "bench_o2o_place_ratio"
PGBENCH_ROWS = 1_000
TARGET_RATIO = 0.25
_stack.REDIS_DB = 8  # this benchmark's Redis db (the others use 14)


# --- the world ------------------------------------------------------------------------------------


def seed(*, vendors: int, customers: int) -> dict:
    from django.db import transaction
    from django.utils import timezone

    from customers.models import CustomerProfile
    from o2o.accounts.models import User
    from vendors.models import Stock
    from vendors.services import stock_lots_fill

    rng = random.Random(5)
    points = [
        (37.5560 + rng.uniform(-0.004, 0.004), 126.9060 + rng.uniform(-0.004, 0.004))
        for _ in range(vendors)
    ]
    vendor_ids = [vid for vid, _slug in _stack.seed_vendors(points, slug_prefix="place-ratio")]
    now = timezone.now()
    with transaction.atomic():
        point, category, products = _stack.pickup_and_snacks(slug="place-ratio")
        per_vendor = {vid: rng.sample([p.pk for p in products], 5) for vid in vendor_ids}
        Stock.objects.bulk_create(
            [
                Stock(vendor_id=vid, product_id=pid, quantity=1_000_000)
                for vid, pids in per_vendor.items()
                for pid in pids
            ]
        )
        stock_lots_fill()  # every row the sum of its lots
        users = User.objects.bulk_create(
            [
                User(
                    email=f"placer-{i}@bench.test",
                    name=f"Placer {i}",
                    password="!bench",
                    date_joined=now,
                )
                for i in range(customers)
            ]
        )
        profiles = CustomerProfile.objects.bulk_create(
            [CustomerProfile(user=u, phone="010-0000-0000") for u in users]
        )
    _stack.analyze(
        [
            "vendors_stock",
            "vendors_stocklot",
            "vendors_product",
            "orders_order",
            "tracking_vendorposition",
            "vendors_vendor",
        ]
    )
    return {"point": point.pk, "stock": per_vendor, "customers": [c.pk for c in profiles]}


# --- one placement --------------------------------------------------------------------------------


class Placer:
    """One thread's placements: its own connection, its customers read once, its own rng."""

    def __init__(self, world: dict, seed: int) -> None:
        from customers.models import CustomerProfile

        self.world = world
        self.rng = random.Random(seed)
        self.vendors = list(world["stock"])
        ids = world["customers"]
        self.customers = list(
            CustomerProfile.objects.select_related("user").filter(pk__in=ids).order_by("pk")
        )

    def place(self):
        from django.utils import timezone

        from orders.models import Fulfilment
        from orders.services import LineIn, Receive, order_place

        rng = self.rng
        vendor_id = rng.choice(self.vendors)
        pids = rng.sample(self.world["stock"][vendor_id], rng.randint(1, 3))
        now = timezone.now()
        start = now + timedelta(hours=1)
        return order_place(
            customer=rng.choice(self.customers),
            vendor_id=vendor_id,
            lines=[LineIn(product_id=p, quantity=rng.randint(1, 3)) for p in pids],
            receive=Receive(
                fulfilment=Fulfilment.PICKUP,
                pickup_point_id=self.world["point"],
                window_start=start,
                window_end=start + timedelta(hours=1),
            ),
            checkout_token=uuid.uuid4(),
            now=now,
        )


def run_placements(
    world: dict, *, threads: int, seconds: float, start_at: float | None = None
) -> dict:
    """K threads place orders for `seconds` (after 3 warm-up placements each, not counted),
    from `start_at` (wall clock: the processes of --processes start together) or when ready."""
    from django.db import connections

    counts = [0] * threads
    errors: list[str] = []
    latencies: list[list[float]] = [[] for _ in range(threads)]
    cpu = [0.0] * threads  # each thread's own CPU seconds while placing (time.thread_time)
    ready = threading.Barrier(threads + 1)
    go = threading.Event()
    window: dict[str, float] = {}

    def worker(i: int) -> None:
        try:
            placer = Placer(world, seed=100 + i)
            for _ in range(3):
                placer.place()
        except Exception as exc:  # noqa: BLE001 - reported, never hidden
            errors.append(f"warm-up: {type(exc).__name__}: {exc}")
        ready.wait(timeout=60)
        go.wait(timeout=60)
        end = window["end"]
        mine = latencies[i]
        cpu_start = time.thread_time()
        try:
            while True:
                t0 = time.perf_counter()
                if t0 >= end:
                    break
                placer.place()
                mine.append(time.perf_counter() - t0)
                counts[i] += 1
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            cpu[i] = time.thread_time() - cpu_start
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    ready.wait(timeout=120)
    if start_at is not None:
        time.sleep(max(0.0, start_at - time.time()))
    start = time.perf_counter()
    window["end"] = start + seconds
    go.set()
    for t in pool:
        t.join(timeout=seconds + 60)
    wall = time.perf_counter() - start
    flat = [x * 1000 for xs in latencies for x in xs]
    return ({"latencies_ms": flat} if start_at is not None else {}) | {
        "placed": sum(counts),
        "per_thread": counts,
        "wall_s": round(wall, 2),
        "orders_per_s": round(sum(counts) / wall, 1),
        "place_ms": _stack.percentiles(flat, 2),
        # The placing threads' own CPU (Python, Django, psycopg2), per placement: what one
        # process can do at most is 1000 / this, whatever PostgreSQL does.
        "client_cpu_ms_per_placement": round(sum(cpu) / max(sum(counts), 1) * 1000, 2),
        "errors": errors[:5],
        "error_count": len(errors),
    }


def _placing_process(world: dict, threads: int, seconds: float, start_at: float, out) -> None:
    """A spawned process of --processes: its own interpreter (and GIL), Django and connections."""
    _stack.django_child_setup(DB)
    out.put(run_placements(world, threads=threads, seconds=seconds, start_at=start_at))


def run_processes(world: dict, *, processes: int, threads: int, seconds: float) -> dict:
    """P processes of K threads each place for the same `seconds`, started together."""
    import multiprocessing as mp

    from django.db import connections

    connections.close_all()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 8.0  # spawning, Django set-up and warm-up
    procs = [
        ctx.Process(target=_placing_process, args=(world, threads, seconds, start_at, out))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    placed = sum(r["placed"] for r in results)
    wall = max(r["wall_s"] for r in results)
    return {
        "processes": processes,
        "placed": placed,
        "per_process": [r["placed"] for r in results],
        "wall_s": wall,
        "orders_per_s": round(placed / wall, 1),
        "place_ms": _stack.percentiles([x for r in results for x in r.pop("latencies_ms")], 2),
        "client_cpu_ms_per_placement": round(
            sum(r["client_cpu_ms_per_placement"] * r["placed"] for r in results) / max(placed, 1),
            2,
        ),
        "errors": [e for r in results for e in r["errors"]][:5],
        "error_count": sum(r["error_count"] for r in results),
    }


# --- queries of one placement --------------------------------------------------------------------

_LITERALS = re.compile(r"'[^']*'|\b\d+(\.\d+)?\b")


def statement_shape(sql: str) -> str:
    """A statement without its literals and column lists, to count statements by kind."""
    sql = _LITERALS.sub("?", sql)
    sql = re.sub(r"SELECT .*? FROM", "SELECT … FROM", sql, flags=re.S)
    sql = re.sub(r"\(\"[^)]*\"\) VALUES .*", "(…) VALUES …", sql, flags=re.S)
    sql = re.sub(r"SAVEPOINT \"?\w+\"?", "SAVEPOINT", sql)
    return sql[:110]


def count_queries(world: dict, samples: int = 20) -> dict:
    """The statements of a placement (with its after-commit hooks), over `samples` placements."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    placer = Placer(world, seed=999)
    placer.place()  # warm
    per: list[int] = []
    shapes: Counter = Counter()
    lines: list[int] = []
    for _ in range(samples):
        with CaptureQueriesContext(connection) as ctx:
            order = placer.place()
        per.append(len(ctx.captured_queries))
        lines.append(order.lines.count())
        shapes.update(statement_shape(q["sql"]) for q in ctx.captured_queries)
    return {
        "per_placement_mean": round(sum(per) / len(per), 2),
        "per_placement_min_max": [min(per), max(per)],
        "lines_mean": round(sum(lines) / len(lines), 2),
        "statements_per_placement": {
            k: round(v / samples, 2) for k, v in shapes.most_common() if v
        },
    }


def profile_placements(world: dict, n: int) -> dict:
    placer = Placer(world, seed=1234)
    placer.place()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(n):
        placer.place()
    prof.disable()
    wall = time.perf_counter() - t0
    out = ROOT / "test-artifacts" / "bench-placement-ratio.prof"
    out.parent.mkdir(parents=True, exist_ok=True)
    prof.dump_stats(str(out))
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).sort_stats("cumulative")
    stats.print_stats(45)
    log("cProfile, cumulative:\n" + buf.getvalue())
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
    log("cProfile, own time:\n" + buf.getvalue())
    return {"placements": n, "serial_ms_per_placement_profiled": round(wall / n * 1000, 2)}


# --- pgbench --------------------------------------------------------------------------------------


def pgbench(*, seconds: int, clients: int, jobs: int) -> dict:
    import psycopg2

    exe = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    conn = psycopg2.connect(dbname=DB, **PG)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_stock")
        cur.execute(
            "CREATE TABLE bench_stock (id int PRIMARY KEY, quantity int NOT NULL "
            "CHECK (quantity >= 0))"
        )
        cur.execute(
            "INSERT INTO bench_stock SELECT g, 1000000000 FROM generate_series(1, %s) g",
            [PGBENCH_ROWS],
        )
        cur.execute("ANALYZE bench_stock")
    script = ROOT / "test-artifacts" / "bench-placement-ratio.pgbench.sql"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(
        f"\\set id random(1, {PGBENCH_ROWS})\n"
        "UPDATE bench_stock SET quantity = quantity - 1 WHERE id = :id AND quantity >= 1;\n"
    )
    cmd = [
        exe,
        "-n",
        "-c",
        str(clients),
        "-j",
        str(jobs),
        "-T",
        str(seconds),
        "-f",
        str(script),
        "-h",
        PG["host"],
        "-p",
        str(PG["port"]),
        "-U",
        PG["user"],
        DB,
    ]
    load = os.getloadavg()[0]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    if out.returncode != 0 or match is None:
        raise SystemExit(f"pgbench failed:\n{out.stdout}\n{out.stderr}")
    with conn.cursor() as cur:
        cur.execute("DROP TABLE bench_stock")
    conn.close()
    return {
        "tps": round(float(match[1]), 1),
        "command": f"pgbench -n -c {clients} -j {jobs} -T {seconds} -f {script.name} {DB}",
        "script": script.read_text(),
        "loadavg_1m_at_start": round(load, 2),
    }


class BackendCpu:
    """The CPU time of this database's PostgreSQL backends over a phase (utime + stime from
    /proc, sampled every 0.1 s): what PostgreSQL itself spends, apart from any client. A backend
    first seen during the phase counts from 0 (it started in it); one that exits counts up to its
    last sample (at most 0.1 s short)."""

    def __init__(self) -> None:
        import psycopg2

        self._conn = psycopg2.connect(dbname="postgres", **PG)
        self._conn.autocommit = True
        self._tick = os.sysconf("SC_CLK_TCK")
        self._first: dict[int, int] = {}
        self._last: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _cpu(self, pid: int) -> int | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)

    def _sample(self, *, initial: bool) -> None:
        with self._conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [DB])
            pids = [row[0] for row in cur.fetchall()]
        for pid in pids:
            ticks = self._cpu(pid)
            if ticks is None:
                continue
            self._first.setdefault(pid, ticks if initial else 0)
            self._last[pid] = ticks

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._sample(initial=False)

    def __enter__(self) -> "BackendCpu":
        self._sample(initial=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(initial=False)
        self._conn.close()

    @property
    def seconds(self) -> float:
        return sum(self._last[p] - self._first[p] for p in self._last) / self._tick


# --- correctness ------------------------------------------------------------------------------------


def audit(world: dict, initial: dict) -> dict:
    """Every unit a placed order holds came off the stock, and off its lots; nothing negative."""
    from django.db.models import Sum

    from orders.models import Order, OrderLine
    from vendors.models import Stock, StockLot

    held = {
        (r["order__vendor_id"], r["product_id"]): r["n"]
        for r in OrderLine.objects.values("order__vendor_id", "product_id").annotate(
            n=Sum("quantity")
        )
    }
    final = dict(
        ((v, p), q) for v, p, q in Stock.objects.values_list("vendor_id", "product_id", "quantity")
    )
    lots = {
        (r["vendor_id"], r["product_id"]): r["n"]
        for r in StockLot.objects.values("vendor_id", "product_id").annotate(n=Sum("quantity"))
    }
    return {
        "orders": Order.objects.count(),
        "stock_mismatches": sum(
            1 for k, q in initial.items() if q - final.get(k, 0) != held.get(k, 0)
        ),
        "lot_mismatches": sum(1 for k, q in final.items() if lots.get(k, 0) != q),
        "negative": sum(1 for q in final.values() if q < 0),
    }


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--threads", type=int, default=4, help="K placing threads")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="P placing processes of K threads each (1: threads of this process)",
    )
    parser.add_argument("--seconds", type=int, help="length of each measurement")
    parser.add_argument("--profile", action="store_true", help="cProfile one serial thread")
    args = parser.parse_args()
    seconds = args.seconds or (3 if args.quick else 10)
    load_start = os.getloadavg()

    from order_placement import wait_for_services

    wait_for_services()
    _stack.setup_stack(DB)
    log("seeding: 20 vendors, 5 products each (1,000,000 units), 200 customers")
    world = seed(vendors=20, customers=200)
    from vendors.models import Stock

    initial = dict(
        ((v, p), q) for v, p, q in Stock.objects.values_list("vendor_id", "product_id", "quantity")
    )

    queries = count_queries(world)
    log(f"queries per placement: {queries['per_placement_mean']} ({queries['lines_mean']} lines)")
    for shape, n in queries["statements_per_placement"].items():
        log(f"  {n:5.2f}  {shape}")
    profiled = profile_placements(world, 200 if not args.quick else 60) if args.profile else None

    log(f"pgbench -c 4 -j 2 -T {seconds}")
    with BackendCpu() as pg_cpu:
        base = pgbench(seconds=seconds, clients=4, jobs=2)
    base["transactions"] = round(base["tps"] * seconds)
    base["pg_cpu_ms_per_tx"] = round(pg_cpu.seconds * 1000 / max(base["transactions"], 1), 3)
    log(f"pgbench: {base['tps']} tps, PostgreSQL CPU {base['pg_cpu_ms_per_tx']} ms a transaction")
    load_mid = os.getloadavg()[0]
    log(f"order_place from {args.processes} process(es) x {args.threads} threads for {seconds} s")
    with BackendCpu() as pg_cpu:
        if args.processes > 1:
            placed = run_processes(
                world, processes=args.processes, threads=args.threads, seconds=seconds
            )
        else:
            placed = run_placements(world, threads=args.threads, seconds=seconds)
    # Warm-up placements (3 a thread) run inside the sampled phase too: counted with the rest.
    warm = 3 * args.threads * args.processes
    placed["pg_cpu_ms_per_placement"] = round(
        pg_cpu.seconds * 1000 / max(placed["placed"] + warm, 1), 3
    )
    # PostgreSQL's own ceiling on these cores, were the clients free: cores / its CPU per order.
    placed["pg_bound_orders_per_s"] = round(
        (os.cpu_count() or 1) * 1000 / max(placed["pg_cpu_ms_per_placement"], 0.001)
    )
    log(
        f"placed {placed['placed']} in {placed['wall_s']} s = {placed['orders_per_s']} orders/s; "
        f"latency {placed['place_ms']}; errors {placed['error_count']} {placed['errors']}"
    )
    checks = audit(world, initial)
    ratio = placed["orders_per_s"] / base["tps"]
    correct = (
        placed["error_count"] == 0
        and checks["stock_mismatches"] == 0
        and checks["lot_mismatches"] == 0
        and checks["negative"] == 0
    )
    figures = {
        "benchmark": "placement_ratio",
        "quick": args.quick,
        "seconds": seconds,
        "pgbench": base,
        "placement": {
            "threads": args.threads,
            "processes": args.processes,
            "what": "orders.services.order_place in-process, pickup, 1-3 lines, 20 vendors, "
            "no payment provider (orders stay PENDING_PAYMENT), after-commit hooks included",
            **placed,
        },
        "queries": queries,
        "profile": profiled,
        "ratio": round(ratio, 4),
        "target_ratio": TARGET_RATIO,
        "correctness": checks,
        "loadavg_start_mid_end": [
            round(load_start[0], 2),
            round(load_mid, 2),
            round(os.getloadavg()[0], 2),
        ],
        "target": "placements/s >= 25 % of pgbench's one-row conditional UPDATE tps, same run; "
        "no errors, stock and lots add up",
    }
    figures["pass"] = bool(correct and ratio >= TARGET_RATIO)
    figures["correct"] = correct
    log(f"ratio {ratio:.4f} against {TARGET_RATIO}: {'pass' if figures['pass'] else 'FAIL'}")

    if not args.keep:
        from django.db import connections

        connections.close_all()
        _stack.drop_database(DB)
    _stack.emit(figures)


if __name__ == "__main__":
    main()
