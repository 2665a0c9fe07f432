"""Ping ingest on PostgreSQL: pings per second with one and two worker processes.
Target: at least 2,200/s (about 11,000 carts pinging every 5 s) with two processes on a 2-core
machine.

    .venv/bin/python bench/ping_ingest.py [--quick]

Two paths, each with one and with two processes:
- batched (what the product runs): every vendor is a socket on an asyncio loop that submits its
  ping to the process's ingest batcher (tracking.ingest.PingBatcher, at most 200 pings or 25 ms
  a batch) and awaits its own result; the batcher records each batch with ping_record_many in a
  sync thread (database_sync_to_async), as the vendor websocket does. All of a process's sockets
  send at once each round, so this is the capacity: batches fill up to 200.
- single: ping_record once per ping in a plain loop (the HTTP-era path, for comparison).

Virtual time: round r is 5 s after round r-1 and `now` is the round's time, so every vendor's
60 s heartbeat broadcast falls inside the 13 timed rounds. Creates its own database
(bench_o2o_ingest), prints progress to stderr and one JSON object on the last line of stdout.
"""

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = "bench_o2o_ingest"
TARGET = 2200


def setup_env() -> None:
    base = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
    os.environ["DATABASE_URL"] = f"{base}/{DB}"
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
    os.environ["DJANGO_SETTINGS_MODULE"] = "o2o.settings"
    os.environ["O2O_IGNORE_DOTENV"] = "true"
    os.environ["LOG_LEVEL"] = "WARNING"


def recreate_db() -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {DB}")
    conn.close()


def seed(vendors: int) -> list[int]:
    import django

    django.setup()
    from django.core.management import call_command

    from o2o.accounts.models import User
    from tracking.models import VendorPosition
    from vendors.models import Vendor

    call_command("migrate", verbosity=0)
    users = User.objects.bulk_create(
        [User(email=f"v{i}@bench.test", password="!") for i in range(vendors)]
    )
    vs = Vendor.objects.bulk_create(
        [
            Vendor(
                user=u,
                name=f"v{i}",
                slug=f"v-{i}",
                status="approved",
                home_lat=37.55,
                home_lng=126.92,
                home_cell="8930e1d8683ffff",
            )
            for i, u in enumerate(users)
        ]
    )
    VendorPosition.objects.bulk_create([VendorPosition(vendor=v, on_shift=True) for v in vs])
    return [v.pk for v in vs]


def _position(vid: int, n: int, r: int) -> tuple[float, float]:
    # A cart creeping east: ~5 m per 5 s, a new public cell now and then.
    return 37.50 + (vid % 500) * 0.0005, 126.90 + r * 0.00006 + (n % 7) * 0.00001


def worker(
    mode: str, vendor_ids: list[int], rounds: int, start_epoch: float, out: mp.Queue
) -> None:
    import django

    django.setup()
    from datetime import UTC, datetime, timedelta

    from django.db import connection

    connection.ensure_connection()
    base = datetime.fromtimestamp(start_epoch, tz=UTC)
    if mode == "single":
        figures = _single(vendor_ids, rounds, base, timedelta)
    else:
        figures = _batched(vendor_ids, rounds, base, timedelta)
    out.put(figures)


def _single(vendor_ids, rounds, base, timedelta) -> dict:
    from tracking.services import ping_record

    accepted = rejected = 0
    started = time.perf_counter()
    for r in range(rounds + 1):
        if r == 1:
            # Round 0 is everyone coming on shift (first broadcast of each vendor, cold caches):
            # not timed. The timed rounds are the steady state, heartbeats included.
            accepted = rejected = 0
            started = time.perf_counter()
        at = base + timedelta(seconds=5 * r)
        for n, vid in enumerate(vendor_ids):
            lat, lng = _position(vid, n, r)
            res = ping_record(
                vendor_id=vid,
                lat=lat,
                lng=lng,
                accuracy_m=10.0,
                recorded_at=at,
                source="bench",
                now=at,
            )
            accepted += res.accepted
            rejected += not res.accepted
    return {"accepted": accepted, "rejected": rejected, "seconds": time.perf_counter() - started}


def _batched(vendor_ids, rounds, base, timedelta) -> dict:
    import asyncio

    from tracking.ingest import PingBatcher
    from tracking.services import PingIn, ping_record_many

    clock = {"now": base}

    def record(pings):
        # The batcher's own recorder less its fallback, with the round's virtual `now`.
        return ping_record_many(pings=pings, now=clock["now"])

    async def main() -> dict:
        batcher = PingBatcher(record)
        accepted = rejected = 0
        started = time.perf_counter()
        for r in range(rounds + 1):
            if r == 1:  # round 0 untimed, as in _single
                accepted = rejected = 0
                started = time.perf_counter()
                batcher.batch_sizes = []
            at = clock["now"] = base + timedelta(seconds=5 * r)
            sockets = []
            for n, vid in enumerate(vendor_ids):
                lat, lng = _position(vid, n, r)
                ping = PingIn(
                    vendor_id=vid, lat=lat, lng=lng, accuracy_m=10.0, recorded_at=at, source="bench"
                )
                sockets.append(batcher.submit(ping))
            for res in await asyncio.gather(*sockets):
                accepted += res.accepted
                rejected += not res.accepted
        sizes = batcher.batch_sizes
        return {
            "accepted": accepted,
            "rejected": rejected,
            "seconds": time.perf_counter() - started,
            "batches": len(sizes),
            "mean_batch": round(sum(sizes) / len(sizes), 1) if sizes else 0,
        }

    return asyncio.run(main())


def run(mode: str, processes: int, vendor_ids: list[int], rounds: int, start_epoch: float) -> dict:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    chunks = [vendor_ids[i::processes] for i in range(processes)]
    procs = [ctx.Process(target=worker, args=(mode, c, rounds, start_epoch, out)) for c in chunks]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    wall = time.perf_counter() - t0
    accepted = sum(r["accepted"] for r in results)
    rejected = sum(r["rejected"] for r in results)
    # Rate over the slowest worker's own loop (process start-up is not ingest).
    busiest = max(r["seconds"] for r in results)
    figures = {
        "mode": mode,
        "processes": processes,
        "pings": accepted + rejected,
        "accepted": accepted,
        "rejected": rejected,
        "pings_per_s": round((accepted + rejected) / busiest),
        "wall_s": round(wall, 2),
    }
    if mode == "batched":
        figures["mean_batch"] = round(sum(r["mean_batch"] for r in results) / len(results), 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    setup_env()
    # 13 rounds of 5 s: every vendor's 60 s heartbeat broadcast falls inside the timed window.
    vendors, rounds = (500, 13) if args.quick else (2000, 13)
    print(f"recreating {DB}; {vendors} vendors x {rounds} rounds per run", file=sys.stderr)
    recreate_db()
    ids = seed(vendors)
    figures = {"benchmark": "ping_ingest", "quick": args.quick, "vendors": vendors}
    load_start = [round(x, 2) for x in os.getloadavg()]
    now = time.time()
    runs = {}
    # Each run uses its own stretch of virtual time so no ping is a duplicate of an earlier run.
    for i, (mode, processes) in enumerate(
        [("batched", 1), ("batched", 2), ("single", 1), ("single", 2)]
    ):
        runs[(mode, processes)] = run(
            mode, processes, ids, rounds, now - 3400 + i * (5 * (rounds + 1) + 60)
        )
        print(f"{mode}, {processes} process(es): {runs[(mode, processes)]}", file=sys.stderr)
    rejected = sum(r["rejected"] for r in runs.values())
    two = runs[("batched", 2)]["pings_per_s"]
    figures.update(
        {
            "batched_one_process_pings_per_s": runs[("batched", 1)]["pings_per_s"],
            "batched_two_processes_pings_per_s": two,
            "batched_mean_batch": [runs[("batched", p)]["mean_batch"] for p in (1, 2)],
            "single_one_process_pings_per_s": runs[("single", 1)]["pings_per_s"],
            "single_two_processes_pings_per_s": runs[("single", 2)]["pings_per_s"],
            "rejected": rejected,
            "target_pings_per_s": TARGET,
            "pass": two >= TARGET and rejected == 0,
            "loadavg_start_end": [load_start, [round(x, 2) for x in os.getloadavg()]],
        }
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
