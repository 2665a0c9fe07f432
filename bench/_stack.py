"""Shared helpers for the benchmarks: a throw-away PostgreSQL database and Redis db 14 on
127.0.0.1, Django set up on them, fast seeding of approved on-shift vendors, percentiles, and the
one-JSON-line result.

Not a benchmark itself: run directly it only says so (so `make bench`'s bench/*.py loop passes).
"""

import contextlib
import hashlib
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = ROOT / ".venv" / "bin" / "python"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_DB = 14
_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def bench_env(db_name: str, redis_db: int | None = None) -> dict[str, str]:
    """The environment every process of a benchmark runs with (set here, never from .env).
    Redis db REDIS_DB unless `redis_db` is given."""
    redis_db = REDIS_DB if redis_db is None else redis_db
    return {
        "DATABASE_URL": f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{db_name}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "DJANGO_SETTINGS_MODULE": "o2o.settings",
        "O2O_IGNORE_DOTENV": "1",
        "DJANGO_ENV": "development",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "INPROCESS_SCHEDULER": "false",
        "CONN_MAX_AGE": "600",
        "PYTHONUNBUFFERED": "1",
        # The public cell's privacy delay (issue #13 item 10) off: the benchmarks measure fan-out
        # latency and throughput, not privacy; all four 0 publish every fix's own cell at once.
        "PUBLIC_CELL_MARGIN_M": "0",
        "PUBLIC_CELL_HOLD_S": "0",
        "PUBLIC_CELL_DELAY_MIN_S": "0",
        "PUBLIC_CELL_DELAY_MAX_S": "0",
    }


def configure(db_name: str, redis_db: int | None = None) -> dict[str, str]:
    env = bench_env(db_name, redis_db)
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return env


def recreate_database(db_name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", **PG)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{db_name}"')
    conn.close()


def drop_database(db_name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", **PG)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    conn.close()


def _template_name() -> str:
    """The migrated template's name: a hash of every migration and of the versions of the
    packages whose migrations are part of the schema, so a change makes a new one."""
    from importlib.metadata import version

    packages = ("django", "djangorestframework", "django-celery-beat", "django-axes")
    digest = hashlib.sha256(" ".join(f"{p}={version(p)}" for p in packages).encode())
    for path in sorted([*ROOT.glob("*/migrations/*.py"), *ROOT.glob("*/*/migrations/*.py")]):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return f"bench_o2o_tpl_{digest.hexdigest()[:12]}"


def migrate(db_name: str) -> None:
    """`migrate` the (new, empty) benchmark database, after `django.setup()`. The first run
    migrates (~35 s) and keeps the result as a template database; later runs copy the template
    (`CREATE DATABASE ... TEMPLATE`, ~1 s), which keeps the quick runs under a minute."""
    import psycopg2
    from django.core.management import call_command
    from django.db import connections

    template = _template_name()
    conn = psycopg2.connect(dbname="postgres", **PG)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template])
            if cur.fetchone():
                connections.close_all()
                cur.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
                cur.execute(f'CREATE DATABASE "{db_name}" TEMPLATE "{template}"')
                log(f"database {db_name} copied from the migrated template {template}")
                return
            log(f"migrating (once: the result is kept as the template {template})")
            call_command("migrate", verbosity=0)
            connections.close_all()
            cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'bench_o2o_tpl_%%'")
            for (old,) in cur.fetchall():  # templates of older migrations
                cur.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
            # Another benchmark may make it at the same moment.
            with contextlib.suppress(psycopg2.errors.DuplicateDatabase):
                cur.execute(f'CREATE DATABASE "{template}" TEMPLATE "{db_name}"')
    finally:
        conn.close()


def flush_redis(redis_db: int | None = None) -> None:
    """FLUSHDB of the benchmark's own Redis db, REDIS_DB unless told (read at the call: a
    benchmark may set it); never FLUSHALL: other runs use other dbs."""
    import redis

    redis_db = REDIS_DB if redis_db is None else redis_db

    client = redis.Redis(host="127.0.0.1", port=6379, db=redis_db)
    client.flushdb()
    client.close()


def setup_stack(
    db_name: str, *, redis_db: int | None = None, prefix: str | None = None
) -> dict[str, str]:
    """Fresh database + Redis db 14 (flushed), Django set up on them and migrated. Returns the env.

    With `prefix`: Redis db `redis_db` (default REDIS_DB) is NOT flushed (others use it); the run's
    cache and channel-layer keys carry `prefix` instead, and redis_cleanup(prefix) deletes them."""
    env = configure(db_name, redis_db)
    if prefix:
        extra = {"CACHE_PREFIX": prefix, "CHANNELS_PREFIX": prefix}
        os.environ.update(extra)
        env = {**env, **extra}
        log(f"recreating database {db_name} (redis {env['REDIS_URL']} kept: prefix {prefix})")
    else:
        log(f"recreating database {db_name}, flushing redis db {env['REDIS_URL']}")
    recreate_database(db_name)
    if not prefix:
        flush_redis(redis_db)
    import django

    django.setup()
    migrate(db_name)
    return env


def redis_cleanup(prefix: str, redis_db: int) -> int:
    """Delete the keys that start with `prefix` in Redis db `redis_db` (never a flush)."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=redis_db)
    mine = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(mine), 1000):
        client.delete(*mine[start : start + 1000])
    client.close()
    return len(mine)


def django_child_setup(
    db_name: str, settings_module: str | None = None, extra_path: str | None = None
) -> None:
    """For a spawned child process: the same env, Django set up, no migration."""
    configure(db_name)
    if extra_path and extra_path not in sys.path:
        sys.path.insert(0, extra_path)
    if settings_module:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django

    django.setup()


SNACKS = [
    "붕어빵",
    "떡볶이",
    "호떡",
    "군고구마",
    "타코야키",
    "어묵",
    "계란빵",
    "닭꼬치",
    "핫도그",
    "와플",
]


PICKUP = (37.5494, 126.9144)  # the benches' pickup point, open around the clock


def pickup_and_snacks(*, slug: str):
    """A pickup point open around the clock at PICKUP and a category of SNACKS (sku
    "<slug>-<n>"): the world the order benches place into. Call inside a transaction."""
    from datetime import time as dtime

    from vendors.models import Category, OpeningHours, PickupPoint, Product

    point = PickupPoint.objects.create(
        name="벤치 픽업", address="서울 마포구 양화로 45", lat=PICKUP[0], lng=PICKUP[1]
    )
    OpeningHours.objects.bulk_create(
        [
            OpeningHours(point=point, weekday=d, opens=dtime(0, 0), closes=dtime(23, 59, 59))
            for d in range(7)
        ]
    )
    category, _ = Category.objects.get_or_create(
        slug=slug, defaults={"name_ko": "간식", "name_en": "Snacks"}
    )
    products = Product.objects.bulk_create(
        [
            Product(
                sku=f"{slug}-{n}",
                name_ko=name,
                name_en=f"Snack {n}",
                price=1500 + 500 * n,
                category=category,
            )
            for n, name in enumerate(SNACKS)
        ]
    )
    return point, category, products


def seed_vendors(
    points: list[tuple[float, float]],
    *,
    slug_prefix: str = "bench",
    stock_fraction: float = 0.0,
    batch_size: int = 5_000,
    positions: list[tuple[float, float]] | None = None,
    rng=None,
) -> list[tuple[int, str]]:
    """Approved vendors on shift, one per home point, with a live position (presence moving) at
    `positions` (default: the home point), public cell at PUBLIC_CELL_RES and its coarse parent.
    bulk_create in batches; no service areas. Returns [(vendor_id, slug)] in input order."""
    import random
    from datetime import timedelta

    import h3
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from o2o.accounts.models import User
    from tracking.models import Presence, VendorPosition
    from vendors.models import Category, Product, Stock, Vendor
    from vendors.services import stock_lots_fill

    rng = rng or random.Random(0)
    positions = positions or points
    now = timezone.now()
    seen = now - timedelta(seconds=10)
    out: list[tuple[int, str]] = []
    for start in range(0, len(points), batch_size):
        chunk = range(start, min(start + batch_size, len(points)))
        with transaction.atomic():
            users = User.objects.bulk_create(
                [
                    User(
                        email=f"{slug_prefix}-{i}@bench.test",
                        name=f"Bench vendor {i}",
                        password="!bench-unusable",
                        date_joined=now,
                    )
                    for i in chunk
                ],
                batch_size=batch_size,
            )
            vendors = []
            for user, i in zip(users, chunk, strict=True):
                lat, lng = points[i]
                vendors.append(
                    Vendor(
                        user=user,
                        name=f"{SNACKS[i % len(SNACKS)]} {slug_prefix} {i:06d}",
                        slug=f"{slug_prefix}-{i:06d}",
                        status=Vendor.Status.APPROVED,
                        status_changed_at=now,
                        home_lat=lat,
                        home_lng=lng,
                        home_cell=h3.latlng_to_cell(lat, lng, settings.PUBLIC_CELL_RES),
                    )
                )
            vendors = Vendor.objects.bulk_create(vendors, batch_size=batch_size)
            rows = []
            for vendor, i in zip(vendors, chunk, strict=True):
                lat, lng = positions[i]
                cell = h3.latlng_to_cell(lat, lng, settings.PUBLIC_CELL_RES)
                rows.append(
                    VendorPosition(
                        vendor=vendor,
                        on_shift=True,
                        shift_started_at=now - timedelta(hours=1),
                        presence=Presence.MOVING,
                        lat=lat,
                        lng=lng,
                        accuracy_m=10.0,
                        recorded_at=seen,
                        last_ping_at=seen,
                        anchor_lat=lat,
                        anchor_lng=lng,
                        anchor_at=seen,
                        public_cell=cell,
                        coarse_cell=h3.cell_to_parent(cell, settings.MAP_GROUP_RES),
                        last_broadcast_at=seen,
                    )
                )
            VendorPosition.objects.bulk_create(rows, batch_size=batch_size)
            out.extend((v.pk, v.slug) for v in vendors)
    if stock_fraction > 0:
        category, _ = Category.objects.get_or_create(
            slug="bench-snacks", defaults={"name_ko": "간식", "name_en": "Snacks"}
        )
        products = [
            Product.objects.get_or_create(
                sku=f"bench-{n}",
                defaults={
                    "name_ko": name,
                    "name_en": f"Snack {n}",
                    "price": 2000 + 500 * n,
                    "category": category,
                },
            )[0]
            for n, name in enumerate(SNACKS)
        ]
        stocked = [vid for vid, _slug in out if rng.random() < stock_fraction]
        stock = [
            Stock(vendor_id=vid, product=p, quantity=rng.randint(1, 40))
            for vid in stocked
            for p in rng.sample(products, 3)
        ]
        Stock.objects.bulk_create(stock, batch_size=batch_size)
        stock_lots_fill(batch_size=batch_size)  # every row the sum of its lots
    return out


def analyze(tables: list[str]) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        for table in tables:
            cur.execute(f"ANALYZE {table}")


def percentiles(values: list[float], digits: int = 2) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pct(p: float) -> float:
        k = max(0, min(len(ordered) - 1, math.ceil(p / 100.0 * len(ordered)) - 1))  # nearest rank
        return round(ordered[k], digits)

    return {
        "n": len(ordered),
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "mean": round(statistics.fmean(ordered), digits),
        "max": round(ordered[-1], digits),
    }


def plan_nodes(plan: dict) -> list[str]:
    """'Node Type on index/relation' for every node of an EXPLAIN (FORMAT JSON) plan, depth-first."""
    out = []
    label = plan.get("Node Type", "?")
    if plan.get("Index Name"):
        label += f" on {plan['Index Name']}"
    elif plan.get("Relation Name"):
        label += f" on {plan['Relation Name']}"
    out.append(label)
    for child in plan.get("Plans", []):
        out.extend(plan_nodes(child))
    return out


def emit(result: dict) -> None:
    """The figures: one JSON object, the last line of stdout."""
    sys.stdout.flush()
    print(json.dumps(result, ensure_ascii=False, separators=(",", ":")), flush=True)


def uvicorn_command(app: str, port: int, *, deflate: str = "false") -> list[str]:
    """uvicorn on 127.0.0.1:`port` with the options `manage.py serve` and production use
    (proxy headers, a websocket ping every 20 s, per-message deflate off unless told)."""
    return [
        str(ROOT / ".venv" / "bin" / "uvicorn"),
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--proxy-headers",
        "--ws-ping-interval",
        "20",
        "--ws-per-message-deflate",
        deflate,
    ]


def start_server(env: dict[str, str], *, port: int, log_name: str):
    """`manage.py serve` (uvicorn: the platform and the sandbox) on `port`, its output in
    test-artifacts/<log_name>; returns (process, log path) once /healthz answers."""
    import subprocess

    import httpx

    logfile = ROOT / "test-artifacts" / log_name
    logfile.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [str(PY), "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=logfile.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{logfile.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc, logfile
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit(f"server did not answer /healthz:\n{logfile.read_text()[-3000:]}")


def stop_server(proc) -> None:
    import subprocess

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


if __name__ == "__main__":
    print("bench/_stack.py holds shared helpers; it is not a benchmark.", file=sys.stderr)
    emit({"benchmark": "_stack", "helper": True, "target": "n/a", "pass": True})
