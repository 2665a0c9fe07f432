"""One morning of regulars on PostgreSQL: every due delivery made, ordered and charged off-session
through the sandbox over HTTP, exactly once; killed halfway and restarted; and the round page of
a vendor with 400 stops.

    .venv/bin/python bench/subscriptions_morning.py [--quick] [--keep] [--workers N]

1. Seed N subscriptions (full 50,000, quick 500) across V vendors (1,000 / 50), every day,
   each its own customer with an address in the vendor's area and a card saved at the sandbox.
2. The evening run (`deliveries_prepare`: the Delivery rows and the notices), timed, with the
   process's peak memory before and after.
3. The morning: W worker processes (default 2) each loop `deliveries_place` (batches of 200) and
   the charge effects (`effects_run`, kind subscription.charge) as Celery's relay would, each
   charge an HTTP call to the sandbox served by `manage.py serve`. When half the deliveries are
   ordered, every worker is SIGKILLed; new workers finish the morning (a charge cut off by the kill
   runs again once its lease is over: the final sweep runs as of after the lease).
4. Audit: one Delivery per subscription, each ordered, one order and one card charge each, as
   many sandbox intents as charges, every payment authorised; a re-run of both runs creates and
   charges nothing. Peak resident memory of each worker above its start, against how many
   deliveries it did (flat = the same at 2,000 and 50,000).
5. The round: one vendor with 400 stops today; GET /round/ and /api/vendor/round/ over HTTP as
   that vendor, 60 times each (quick: 30): p50 / p95 (target p95 < 100 ms for the page).

Creates its own database (bench_o2o_subs) and Redis db 14, serves on port 8767, prints progress
on stderr and one JSON object on the last line of stdout.
"""

import argparse
import multiprocessing as mp
import os
import re
import resource
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack  # noqa: E402
from _stack import log  # noqa: E402

DB = "bench_o2o_subs"
PORT = 8767
BASE = f"http://127.0.0.1:{PORT}"
CENTRE = (37.5560, 126.9060)
ROUND_STOPS = 400


def extra_env() -> dict[str, str]:
    return {
        "SANDBOX_BASE_URL": BASE,
        "PLATFORM_BASE_URL": BASE,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SANDBOX_WEBHOOK_DUPLICATE_RATE": "0",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "ORDER_AHEAD_MIN_MINUTES": "1",
    }


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- seeding --------------------------------------------------------------------------------------


def seed(*, subscriptions: int, vendors: int, batch: int = 5_000) -> dict:
    import random

    import h3
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from customers.models import Address, CustomerProfile
    from o2o.accounts.models import User
    from payments.models import SavedCard
    from payments.sandbox.models import SandboxCustomer, SandboxPaymentMethod
    from subscriptions.models import Subscription, SubscriptionItem
    from vendors.models import Category, Product, ServiceCell, Stock, VendorHours
    from vendors.services import stock_lots_fill

    rng = random.Random(7)
    # Vendors spread over ~20 km × 20 km around Mapo, each with its area (its cell and ring 1).
    points = [
        (CENTRE[0] + rng.uniform(-0.09, 0.09), CENTRE[1] + rng.uniform(-0.11, 0.11))
        for _ in range(vendors)
    ]
    seeded = _stack.seed_vendors(points, slug_prefix="subs")
    vendor_ids = [vid for vid, _slug in seeded]
    category, _ = Category.objects.get_or_create(
        slug="bench-dairy", defaults={"name_ko": "유제품", "name_en": "Dairy"}
    )
    product = Product.objects.create(
        sku="bench-yakult", name_ko="야쿠르트", name_en="Yakult", price=1200, category=category
    )
    zero, last = datetime.min.time(), datetime.max.time().replace(microsecond=0, second=0)
    with transaction.atomic():
        Stock.objects.bulk_create(
            [Stock(vendor_id=vid, product=product, quantity=10**6) for vid in vendor_ids],
            batch_size=batch,
        )
        stock_lots_fill(vendor_ids=list(vendor_ids))  # every row the sum of its lots
        VendorHours.objects.bulk_create(
            [
                VendorHours(vendor_id=vid, weekday=day, opens=zero, closes=last)
                for vid in vendor_ids
                for day in range(7)
            ],
            batch_size=batch,
        )
        cells = []
        for vid, (lat, lng) in zip(vendor_ids, points, strict=True):
            home = h3.latlng_to_cell(lat, lng, settings.SERVICE_AREA_RES)
            cells += [ServiceCell(vendor_id=vid, cell=c) for c in h3.grid_disk(home, 1)]
        ServiceCell.objects.bulk_create(cells, batch_size=batch)
    now = timezone.now()
    today = timezone.localdate()
    for start in range(0, subscriptions, batch):
        chunk = range(start, min(start + batch, subscriptions))
        with transaction.atomic():
            users = User.objects.bulk_create(
                [
                    User(
                        email=f"regular-{i}@bench.test",
                        name=f"Regular {i}",
                        password="!bench-unusable",
                        date_joined=now,
                    )
                    for i in chunk
                ],
                batch_size=batch,
            )
            customers = CustomerProfile.objects.bulk_create(
                [CustomerProfile(user=u) for u in users], batch_size=batch
            )
            addresses, owners = [], []
            for customer, i in zip(customers, chunk, strict=True):
                vid = vendor_ids[i % vendors]
                lat, lng = points[i % vendors]
                lat, lng = lat + rng.uniform(-0.002, 0.002), lng + rng.uniform(-0.002, 0.002)
                addresses.append(
                    Address(
                        customer=customer,
                        label="home",
                        line1=f"서울 마포구 벤치로 {i}",
                        lat=lat,
                        lng=lng,
                        cell=h3.latlng_to_cell(lat, lng, settings.PUBLIC_CELL_RES),
                        is_default=True,
                    )
                )
                owners.append(vid)
            addresses = Address.objects.bulk_create(addresses, batch_size=batch)
            sandbox_customers = SandboxCustomer.objects.bulk_create(
                [SandboxCustomer(id=f"cus_bench_{i}", reference=f"customer-{i}") for i in chunk],
                batch_size=batch,
            )
            methods = SandboxPaymentMethod.objects.bulk_create(
                [
                    SandboxPaymentMethod(
                        id=f"pm_bench_{i}",
                        customer=sc,
                        number="4242424242424242",
                        last4="4242",
                        exp_month=12,
                        exp_year=2039,
                    )
                    for sc, i in zip(sandbox_customers, chunk, strict=True)
                ],
                batch_size=batch,
            )
            cards = SavedCard.objects.bulk_create(
                [
                    SavedCard(
                        customer=customer,
                        provider="sandbox",
                        provider_customer_ref=sc.id,
                        payment_method_ref=pm.id,
                        brand="visa",
                        last4="4242",
                        exp_month=12,
                        exp_year=2039,
                        is_default=True,
                    )
                    for customer, sc, pm in zip(customers, sandbox_customers, methods, strict=True)
                ],
                batch_size=batch,
            )
            subs = Subscription.objects.bulk_create(
                [
                    Subscription(
                        customer=customer,
                        vendor_id=vid,
                        address=address,
                        plan="anytime",
                        starts_on=today,
                        schedule_from=today,
                        weekdays=0b1111111,
                        card=card,
                    )
                    for customer, vid, address, card in zip(
                        customers, owners, addresses, cards, strict=True
                    )
                ],
                batch_size=batch,
            )
            SubscriptionItem.objects.bulk_create(
                [
                    SubscriptionItem(subscription=s, product=product, quantity=1, unit_price=1200)
                    for s in subs
                ],
                batch_size=batch,
            )
        log(f"seeded {min(start + batch, subscriptions)} / {subscriptions} subscriptions")
    _stack.analyze(
        [
            "subscriptions_subscription",
            "subscriptions_subscriptionitem",
            "customers_address",
            "payments_savedcard",
            "vendors_stock",
            "vendors_servicecell",
            "vendors_vendorhours",
        ]
    )
    return {"vendor_ids": vendor_ids, "product_id": product.pk, "today": today}


# --- the morning's workers ------------------------------------------------------------------------


def worker(day_iso: str, stop_when_done: bool, out) -> None:
    """Place and charge until nothing is due (or killed). Reports how many it did and its peak
    resident memory above its level after its first batch."""
    _stack.django_child_setup(DB)
    from django.db import connection
    from django.utils import timezone

    from o2o.effects import effects_run
    from subscriptions import delivery as flow

    day = date.fromisoformat(day_iso)
    placed = charged = 0
    base_rss = None
    while True:
        counts = flow.deliveries_place(on=day, limit=flow.PLACE_BATCH_SIZE, now=timezone.now())
        placed += counts.get("ordered", 0)
        ran = effects_run(kinds=[flow.CHARGE], limit=200)
        charged += ran["done"]
        if base_rss is None:
            base_rss = rss_mb()
        if stop_when_done and not counts and not sum(ran.values()):
            break
    connection.close()
    out.put({"placed": placed, "charged": charged, "rss_growth_mb": rss_mb() - (base_rss or 0)})


def morning(day: date, workers: int, kill_at: float | None) -> dict:
    from subscriptions.models import Delivery

    ctx = mp.get_context("spawn")
    total = Delivery.objects.filter(date=day).count()
    out = ctx.Queue()
    t0 = time.monotonic()
    killed_at = None
    procs = [ctx.Process(target=worker, args=(day.isoformat(), True, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    if kill_at is not None:
        while True:
            ordered = Delivery.objects.filter(date=day, status=Delivery.Status.ORDERED).count()
            if ordered >= total * kill_at or not any(p.is_alive() for p in procs):
                break
            time.sleep(0.5)
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
        for p in procs:
            p.join()
        killed_at = Delivery.objects.filter(date=day, status=Delivery.Status.ORDERED).count()
        log(f"SIGKILLed {workers} workers with {killed_at} / {total} ordered; restarting")
        procs = [
            ctx.Process(target=worker, args=(day.isoformat(), True, out)) for _ in range(workers)
        ]
        for p in procs:
            p.start()
    reports = []
    for p in procs:
        p.join()
    while not out.empty():
        reports.append(out.get())
    return {"wall_s": time.monotonic() - t0, "killed_with_ordered": killed_at, "reports": reports}


def final_sweep() -> dict:
    """Charges a killed worker was running stay leased until their lease ends: run as of after it
    (what the relay's next sweep does once the lease is over)."""
    from django.utils import timezone

    from o2o.effects import effects_run
    from subscriptions import delivery as flow

    later = timezone.now() + timedelta(minutes=5)
    total = {"done": 0, "retry": 0, "failed": 0, "deferred": 0}
    while True:
        ran = effects_run(kinds=[flow.CHARGE], limit=500, now=later)
        for k, v in ran.items():
            total[k] += v
        if not sum(ran.values()):
            return total


def audit(day: date, subscriptions: int) -> dict:
    from django.db.models import Count

    from o2o.models import Effect
    from orders.models import Order, Status
    from payments.models import CardCharge, Payment
    from payments.sandbox.models import SandboxIntent
    from subscriptions.models import Delivery

    deliveries = Delivery.objects.filter(date=day)
    by_status = dict(deliveries.values_list("status").annotate(n=Count("pk")))
    twice = deliveries.values("subscription_id").annotate(n=Count("pk")).filter(n__gt=1).count()
    orders = Order.objects.filter(subscription_delivery__date=day)
    return {
        "deliveries": deliveries.count(),
        "deliveries_by_status": by_status,
        "deliveries_twice": twice,
        "subscriptions_without_delivery": subscriptions - deliveries.count(),
        "orders": orders.count(),
        "orders_accepted": orders.filter(status=Status.ACCEPTED).count(),
        "card_charges": CardCharge.objects.count(),
        "charges_authorised": CardCharge.objects.filter(outcome="authorised").count(),
        "sandbox_intents": SandboxIntent.objects.count(),
        "payments_authorised": Payment.objects.filter(status=Payment.Status.AUTHORISED).count(),
        "charge_effects_pending": Effect.objects.filter(
            kind="subscription.charge", status=Effect.Status.PENDING
        ).count(),
    }


# --- the round page -------------------------------------------------------------------------------


def round_scenario(world: dict, requests: int = 60) -> dict:
    import uuid

    import httpx
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import transaction
    from django.utils import timezone

    from orders.models import Fulfilment, Order, OrderLine, Status
    from vendors.models import Vendor

    vendor = Vendor.objects.select_related("user").get(pk=world["vendor_ids"][0])
    zone = timezone.get_current_timezone()
    start = datetime.combine(world["today"], datetime.min.time(), tzinfo=zone) + timedelta(hours=8)
    import random

    rng = random.Random(3)
    customer_ids = list(
        vendor.subscriptions.values_list("customer_id", flat=True)[:ROUND_STOPS]
    ) or [None]
    from customers.models import CustomerProfile

    if customer_ids == [None]:
        customer_ids = [CustomerProfile.objects.values_list("pk", flat=True).first()]
    with transaction.atomic():
        orders = Order.objects.bulk_create(
            [
                Order(
                    customer_id=customer_ids[i % len(customer_ids)],
                    vendor=vendor,
                    status=Status.ACCEPTED,
                    fulfilment=Fulfilment.DELIVERY,
                    delivery_address=f"서울 마포구 라운드로 {i}",
                    delivery_lat=vendor.home_lat + rng.uniform(-0.004, 0.004),
                    delivery_lng=vendor.home_lng + rng.uniform(-0.004, 0.004),
                    window_start=start,
                    window_end=start + timedelta(hours=10),
                    subtotal=2400,
                    total=2400,
                    commission_bps=1000,
                    commission=240,
                    handover_code="1234",
                    checkout_token=uuid.uuid4(),
                )
                for i in range(ROUND_STOPS)
            ]
        )
        OrderLine.objects.bulk_create(
            [
                OrderLine(
                    order=o,
                    product_id=world["product_id"],
                    name_ko="야쿠르트",
                    name_en="Yakult",
                    unit_price=1200,
                    quantity=2,
                    line_total=2400,
                )
                for o in orders
            ]
        )
    _stack.analyze(["orders_order", "orders_orderline"])
    session = SessionStore()
    session[SESSION_KEY] = str(vendor.user.pk)
    session[BACKEND_SESSION_KEY] = next(
        b for b in settings.AUTHENTICATION_BACKENDS if "axes" not in b.lower()
    )
    session[HASH_SESSION_KEY] = vendor.user.get_session_auth_hash()
    session.create()
    cookies = {settings.SESSION_COOKIE_NAME: session.session_key, "django_language": "ko"}
    figures = {}
    with httpx.Client(base_url=BASE, cookies=cookies, timeout=30) as client:
        for name, path in (("page", "/round/"), ("api", "/api/vendor/round/")):
            first = client.get(path)  # warm-up, outside the figures
            assert first.status_code == 200, (path, first.status_code, first.text[:300])
            times = []
            for _ in range(requests):
                t = time.perf_counter()
                r = client.get(path)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200
            figures[name] = _stack.percentiles(times, 1)
        stops = len(re.findall(r'data-testid="stop-\d+"', client.get("/round/").text))
    return {"stops": stops, "ms": figures}


# --- the server ---------------------------------------------------------------------------------


def start_server(env: dict) -> tuple[subprocess.Popen, Path]:
    return _stack.start_server(env, port=PORT, log_name="bench-subscriptions-server.log")


stop_server = _stack.stop_server


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    subscriptions, vendors = (500, 50) if args.quick else (50_000, 1_000)
    load_start = os.getloadavg()
    os.environ.update(extra_env())
    env = _stack.setup_stack(DB)
    log(f"seeding {subscriptions} subscriptions across {vendors} vendors")
    t = time.monotonic()
    world = seed(subscriptions=subscriptions, vendors=vendors)
    seed_s = time.monotonic() - t

    server, server_log = start_server({**env, **extra_env(), "CONN_MAX_AGE": "0"})
    try:
        from subscriptions import delivery as flow

        day = world["today"]
        rss_before = rss_mb()
        t = time.monotonic()
        prepared = flow.deliveries_prepare(on=day)
        prepare_s = time.monotonic() - t
        prepare_rss = rss_mb() - rss_before
        log(f"evening run: {prepared} in {prepare_s:.1f}s (+{prepare_rss:.1f} MB peak)")

        run = morning(day, args.workers, kill_at=0.5)
        log(f"morning: {run['wall_s']:.1f}s, reports {run['reports']}")
        swept = final_sweep()
        log(f"sweep after the lease: {swept}")
        first = audit(day, subscriptions)
        log(f"audit: {first}")

        # A re-run of both runs creates and charges nothing
        again_prepare = flow.deliveries_prepare(on=day)
        again_place = flow.deliveries_place(on=day, limit=10**6)
        again = audit(day, subscriptions)
        rerun_new = {
            "deliveries": again_prepare.due + again_prepare.skipped,
            "notices": again_prepare.noticed,
            "placed": sum(again_place.values()),
            "charges": again["card_charges"] - first["card_charges"],
            "orders": again["orders"] - first["orders"],
        }
        log(f"re-run: {rerun_new}")
        log(f"round page: {ROUND_STOPS} stops")
        round_figures = round_scenario(world, requests=30 if args.quick else 60)
        log(f"round: {round_figures}")
    finally:
        stop_server(server)
        server_errors = len(re.findall(r'HTTP/1\.1" 5\d\d|Traceback', server_log.read_text()))
        if not args.keep:
            from django.db import connections

            connections.close_all()
            _stack.drop_database(DB)

    exactly_once = (
        first["deliveries"] == subscriptions
        and first["deliveries_twice"] == 0
        and first["orders"] == subscriptions
        and first["card_charges"] == subscriptions
        and first["sandbox_intents"] == subscriptions
        and first["payments_authorised"] == subscriptions
        and first["orders_accepted"] == subscriptions
        and first["charge_effects_pending"] == 0
    )
    rerun_nothing = not any(rerun_new.values())
    per_worker = [
        {
            "placed": r["placed"],
            "charged": r["charged"],
            "rss_growth_mb": round(r["rss_growth_mb"], 1),
        }
        for r in run["reports"]
    ]
    result = {
        "benchmark": "subscriptions_morning",
        "quick": args.quick,
        "subscriptions": subscriptions,
        "vendors": vendors,
        "workers": args.workers,
        "seed_s": round(seed_s, 1),
        "evening_s": round(prepare_s, 1),
        "evening_per_s": round(subscriptions / prepare_s, 1),
        "evening_peak_rss_growth_mb": round(prepare_rss, 1),
        "morning_s": round(run["wall_s"], 1),
        "morning_deliveries_per_s": round(subscriptions / run["wall_s"], 1),
        "killed_with_ordered": run["killed_with_ordered"],
        "after_restart_workers": per_worker,
        "sweep_after_lease": swept,
        "audit": first,
        "rerun_new": rerun_new,
        "server_5xx_or_tracebacks": server_errors,
        "round": round_figures,
        "loadavg_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
        "target": "every delivery exactly once after a kill; a re-run creates nothing; "
        "round page p95 < 100 ms",
    }
    result["pass"] = bool(
        exactly_once
        and rerun_nothing
        and server_errors == 0
        and round_figures["stops"] >= ROUND_STOPS
        and round_figures["ms"]["page"]["p95"] < 100
    )
    _stack.emit(result)


if __name__ == "__main__":
    main()
