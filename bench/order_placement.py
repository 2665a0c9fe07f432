"""Order placement on PostgreSQL, end to end: order_place (stock reserved) → order_payment_start
(the sandbox gateway over HTTP) → the hosted card page paid with the test card 4242… (httpx, CSRF
as a browser) → order_payment_refresh → PLACED.

    .venv/bin/python bench/order_placement.py [--quick] [--keep]

Scenario A (spread): N buyers (quick 100, full 400), each their own customer, a pickup order of
1-2 products from 20 vendors with plenty of stock; orders/s and p50/p95 of place+authorise.
Scenario B (hot): 200 buyers (quick 50) racing for one product with stock 100 (quick 25) on one
cart, each checkout submitted twice at once (a double click): placed == min(buyers, stock), never
oversold, no duplicate order. Both beside pgbench's tps for a one-row conditional UPDATE on this
machine, as a ratio. Target: every correctness counter zero (oversold, stock mismatches, duplicate
orders, 5xx / unexpected errors).

Creates its own database (bench_o2o_orders) and Redis db 14, serves the platform + sandbox with
`manage.py serve` on port 8766 as a subprocess, prints progress to stderr and one JSON object on the
last line of stdout.
"""

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack  # noqa: E402
from _stack import PG, ROOT, log  # noqa: E402

DB = "bench_o2o_orders"
PORT = 8766
BASE = f"http://127.0.0.1:{PORT}"
CARD = {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}
TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def wait_for_services(timeout: float = 120.0) -> None:
    """PostgreSQL and Redis may be restarting (a CI run on the same machine): wait for both."""
    import psycopg2
    import redis

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(dbname="postgres", connect_timeout=3, **PG).close()
            client = redis.Redis(host="127.0.0.1", port=6379, db=_stack.REDIS_DB, socket_timeout=3)
            client.ping()
            client.close()
            return
        except Exception as exc:  # noqa: BLE001 - any failure means "not up yet"
            if time.monotonic() > deadline:
                raise SystemExit(f"PostgreSQL/Redis not answering: {exc}") from exc
            log(f"waiting for PostgreSQL/Redis: {exc}")
            time.sleep(2)


# --- the world --------------------------------------------------------------------------------


def seed(*, buyers: int, hot_buyers: int, hot_stock: int) -> dict:

    from django.db import transaction
    from django.utils import timezone

    from customers.models import CustomerProfile
    from o2o.accounts.models import User
    from vendors.models import Product, Stock
    from vendors.services import stock_lots_fill

    rng = random.Random(5)
    # 21 vendors on shift within ~1 km of the pickup point: 20 for A, 1 hot cart for B.
    points = [(37.5560 + rng.uniform(-0.004, 0.004), 126.9060 + rng.uniform(-0.004, 0.004))]
    points += [
        (37.5560 + rng.uniform(-0.004, 0.004), 126.9060 + rng.uniform(-0.004, 0.004))
        for _ in range(20)
    ]
    vendors = _stack.seed_vendors(points, slug_prefix="order-bench")
    hot_vendor, spread_vendors = vendors[0][0], [vid for vid, _slug in vendors[1:]]
    now = timezone.now()
    with transaction.atomic():
        point, category, products = _stack.pickup_and_snacks(slug="order-bench")
        hot_product = Product.objects.create(
            sku="order-bench-hot",
            name_ko="한정 붕어빵",
            name_en="Limited",
            price=3000,
            category=category,
        )
        # A: every vendor carries 5 of the 10 products, 10,000 of each (never runs out).
        per_vendor = {vid: rng.sample([p.pk for p in products], 5) for vid in spread_vendors}
        Stock.objects.bulk_create(
            [
                Stock(vendor_id=vid, product_id=pid, quantity=10_000)
                for vid, pids in per_vendor.items()
                for pid in pids
            ]
            + [Stock(vendor_id=hot_vendor, product=hot_product, quantity=hot_stock)]
        )
        stock_lots_fill()  # every row the sum of its lots
        users = User.objects.bulk_create(
            [
                User(
                    email=f"buyer-{i}@bench.test",
                    name=f"Buyer {i}",
                    password="!bench",
                    date_joined=now,
                )
                for i in range(buyers + hot_buyers)
            ]
        )
        customers = CustomerProfile.objects.bulk_create(
            [CustomerProfile(user=u, phone="010-0000-0000") for u in users]
        )
    _stack.analyze(["vendors_stock", "orders_order", "vendors_product", "tracking_vendorposition"])
    return {
        "point": point.pk,
        "spread": per_vendor,
        "hot_vendor": hot_vendor,
        "hot_product": hot_product.pk,
        "a_customers": [c.pk for c in customers[:buyers]],
        "b_customers": [c.pk for c in customers[buyers:]],
    }


# --- the server -------------------------------------------------------------------------------


def start_server(env: dict) -> tuple[subprocess.Popen, Path]:
    return _stack.start_server(env, port=PORT, log_name="bench-order-placement-server.log")


stop_server = _stack.stop_server


# --- one buyer --------------------------------------------------------------------------------


class Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values = {"http_5xx": 0, "unexpected_errors": 0, "out_of_stock": 0, "not_placed": 0}
        self.errors: list[str] = []

    def add(self, key: str, detail: str = "") -> None:
        with self.lock:
            self.values[key] = self.values.get(key, 0) + 1
            if detail and len(self.errors) < 10:
                self.errors.append(detail)


_local = threading.local()


def browser():
    import httpx

    if getattr(_local, "client", None) is None:
        _local.client = httpx.Client(base_url=BASE, timeout=15)
    return _local.client


def authorise(checkout_url: str, counters: Counters) -> bool:
    """Pay on the hosted card page as a browser: GET (CSRF cookie + token), POST the card form."""
    client = browser()
    page = client.get(checkout_url)
    if page.status_code >= 500:
        counters.add("http_5xx", f"GET card page {page.status_code}")
        return False
    match = TOKEN_RE.search(page.text)
    if page.status_code != 200 or match is None:
        counters.add("unexpected_errors", f"card page {page.status_code} without a form")
        return False
    paid = client.post(
        checkout_url,
        data={**CARD, "csrfmiddlewaretoken": match[1]},
        headers={"Referer": checkout_url},
    )
    if paid.status_code >= 500:
        counters.add("http_5xx", f"POST card page {paid.status_code}")
        return False
    if paid.status_code != 302:
        counters.add("unexpected_errors", f"POST card page {paid.status_code}")
        return False
    return True


def pay_and_refresh(order_id: int, counters: Counters) -> bool:
    from orders.models import Status
    from orders.services import order_payment_refresh, order_payment_start

    checkout_url = order_payment_start(order_id=order_id, return_url=f"{BASE}/orders/{order_id}/")
    if not authorise(checkout_url, counters):
        return False
    order = order_payment_refresh(order_id=order_id)
    if order.status != Status.PLACED:
        counters.add("not_placed", f"order {order_id} {order.status}")
        return False
    return True


def buy(
    *, customer_id: int, vendor_id: int, items: dict[int, int], point_id: int, token: uuid.UUID
):
    from django.utils import timezone

    from customers.models import CustomerProfile
    from orders.models import Fulfilment
    from orders.services import LineIn, Receive, order_place

    now = timezone.now()
    start = now + timedelta_hours(1)
    return order_place(
        customer=CustomerProfile.objects.select_related("user").get(pk=customer_id),
        vendor_id=vendor_id,
        lines=[LineIn(product_id=p, quantity=q) for p, q in items.items()],
        receive=Receive(
            fulfilment=Fulfilment.PICKUP,
            pickup_point_id=point_id,
            window_start=start,
            window_end=start + timedelta_hours(1),
        ),
        checkout_token=token,
        now=now,
    )


def timedelta_hours(h: float):
    from datetime import timedelta

    return timedelta(hours=h)


def close_thread_connection() -> None:
    from django.db import connections

    connections.close_all()
    client = getattr(_local, "client", None)
    if client is not None:
        client.close()
        _local.client = None


def run_pool(workers: int, fn, tasks: list) -> float:
    """Run fn over tasks in `workers` threads (each its own DB connection); the wall seconds."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fn, tasks))
        # Each worker thread closes its own connection and HTTP client.
        barrier = threading.Barrier(workers)

        def close(_):
            close_thread_connection()
            barrier.wait(timeout=30)

        list(pool.map(close, range(workers)))
    return time.perf_counter() - t0


# --- scenario A: spread ---------------------------------------------------------------------


def scenario_spread(world: dict, workers: int) -> dict:
    rng = random.Random(7)
    counters = Counters()
    latencies: list[float] = []
    lat_lock = threading.Lock()
    vendors = list(world["spread"])
    tasks = []
    for cid in world["a_customers"]:
        vid = rng.choice(vendors)
        pids = rng.sample(world["spread"][vid], rng.randint(1, 2))
        tasks.append((cid, vid, {p: rng.randint(1, 3) for p in pids}))

    def one(task) -> None:
        cid, vid, items = task
        t0 = time.perf_counter()
        try:
            order = buy(
                customer_id=cid,
                vendor_id=vid,
                items=items,
                point_id=world["point"],
                token=uuid.uuid4(),
            )
            if pay_and_refresh(order.pk, counters):
                with lat_lock:
                    latencies.append((time.perf_counter() - t0) * 1000)
        except Exception as exc:  # noqa: BLE001 - counted, never hidden
            counters.add("unexpected_errors", f"{type(exc).__name__}: {exc}")

    wall = run_pool(workers, one, tasks)
    return {"tasks": len(tasks), "wall": wall, "latencies": latencies, "counters": counters}


# --- scenario B: hot product ----------------------------------------------------------------


def scenario_hot(world: dict, workers: int) -> dict:
    from vendors.services import OutOfStock

    counters = Counters()
    latencies: list[float] = []
    lock = threading.Lock()
    first_order: dict[int, int] = {}  # customer -> the order its checkout gave
    mismatched = [0]
    tokens = {cid: uuid.uuid4() for cid in world["b_customers"]}
    # Each buyer's checkout submitted twice (a double click), the two submissions side by side.
    tasks = [(cid, attempt) for cid in world["b_customers"] for attempt in (0, 1)]

    def one(task) -> None:
        cid, _attempt = task
        t0 = time.perf_counter()
        try:
            order = buy(
                customer_id=cid,
                vendor_id=world["hot_vendor"],
                items={world["hot_product"]: 1},
                point_id=world["point"],
                token=tokens[cid],
            )
        except OutOfStock:
            counters.add("out_of_stock")
            return
        except Exception as exc:  # noqa: BLE001
            counters.add("unexpected_errors", f"{type(exc).__name__}: {exc}")
            return
        with lock:
            seen = first_order.setdefault(cid, order.pk)
            if seen != order.pk:
                mismatched[0] += 1
            if seen != order.pk or _attempt_done.get(cid):
                return
            _attempt_done[cid] = True
        try:
            if pay_and_refresh(order.pk, counters):
                with lock:
                    latencies.append((time.perf_counter() - t0) * 1000)
        except Exception as exc:  # noqa: BLE001
            counters.add("unexpected_errors", f"{type(exc).__name__}: {exc}")

    _attempt_done: dict[int, bool] = {}
    wall = run_pool(workers, one, tasks)
    return {
        "tasks": len(tasks),
        "wall": wall,
        "latencies": latencies,
        "counters": counters,
        "double_submit_mismatches": mismatched[0],
    }


# --- correctness --------------------------------------------------------------------------------


def audit(customer_ids: list[int], initial: dict[tuple[int, int], int]) -> dict:
    """From the database: orders by status, duplicate orders per customer, stock accounting."""
    from django.db.models import Count, Sum

    from orders.models import Order, OrderLine, Status
    from vendors.models import Stock

    orders = Order.objects.filter(customer_id__in=customer_ids)
    by_status = dict(orders.values_list("status").annotate(n=Count("id")))
    duplicates = orders.values("customer_id").annotate(n=Count("id")).filter(n__gt=1).count()
    holding = (Status.PENDING_PAYMENT, Status.PLACED)
    held = {
        (row["order__vendor_id"], row["product_id"]): row["n"]
        for row in OrderLine.objects.filter(
            order__customer_id__in=customer_ids, order__status__in=holding
        )
        .values("order__vendor_id", "product_id")
        .annotate(n=Sum("quantity"))
    }
    final = {
        (v, p): q
        for v, p, q in Stock.objects.filter(vendor_id__in={v for v, _p in initial}).values_list(
            "vendor_id", "product_id", "quantity"
        )
    }
    negative = sum(1 for q in final.values() if q < 0)
    oversold = sum(max(0, held.get(k, 0) - initial[k]) for k in initial) + negative
    mismatch = sum(1 for k in initial if initial[k] - final.get(k, 0) != held.get(k, 0))
    return {
        "by_status": by_status,
        "placed": by_status.get(Status.PLACED, 0),
        "duplicates": duplicates,
        "oversold": oversold,
        "stock_mismatches": mismatch,
        "final": final,
        "held": held,
    }


def stock_snapshot(vendor_ids) -> dict:
    from vendors.models import Stock

    return {
        (v, p): q
        for v, p, q in Stock.objects.filter(vendor_id__in=list(vendor_ids)).values_list(
            "vendor_id", "product_id", "quantity"
        )
    }


# --- pgbench ------------------------------------------------------------------------------------


def pgbench(seconds: int) -> dict:
    import psycopg2

    exe = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    conn = psycopg2.connect(dbname=DB, **PG)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS stock")
        cur.execute("CREATE TABLE stock (id int PRIMARY KEY, quantity int NOT NULL)")
        cur.execute("INSERT INTO stock VALUES (1, 1000000000)")
    script = ROOT / "test-artifacts" / "bench-order-placement.pgbench.sql"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("UPDATE stock SET quantity = quantity - 1 WHERE id = 1 AND quantity >= 1;\n")
    cmd = [
        exe,
        "-n",
        "-c",
        "2",
        "-j",
        "2",
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
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    if out.returncode != 0 or match is None:
        raise SystemExit(f"pgbench failed:\n{out.stdout}\n{out.stderr}")
    with conn.cursor() as cur:
        cur.execute("DROP TABLE stock")
    conn.close()
    return {
        "tps": round(float(match[1]), 1),
        "seconds": seconds,
        "command": f"pgbench -n -c 2 -j 2 -T {seconds} -f {script.name} {DB}",
    }


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--workers", type=int, default=8, help="threads for scenario A")
    parser.add_argument("--hot-workers", type=int, default=16, help="threads for scenario B")
    args = parser.parse_args()
    buyers, hot_buyers, hot_stock = (100, 50, 25) if args.quick else (400, 200, 100)
    pgbench_seconds = 5 if args.quick else 10
    load_start = os.getloadavg()[0]

    wait_for_services()
    extra = {
        "SANDBOX_BASE_URL": BASE,
        "PLATFORM_BASE_URL": BASE,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SANDBOX_WEBHOOK_DUPLICATE_RATE": "0",
        # The order e-mails are still rendered and "sent", into memory: not onto stdout.
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    os.environ.update(extra)
    env = _stack.setup_stack(DB)
    log(f"seeding: {buyers} + {hot_buyers} buyers, 21 vendors, hot stock {hot_stock}")
    world = seed(buyers=buyers, hot_buyers=hot_buyers, hot_stock=hot_stock)

    log(f"starting the server on {BASE}")
    # Under ASGI every thread of the server's sync pool keeps its own persistent connection
    # (~35 at 8 buyers, measured): with CONN_MAX_AGE=600 the full run hit max_connections=100.
    # Django's advice for ASGI: CONN_MAX_AGE=0 (connection per request) in the server.
    server, server_log = start_server({**env, **extra, "CONN_MAX_AGE": "0"})
    try:
        log(f"pgbench -T {pgbench_seconds}")
        base = pgbench(pgbench_seconds)
        log(f"pgbench: {base['tps']} tps")

        # Warm-up outside the figures: the server's first requests (imports, templates).
        import httpx

        httpx.get(f"{BASE}/healthz", timeout=5)

        spread_initial = stock_snapshot(world["spread"])
        log(f"scenario A: {buyers} buyers, {args.workers} threads")
        a = scenario_spread(world, args.workers)
        a_audit = audit(world["a_customers"], spread_initial)
        a_rate = a_audit["placed"] / a["wall"]
        log(
            f"A: {a_audit['by_status']} in {a['wall']:.1f}s = {a_rate:.1f} orders/s; "
            f"{a['counters'].values} {a['counters'].errors[:3]}"
        )

        hot_initial = stock_snapshot([world["hot_vendor"]])
        log(
            f"scenario B: {hot_buyers} buyers x 2 submissions, stock {hot_stock}, "
            f"{args.hot_workers} threads"
        )
        b = scenario_hot(world, args.hot_workers)
        b_audit = audit(world["b_customers"], hot_initial)
        b_rate = b_audit["placed"] / b["wall"]
        log(
            f"B: {b_audit['by_status']} in {b['wall']:.1f}s = {b_rate:.1f} orders/s; "
            f"final stock {b_audit['final']}; {b['counters'].values} {b['counters'].errors[:3]}"
        )
    finally:
        stop_server(server)
    server_errors = len(re.findall(r'HTTP/1\.1" 5\d\d|Traceback', server_log.read_text()))

    a_c, b_c = a["counters"].values, b["counters"].values
    expected_b = min(hot_buyers, hot_stock)
    correctness = {
        "oversold": a_audit["oversold"] + b_audit["oversold"],
        "stock_mismatches": a_audit["stock_mismatches"] + b_audit["stock_mismatches"],
        "duplicate_orders": a_audit["duplicates"]
        + b_audit["duplicates"]
        + b["double_submit_mismatches"],
        "http_5xx": a_c["http_5xx"] + b_c["http_5xx"],
        "unexpected_errors": a_c["unexpected_errors"]
        + b_c["unexpected_errors"]
        + a_c["not_placed"]
        + b_c["not_placed"],
        "a_not_placed": buyers - a_audit["placed"],
        "b_placed_off_expected": abs(b_audit["placed"] - expected_b),
    }
    a_lat, b_lat = _stack.percentiles(a["latencies"], 1), _stack.percentiles(b["latencies"], 1)
    figures = {
        "benchmark": "order_placement",
        "quick": args.quick,
        "pgbench_tps": base["tps"],
        "pgbench": f"{base['command']} (UPDATE stock SET quantity = quantity - 1 "
        "WHERE id = 1 AND quantity >= 1)",
        "a_spread": {
            "buyers": buyers,
            "vendors": len(world["spread"]),
            "threads": args.workers,
            "placed": a_audit["placed"],
            "wall_s": round(a["wall"], 2),
            "orders_per_s": round(a_rate, 1),
            "ratio_to_pgbench": round(a_rate / base["tps"], 4),
            "place_authorise_ms": a_lat,
        },
        "b_hot": {
            "buyers": hot_buyers,
            "submissions": b["tasks"],
            "threads": args.hot_workers,
            "stock": hot_stock,
            "placed": b_audit["placed"],
            "expected_placed": expected_b,
            "out_of_stock_refusals": b_c["out_of_stock"],
            "final_stock": sum(b_audit["final"].values()),
            "wall_s": round(b["wall"], 2),
            "orders_per_s": round(b_rate, 1),
            "ratio_to_pgbench": round(b_rate / base["tps"], 4),
            "place_authorise_ms": b_lat,
        },
        "correctness": correctness,
        "server_log_error_lines": server_errors,
        "errors_sample": (a["counters"].errors + b["counters"].errors)[:5],
        "loadavg_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "target": "oversold, stock mismatches, duplicate orders, 5xx and unexpected errors all 0; "
        "every A buyer PLACED; B placed == min(buyers, stock)",
    }
    figures["pass"] = all(v == 0 for v in correctness.values())

    if not args.keep:
        from django.db import connections

        connections.close_all()
        _stack.drop_database(DB)
    _stack.emit(figures)


if __name__ == "__main__":
    main()
