"""A busy street (issue 16, "At the cart"): walk-up buyers paying on their phones at one cart over
HTTP, while 200 carts sell from cold-chain lots at once.

    .venv/bin/python bench/counter_street.py [--quick] [--keep] [--workers N]

Walk-ups (HTTP, `manage.py serve` on port 8767, each buyer a fresh httpx client with its own
session cookie, CSRF as a browser): scan the cart's QR (GET /c/s/<code>/ → 302) → the counter page
(GET /c/<vendor>/, timed) → the pay step (timed): POST the counter form (checkout_token, q_<id>,
half the buyers a receipt e-mail) → 302 to the sandbox card page → GET it, POST the test card →
302 back to /c/o/<signed>/?back=1 → GET it (the payment refreshed: authorised and handed over).
Arrivals are open-loop at a fixed rate (20 a minute in the full run; 120 a minute in --quick, to
have enough samples) from a separate process, so the street's threads do not hold its GIL.
A short "alone" phase first times the same journey back to back without the street.

The street (in-process): `--workers` threads (default 4), each its own database connection,
each sale a guest's walk-up order at a random one of the carts (1-2 of its products, 1-3 units):
counter.services.walkup_order_place, then orders.services.order_payment_settled(authorised) → the
order accepted and handed over. Every cart carries 4 of 10 products, each in 2-3 lots of different
expiries (lot ids not in sell_by order; some with a best-before time today); a quarter of the
products are scarce (1-2 units a lot: they sell out) and one product in ten also has an expired
lot (never to be sold). Not 200 threads: PostgreSQL here allows 100 connections, shared with the
server and other engineers' test runs; 4 threads already saturate the 2 cores (in a pair of quick
runs 16 threads sold 8 % more a second, with 4x the sale latency, and starved the walk-ups' server).

Checks (from the database, at the end): no lot below 0; every Stock row the sum of its lots
(o2o.invariants' stock checks too); per lot, units allocated and not released == loaded - left,
and never more than loaded; per (cart, product): units in handed-over orders + units left ==
units loaded; expired lots untouched; every placed order handed over; soonest-expiring first
(see `fifo_check`). Redis db 14 is NOT flushed (other engineers' tests and a live demo keep
keys there): this run uses its own cache/channels prefix and removes only its own keys.

Creates its own database (bench_o2o_counter), prints progress to stderr and one JSON object on
the last line of stdout.
"""

import argparse
import multiprocessing
import os
import random
import re
import sys
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack  # noqa: E402
from _stack import log  # noqa: E402

DB = "bench_o2o_counter"
PORT = 8767
BASE = f"http://127.0.0.1:{PORT}"
PREFIX = "o2o-bench-counter"  # cache and channel-layer prefix in Redis db 14
CARD = {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CHECKOUT_RE = re.compile(r'name="checkout_token" value="([^"]+)"')
PRODUCT_RE = re.compile(r'name="q_(\d+)"[^>]*max="(\d+)"')
EXTRA_ENV = {
    "SANDBOX_BASE_URL": BASE,
    "PLATFORM_BASE_URL": BASE,
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SANDBOX_WEBHOOK_DUPLICATE_RATE": "0",
    "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    "CACHE_PREFIX": PREFIX,
    "CHANNELS_PREFIX": PREFIX,
}
# Celery's queues (the effects' kicks land there; no worker runs in this benchmark).
KOMBU_KEYS = ("money", "notifications", "bulk", "unacked", "unacked_index", "unacked_mutex")


# --- the stack, without flushing Redis db 14 ----------------------------------------------------


def setup_stack() -> dict[str, str]:
    os.environ.update(EXTRA_ENV)
    env = {**_stack.configure(DB), **EXTRA_ENV}
    log(f"recreating database {DB} (Redis db {_stack.REDIS_DB} kept: prefix {PREFIX})")
    _stack.recreate_database(DB)
    import django

    django.setup()
    _stack.migrate(DB)
    return env


def redis_keys_before() -> set[bytes]:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=_stack.REDIS_DB)
    found = {k for k in KOMBU_KEYS if client.exists(k)}
    found |= set(client.scan_iter(match="_kombu.binding.*"))
    client.close()
    return {k.encode() if isinstance(k, str) else k for k in found}


def redis_cleanup(before: set[bytes]) -> int:
    """Delete this run's keys: its prefix, and Celery's queue keys that were not there before."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=_stack.REDIS_DB)
    mine = set(client.scan_iter(match=f"{PREFIX}*"))
    kombu = {k.encode() for k in KOMBU_KEYS if client.exists(k)}
    kombu |= set(client.scan_iter(match="_kombu.binding.*"))
    doomed = mine | (kombu - before)
    if doomed:
        client.delete(*doomed)
    client.close()
    return len(doomed)


# --- the world ----------------------------------------------------------------------------------


def seed(*, carts: int) -> dict:
    """`carts` street carts + 1 walk-up cart, on shift, stocked in lots (Stock == sum of lots)."""
    from datetime import datetime, timedelta
    from datetime import time as dtime
    from zoneinfo import ZoneInfo

    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from vendors.models import Category, Product, Stock, StockLot
    from vendors.services import korea_today, lot_sell_by

    rng = random.Random(16)
    points = [
        (37.5560 + rng.uniform(-0.01, 0.01), 126.9060 + rng.uniform(-0.01, 0.01))
        for _ in range(carts + 1)
    ]
    vendors = _stack.seed_vendors(points, slug_prefix="counter-bench")
    walkup_cart, street = vendors[0][0], [vid for vid, _slug in vendors[1:]]
    now = timezone.now()
    today = korea_today()
    seoul = ZoneInfo(settings.TIME_ZONE)
    # A best-before later today (chilled), but at least 2 h ahead so nothing expires mid-run;
    # after 22:00 in Seoul it falls tomorrow morning, still before the end of tomorrow.
    chilled = max(
        datetime.combine(today, dtime(23, 0), tzinfo=seoul), now + timedelta(hours=2)
    ).replace(microsecond=0)

    def lot(vid: int, pid: int, qty: int, expires_on, best_before=None) -> StockLot:
        return StockLot(
            vendor_id=vid,
            product_id=pid,
            quantity_loaded=qty,
            quantity=qty,
            expires_on=expires_on,
            best_before=best_before,
            sell_by=lot_sell_by(expires_on=expires_on, best_before=best_before),
            loaded_at=now,
        )

    with transaction.atomic():
        category, _ = Category.objects.get_or_create(
            slug="bench-counter", defaults={"name_ko": "간식", "name_en": "Snacks"}
        )
        products = Product.objects.bulk_create(
            [
                Product(
                    sku=f"counter-bench-{n}",
                    name_ko=name,
                    name_en=f"Snack {n}",
                    price=1000 + 500 * n,
                    category=category,
                )
                for n, name in enumerate(_stack.SNACKS)
            ]
        )
        pids = [p.pk for p in products]
        lots: list[StockLot] = []
        carries: dict[int, list[int]] = {}
        scarce: set[tuple[int, int]] = set()
        for vid in street:
            carries[vid] = sorted(rng.sample(pids, 4))
            for pid in carries[vid]:
                few = rng.random() < 0.25
                if few:
                    scarce.add((vid, pid))
                # 2-3 sellable lots with different sell_by, made in shuffled order (ids are not
                # in sell_by order), one of them maybe chilled with a best-before today.
                expiries = [(today + timedelta(days=d), None) for d in (1, 2, 3)]
                expiries[0] = (today + timedelta(days=1), chilled if rng.random() < 0.5 else None)
                expiries = expiries[: rng.choice((2, 3))]
                rng.shuffle(expiries)
                for expires_on, best_before in expiries:
                    qty = rng.randint(1, 2) if few else rng.randint(6, 20)
                    lots.append(lot(vid, pid, qty, expires_on, best_before))
                if rng.random() < 0.1:  # past its date: on the cart until written off
                    lots.append(lot(vid, pid, rng.randint(1, 5), today - timedelta(days=1)))
        # The walk-up cart: every product, 3 roomy lots each (its buyers never find it sold out).
        carries[walkup_cart] = pids
        for pid in pids:
            for d in (3, 1, 2):
                lots.append(lot(walkup_cart, pid, 150, today + timedelta(days=d)))
        StockLot.objects.bulk_create(lots, batch_size=5_000)
        totals: dict[tuple[int, int], int] = defaultdict(int)
        for x in lots:
            totals[x.vendor_id, x.product_id] += x.quantity
        Stock.objects.bulk_create(
            [Stock(vendor_id=v, product_id=p, quantity=q) for (v, p), q in totals.items()],
            batch_size=5_000,
        )
    _stack.analyze(["vendors_stock", "vendors_stocklot", "orders_order", "vendors_product"])
    return {
        "walkup_cart": walkup_cart,
        "street": street,
        "carries": carries,
        "scarce": len(scarce),
        "lots": len(lots),
        "started": now,
    }


# --- the street: in-process sales ---------------------------------------------------------------


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, int] = defaultdict(int)
        self.errors: list[str] = []
        self.orders: list[int] = []
        self.latencies: list[float] = []

    def add(self, key: str, detail: str = "") -> None:
        with self.lock:
            self.values[key] += 1
            if detail and len(self.errors) < 10:
                self.errors.append(detail)


def street_run(world: dict, *, workers: int, seconds: float, start: threading.Event) -> dict:
    from django.db import connections

    from counter.services import walkup_order_place
    from orders.models import Status
    from orders.services import order_payment_settled
    from vendors.services import OutOfStock

    tally = Tally()
    street = world["street"]

    def worker(n: int) -> None:
        rng = random.Random(1000 + n)
        start.wait()
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                vid = rng.choice(street)
                picked = rng.sample(world["carries"][vid], rng.choice((1, 1, 2)))
                items = {pid: rng.randint(1, 3) for pid in picked}
                t0 = time.perf_counter()
                try:
                    order = walkup_order_place(
                        vendor_id=vid, items=items, checkout_token=uuid.uuid4()
                    )
                except OutOfStock:
                    tally.add("sold_out")
                    continue
                except Exception as exc:  # noqa: BLE001 - counted, never hidden
                    tally.add("errors", f"place: {type(exc).__name__}: {exc}")
                    continue
                try:
                    done = order_payment_settled(order_id=order.pk, payment_status="authorised")
                except Exception as exc:  # noqa: BLE001
                    tally.add("errors", f"settle #{order.pk}: {type(exc).__name__}: {exc}")
                    continue
                ms = (time.perf_counter() - t0) * 1000
                if done is None or done.status != Status.HANDED_OVER:
                    status = None if done is None else done.status
                    tally.add("errors", f"order {order.pk} not handed over: {status}")
                    continue
                with tally.lock:
                    tally.values["sales"] += 1
                    tally.orders.append(order.pk)
                    tally.latencies.append(ms)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(workers)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return {"wall": time.perf_counter() - t0, "tally": tally}


# --- the walk-ups: HTTP, from their own process -------------------------------------------------


def journey(vendor_id: int, rng: random.Random) -> dict:
    """One buyer's phone, scan to handed over; the timings (ms) and what went wrong, if anything."""
    import httpx

    from counter.tokens import cart_token_make

    out: dict = {"ok": False}
    with httpx.Client(base_url=BASE, timeout=30) as phone:

        def expect(step: str, response, status: int) -> bool:
            if response.status_code == status:
                return True
            out["error"] = f"{step}: HTTP {response.status_code} (expected {status})"
            out["status"] = response.status_code
            return False

        scanned = phone.get(f"/c/s/{cart_token_make(vendor_id=vendor_id)}/")
        if not expect("scan", scanned, 302):
            return out
        cart_url = scanned.headers["location"]
        t0 = time.perf_counter()
        page = phone.get(cart_url)
        out["counter_page_ms"] = (time.perf_counter() - t0) * 1000
        if not expect("counter page", page, 200):
            return out
        csrf, token = CSRF_RE.search(page.text), CHECKOUT_RE.search(page.text)
        offered = [(int(pid), int(left)) for pid, left in PRODUCT_RE.findall(page.text)]
        offered = [(pid, left) for pid, left in offered if left > 0]
        if csrf is None or token is None or not offered:
            out["error"] = "counter page without its form or products"
            return out
        form = {"csrfmiddlewaretoken": csrf[1], "checkout_token": token[1]}
        for pid, left in rng.sample(offered, min(len(offered), rng.choice((1, 2)))):
            form[f"q_{pid}"] = str(min(left, rng.randint(1, 2)))
        if rng.random() < 0.5:
            form["receipt_email"] = f"walker-{rng.randrange(10**6)}@bench.test"
        absolute_cart = f"{BASE}{cart_url}"
        t1 = time.perf_counter()
        placed = phone.post(cart_url, data=form, headers={"Referer": absolute_cart})
        out["place_ms"] = (time.perf_counter() - t1) * 1000
        if not expect("place", placed, 302):
            return out
        card_url = placed.headers["location"]
        if not card_url.startswith(f"{BASE}/sandbox/"):
            out["error"] = f"place redirected to {card_url[:80]} (not the card page)"
            return out
        card = phone.get(card_url)
        if not expect("card page", card, 200):
            return out
        card_csrf = CSRF_RE.search(card.text)
        if card_csrf is None:
            out["error"] = "card page without its form"
            return out
        t2 = time.perf_counter()
        paid = phone.post(
            card_url,
            data={**CARD, "csrfmiddlewaretoken": card_csrf[1]},
            headers={"Referer": card_url},
        )
        out["card_pay_ms"] = (time.perf_counter() - t2) * 1000
        if not expect("card pay", paid, 302):
            return out
        back_url = paid.headers["location"]
        if "/c/o/" not in back_url or "back=1" not in back_url:
            out["error"] = f"card page sent the buyer to {back_url[:80]}"
            return out
        t3 = time.perf_counter()
        back = phone.get(back_url)
        out["return_ms"] = (time.perf_counter() - t3) * 1000
        out["pay_step_ms"] = (time.perf_counter() - t1) * 1000
        if not expect("return", back, 200):
            return out
        out["ok"] = True
    return out


def walkups_run(vendor_id: int, *, count: int, interval: float, seed: int) -> list[dict]:
    """`count` buyers arriving every `interval` seconds (open loop: a slow one never delays the
    next arrival); interval 0: one after another."""
    rng = random.Random(seed)
    seeds = [rng.randrange(2**32) for _ in range(count)]
    t0 = time.monotonic()

    def one(i: int) -> dict:
        if interval:
            time.sleep(max(0.0, t0 + i * interval - time.monotonic()))
        try:
            return journey(vendor_id, random.Random(seeds[i]))
        except Exception as exc:  # noqa: BLE001 - a client-side failure is an error too
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    workers = 1 if not interval else 16
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(count)))


def walkups_child(vendor_id: int, count: int, interval: float, seed: int) -> list[dict]:
    """The walk-up phones' process: Django only to sign the cart's QR as the vendor's phone does."""
    _stack.django_child_setup(DB)
    return walkups_run(vendor_id, count=count, interval=interval, seed=seed)


# --- correctness ------------------------------------------------------------------------------


def fifo_check() -> dict:
    """Soonest-expiring first, two ways.

    replay: every allocation was written (created_at) while its order held the product's Stock row
    lock, so per (cart, product) the allocations in (created_at, id) order are the order in which
    sales took units. Replaying them from the loaded quantities, each sale must have taken exactly
    what "sellable lots by (sell_by, id), fill from the first" gives from what was left at that
    moment; `replay_violations` counts the sales that did not.

    end state: per (cart, product), sellable lots in (sell_by, id) order, a lot that was touched
    (left < loaded) while an earlier lot still has units left is a violation (nothing is released
    in this run, so a drained-in-order product is a prefix of empty lots, at most one partly sold
    lot, then untouched ones)."""
    from django.utils import timezone

    from vendors.models import LotAllocation, StockLot

    now = timezone.now()
    lots: dict[tuple[int, int], list[tuple]] = defaultdict(list)
    for row in (
        StockLot.objects.filter(sell_by__gt=now)
        .order_by("vendor_id", "product_id", "sell_by", "id")
        .values_list("id", "vendor_id", "product_id", "quantity_loaded", "quantity")
    ):
        lots[row[1], row[2]].append(row)
    end_violations = 0
    for rows in lots.values():
        for i, (_id, _v, _p, loaded, left) in enumerate(rows):
            if left < loaded and any(earlier[4] > 0 for earlier in rows[:i]):
                end_violations += 1
                break
    lot_of = {row[0]: key for key, rows in lots.items() for row in rows}
    sales: dict[tuple[int, int], dict[int, list]] = defaultdict(dict)
    for lot_id, reference, quantity, created in (
        LotAllocation.objects.filter(lot_id__in=list(lot_of))
        .order_by("created_at", "id")
        .values_list("lot_id", "reference", "quantity", "created_at")
    ):
        per = sales[lot_of[lot_id]].setdefault(reference, [created, {}])
        per[1][lot_id] = per[1].get(lot_id, 0) + quantity
    replay_violations = replayed = 0
    for key, orders in sales.items():
        left = {row[0]: row[3] for row in lots[key]}
        ordered = [row[0] for row in lots[key]]
        for _created, took in sorted(orders.values(), key=lambda x: x[0]):
            wanted, expected = sum(took.values()), {}
            for lot_id in ordered:
                if not wanted:
                    break
                take = min(wanted, left[lot_id])
                if take:
                    expected[lot_id] = take
                    wanted -= take
            replayed += 1
            if expected != took:
                replay_violations += 1
            for lot_id, n in took.items():
                left[lot_id] -= n
    return {
        "products_checked": len(lots),
        "end_state_violations": end_violations,
        "sales_replayed": replayed,
        "replay_violations": replay_violations,
    }


def audit(world: dict, walkup_orders: int) -> dict:
    from django.db.models import Count, F, Sum
    from django.utils import timezone

    from o2o.invariants import check_invariants
    from orders.models import Order, OrderLine, Status
    from vendors.models import LotAllocation, Stock, StockLot

    started = world["started"]
    sold = defaultdict(int)
    for v, p, n in (
        OrderLine.objects.filter(order__status=Status.HANDED_OVER)
        .values_list("order__vendor_id", "product_id")
        .annotate(n=Sum("quantity"))
    ):
        sold[v, p] = n
    loaded, left = defaultdict(int), defaultdict(int)
    for v, p, q_loaded, q_left in StockLot.objects.values_list(
        "vendor_id", "product_id", "quantity_loaded", "quantity"
    ):
        loaded[v, p] += q_loaded
        left[v, p] += q_left
    stock = dict(
        ((v, p), q) for v, p, q in Stock.objects.values_list("vendor_id", "product_id", "quantity")
    )
    allocated = defaultdict(int)
    for lot_id, n in (
        LotAllocation.objects.values_list("lot_id")
        .annotate(n=Sum(F("quantity") - F("released")))
        .values_list("lot_id", "n")
    ):
        allocated[lot_id] = n
    lots = list(StockLot.objects.values_list("id", "quantity_loaded", "quantity", "sell_by"))
    expired_touched = sum(
        1
        for lot_id, q0, q, sell_by in lots
        if sell_by <= started and (q != q0 or allocated[lot_id])
    )
    statuses = dict(Order.objects.values_list("status").annotate(n=Count("id")))
    invariants = check_invariants(now=timezone.now())
    stock_problems = {k: v for k, v in invariants.counts().items() if k.startswith("stock")}
    return {
        "lots_below_zero": sum(1 for _id, _q0, q, _s in lots if q < 0),
        "lots_over_allocated": sum(1 for lot_id, q0, _q, _s in lots if allocated[lot_id] > q0),
        "lots_allocation_mismatch": sum(
            1 for lot_id, q0, q, _s in lots if allocated[lot_id] != q0 - q
        ),
        "stock_not_sum_of_lots": sum(1 for k in loaded if stock.get(k, 0) != left[k]),
        "sold_plus_left_not_loaded": sum(1 for k in loaded if sold[k] + left[k] != loaded[k]),
        "expired_lots_touched": expired_touched,
        "invariants_stock": stock_problems,
        "invariants_other": {
            k: v for k, v in invariants.counts().items() if not k.startswith("stock")
        },
        "orders_by_status": statuses,
        "orders_not_handed_over": sum(n for s, n in statuses.items() if s != Status.HANDED_OVER),
        "walkup_cart_orders": Order.objects.filter(vendor_id=world["walkup_cart"]).count(),
        "walkup_journeys_ok": walkup_orders,
        "units_loaded": sum(loaded.values()),
        "units_sold": sum(sold.values()),
        "units_left": sum(left.values()),
    }


def sellable_left(vendor_ids: list[int]) -> dict[tuple[int, int], int]:
    from django.db.models import Sum
    from django.utils import timezone

    from vendors.models import StockLot

    return {
        (v, p): n
        for v, p, n in StockLot.objects.filter(vendor_id__in=vendor_ids, sell_by__gt=timezone.now())
        .values_list("vendor_id", "product_id")
        .annotate(n=Sum("quantity"))
    }


# --- main ---------------------------------------------------------------------------------------


def summarise(results: list[dict]) -> dict:
    ok = [r for r in results if r.get("ok")]
    return {
        "buyers": len(results),
        "handed_over": len(ok),
        "counter_page_ms": _stack.percentiles([r["counter_page_ms"] for r in ok], 1),
        "pay_step_ms": _stack.percentiles([r["pay_step_ms"] for r in ok], 1),
        "parts_p50_ms": {
            k: _stack.percentiles([r[k] for r in ok], 1).get("p50")
            for k in ("place_ms", "card_pay_ms", "return_ms")
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--workers", type=int, default=4, help="threads selling on the street")
    args = parser.parse_args()
    carts, seconds, per_minute, alone = (40, 20, 120, 8) if args.quick else (200, 120, 20, 20)
    load_start = os.getloadavg()[0]
    t_start = time.monotonic()

    before = redis_keys_before()
    env = setup_stack()
    log(f"seeding {carts} street carts + 1 walk-up cart, in lots")
    world = seed(carts=carts)
    initial = sellable_left(world["street"])
    log(f"{world['lots']} lots; {world['scarce']} scarce products; starting the server on {BASE}")
    server, server_log = _stack.start_server(
        {**env, "CONN_MAX_AGE": "0"}, port=PORT, log_name="bench-counter-street-server.log"
    )
    ctx = multiprocessing.get_context("spawn")
    try:
        log("warm-up journey (not timed), then the walk-up cart alone")
        warm = walkups_run(world["walkup_cart"], count=2, interval=0, seed=1)
        alone_results = walkups_run(world["walkup_cart"], count=alone, interval=0, seed=2)
        buyers = max(1, round(seconds * per_minute / 60))
        interval = 60 / per_minute
        log(
            f"the street: {len(world['street'])} carts, {args.workers} threads, {seconds}s; "
            f"walk-ups: {buyers} buyers, one every {interval:.1f}s"
        )
        go = threading.Event()
        with ctx.Pool(1) as pool:
            phones = pool.apply_async(walkups_child, (world["walkup_cart"], buyers, interval, 3))
            time.sleep(1.0)  # the child's Django set-up, before the clock starts
            go.set()
            street = street_run(world, workers=args.workers, seconds=seconds, start=go)
            log(f"street done in {street['wall']:.1f}s: {dict(street['tally'].values)}")
            busy_results = phones.get(timeout=seconds + 300)
    finally:
        _stack.stop_server(server)
    server_errors = len(re.findall(r'HTTP/1\.1" 5\d\d|Traceback', server_log.read_text()))

    all_http = warm + alone_results + busy_results
    http_errors = [r["error"] for r in all_http if not r.get("ok")]
    http_4xx = sum(1 for r in all_http if 400 <= r.get("status", 0) < 500)
    http_5xx = sum(1 for r in all_http if r.get("status", 0) >= 500)
    log("auditing")
    checks = audit(world, sum(1 for r in all_http if r.get("ok")))
    fifo = fifo_check()
    after = sellable_left(world["street"])
    sold_out = sum(1 for k, n in initial.items() if n > 0 and after.get(k, 0) == 0)

    tally = street["tally"]
    rate = tally.values["sales"] / street["wall"]
    busy, quiet = summarise(busy_results), summarise(alone_results)
    correctness = {
        "lots_below_zero": checks["lots_below_zero"],
        "lots_over_allocated": checks["lots_over_allocated"],
        "lots_allocation_mismatch": checks["lots_allocation_mismatch"],
        "stock_not_sum_of_lots": checks["stock_not_sum_of_lots"]
        + sum(checks["invariants_stock"].values()),
        "sold_plus_left_not_loaded": checks["sold_plus_left_not_loaded"],
        "expired_lots_touched": checks["expired_lots_touched"],
        "fifo_end_state_violations": fifo["end_state_violations"],
        "fifo_replay_violations": fifo["replay_violations"],
        "orders_not_handed_over": checks["orders_not_handed_over"],
        "street_errors": tally.values["errors"],
        "http_errors": len(http_errors),
        "server_log_5xx_or_traceback": server_errors,
    }
    p95_page, p95_pay = busy["counter_page_ms"].get("p95"), busy["pay_step_ms"].get("p95")
    targets = {
        "counter_page_p95_under_300ms": p95_page is not None and p95_page < 300,
        "pay_step_p95_under_1s": p95_pay is not None and p95_pay < 1000,
    }
    figures = {
        "benchmark": "counter_street",
        "quick": args.quick,
        "street": {
            "carts": len(world["street"]),
            "threads": args.workers,
            "seconds": round(street["wall"], 1),
            "sales_handed_over": tally.values["sales"],
            "sales_per_s": round(rate, 1),
            "sold_out_refusals": tally.values["sold_out"],
            "sale_ms": _stack.percentiles(tally.latencies, 1),
            "lots": world["lots"],
            "scarce_products": world["scarce"],
            "products_sold_out": sold_out,
            "units_loaded_sold_left": [
                checks["units_loaded"],
                checks["units_sold"],
                checks["units_left"],
            ],
        },
        "walkups_busy": {"per_minute": per_minute, **busy},
        "walkups_alone": quiet,
        "fifo": fifo,
        "correctness": correctness,
        "http_4xx": http_4xx,
        "http_5xx": http_5xx,
        "errors_sample": (tally.errors + http_errors)[:5],
        "orders_by_status": checks["orders_by_status"],
        "invariants_other": checks["invariants_other"],
        "targets": targets,
        "loadavg_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "wall_s": round(time.monotonic() - t_start, 1),
        "target": "correctness counters all 0 (no lot oversold, Stock == its lots, sold + left == "
        "loaded, soonest-expiring first, 0 errors); counter page p95 < 300 ms and pay step "
        "p95 < 1 s (2 cores, load generator included)",
    }
    figures["pass"] = all(v == 0 for v in correctness.values()) and all(targets.values())

    from django.db import connections

    connections.close_all()
    if not args.keep:
        _stack.drop_database(DB)
    removed = redis_cleanup(before)
    log(f"removed {removed} redis keys of this run")
    _stack.emit(figures)


if __name__ == "__main__":
    main()
