"""Pages are light (issue #18 item 5): the weight and first paint of the map, a vendor's page and a
customer's order page on a throttled phone, against the budget in o2o/page_budget.py.

    .venv/bin/python bench/page_weight.py [--quick] [--loads N] [--keep]

The world is the demo (`manage.py seed_demo`: 20 carts with stock, the demo customer's past
orders) plus 30 carts on shift around the map's centre, in a database of its own
(bench_o2o_page_weight). The static files are served as in production: collected with
CompressedManifestStaticFilesStorage into a temporary STATIC_ROOT and served by WhiteNoise
(gzip; bench/_production_static.py), by `manage.py serve` (uvicorn) on port 8772.

Debian's Chromium through Playwright, each load in a fresh context (cold cache), on
o2o.page_budget.PROFILE: 150 ms RTT, 1.6 Mbit/s down, 750 kbit/s up, CPU 4× slower, 360×780 at
DPR 2 with a phone's user agent. Every request to another host (the map's tiles, MAP_TILE_URL) is
aborted by a Playwright route before it leaves the machine: counted as `blocked`, never fetched.
Pages: /map/ anonymous, /vendors/<demo vendor>/ anonymous, /orders/<id>/ as the demo customer
(its latest order). Per page the median of 3 cold loads (quick: 1) of: requests, decoded and
transferred bytes by kind, FCP, DOMContentLoaded and load (ms from navigation start).

Redis db 10 with its own prefix, never flushed. Progress on stderr; one JSON object last on stdout.
"""

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack  # noqa: E402
from _stack import log  # noqa: E402

DB = "bench_o2o_page_weight"
PORT = 8772
BASE = f"http://127.0.0.1:{PORT}"
PREFIX = "bench-page-weight"


def build_world() -> dict[str, str]:
    """Seed the demo and 30 carts on shift; returns the pages' paths and the customer's session."""
    import random

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from orders.models import Order
    from tracking.views import DEFAULT_CENTRE
    from vendors.models import Vendor

    t0 = time.monotonic()
    call_command("seed_demo", "--quiet", stdout=io.StringIO())
    rng = random.Random(18)
    lat, lng = DEFAULT_CENTRE
    points = [
        (lat + rng.uniform(-0.006, 0.006), lng + rng.uniform(-0.008, 0.008)) for _ in range(30)
    ]
    _stack.seed_vendors(points, slug_prefix="weight", stock_fraction=1.0, rng=rng)
    log(f"seeded the demo and 30 carts on shift in {time.monotonic() - t0:.1f}s")

    vendor = Vendor.objects.get(user__email="vendor@o2o.test")
    customer = get_user_model().objects.get(email="customer@o2o.test")
    order = Order.objects.filter(customer__user=customer).order_by("-created_at", "-pk").first()
    if order is None:
        raise SystemExit("the demo customer has no order")
    client = Client()
    client.force_login(customer)
    return {
        "map": "/map/",
        "vendor": f"/vendors/{vendor.slug}/",
        "order": f"/orders/{order.pk}/",
        "session": client.cookies["sessionid"].value,
    }


def collect_static(env: dict[str, str]) -> None:
    t0 = time.monotonic()
    subprocess.run(
        [str(_stack.PY), "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=_stack.ROOT,
        env={**os.environ, **env},
        check=True,
    )
    log(f"collected the static files (hashed, gzip) in {time.monotonic() - t0:.1f}s")


def weigh_pages(world: dict[str, str], loads: int) -> dict[str, dict]:
    from playwright.sync_api import sync_playwright

    from o2o.page_budget import context_options, median_of, weigh

    def external(url: str) -> bool:
        return url.startswith(("http:", "https:")) and not url.startswith(BASE)

    out: dict[str, dict] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        try:
            for name in ("map", "vendor", "order"):
                runs = []
                for _ in range(loads):
                    context = browser.new_context(**context_options())
                    context.route(external, lambda route: route.abort())
                    if name == "order":
                        context.add_cookies(
                            [{"name": "sessionid", "value": world["session"], "url": BASE}]
                        )
                    page = context.new_page()
                    runs.append(weigh(page, BASE + world[name]))
                    context.close()
                out[name] = {"path": world[name], **median_of(runs)}
                log(
                    f"{name}: {out[name]['requests']} requests, {out[name]['bytes']:,} B decoded, "
                    f"{out[name]['transfer_bytes']:,} B transferred, FCP {out[name]['fcp_ms']} ms"
                )
        finally:
            browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one cold load per page")
    parser.add_argument("--loads", type=int, help="cold loads per page (default 3; quick 1)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    loads = args.loads or (1 if args.quick else 3)
    load_start = os.getloadavg()
    started = time.monotonic()

    static_root = tempfile.mkdtemp(prefix="o2o-page-weight-static-")
    env = {
        **_stack.configure(DB),
        "REDIS_URL": "redis://127.0.0.1:6379/10",
        "CACHE_PREFIX": PREFIX,
        "CHANNELS_PREFIX": PREFIX,
        "STATIC_ROOT": static_root,
    }
    os.environ.update(env)
    log(f"recreating database {DB} (Redis db 10, prefix {PREFIX}, not flushed)")
    _stack.recreate_database(DB)
    import django

    django.setup()
    from o2o.page_budget import BUDGET, PROFILE, over_budget

    _stack.migrate(DB)
    world = build_world()
    server_env = {**env, "DJANGO_SETTINGS_MODULE": "bench._production_static"}
    collect_static(server_env)
    server, logfile = _stack.start_server(server_env, port=PORT, log_name="bench-page-weight.log")
    try:
        pages = weigh_pages(world, loads)
    finally:
        _stack.stop_server(server)
        shutil.rmtree(static_root, ignore_errors=True)
        if not args.keep:
            from django.db import connections

            connections.close_all()
            _stack.drop_database(DB)

    problems = [p for name, w in pages.items() for p in over_budget(name, w, timings=True)]
    _stack.emit(
        {
            "benchmark": "page_weight",
            "quick": args.quick,
            "loads_per_page": loads,
            "profile": PROFILE,
            "static": "production (CompressedManifestStaticFilesStorage, WhiteNoise)",
            "external_requests": "aborted (map tiles), counted as blocked",
            "pages": pages,
            "budget": BUDGET,
            "over_budget": problems,
            "seconds": round(time.monotonic() - started, 1),
            "loadavg_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
            "target": "every page within o2o.page_budget.BUDGET (requests, bytes, JS bytes, FCP)",
            "pass": not problems,
        }
    )


if __name__ == "__main__":
    main()
