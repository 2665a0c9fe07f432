"""Settlement of a day's completed orders on PostgreSQL: time and peak memory of the run, memory
against the number of orders, and the same run killed half-way (SIGKILL) and restarted.

The ledger is seeded with bulk SQL (INSERT … SELECT over generate_series) that writes exactly what
payments.ledger._capture posts for a captured payment: the payment row, then `capture`
(Dr provider_clearing, Cr customer_funds) and `commission` (Dr customer_funds, Cr vendor_payable:<id>
and commission_revenue), the balance trigger of the ledger left on. Full run: 1,000 vendors, a
small day of 10,000 orders and a large day of 100,000 (quick: 200 vendors, 2,000 and 20,000).

1. the small day, then the large day, each settled in a child process: the time of the run and
   its peak memory (the resident set sampled every 10 ms, above what it was before the run, and
   ru_maxrss), to show memory does not grow with the number of orders (with --tracemalloc both
   days are settled once more under tracemalloc for Python's own peak; slow);
2. the large day's settlements are deleted (the ledger is untouched) and settled again in a child
   that is SIGKILLed once half the vendors are done (batches of 20 journal transactions, so the
   kill is likely to land inside a vendor's settlement), then restarted: every order of the day must
   end settled exactly once (checked in SQL), with one settlement and one payout per vendor, the
   payouts adding up to the vendors' share.

    .venv/bin/python bench/settlement.py [--quick] [--keep] [--tracemalloc]

Creates its own database (bench_o2o_settlement), prints progress on stderr and one JSON object on
the last line of stdout.
"""

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack  # noqa: E402
from _stack import PY, ROOT, log  # noqa: E402

DB = "bench_o2o_settlement"
BPS = 1_000  # 10 % commission on every order
KILL_BATCH = 20


# --- seeding ------------------------------------------------------------------------------------


def seed_vendors(n: int) -> None:
    import random

    rng = random.Random(6)
    points = [
        (37.55 + rng.uniform(-0.05, 0.05), 126.95 + rng.uniform(-0.05, 0.05)) for _ in range(n)
    ]
    _stack.seed_vendors(points, slug_prefix="settle")
    from django.db import connection

    from payments import ledger

    for code in (ledger.PROVIDER_CLEARING, ledger.CUSTOMER_FUNDS, ledger.COMMISSION_REVENUE):
        ledger.account(code)
    with connection.cursor() as cur:
        # vendor_payable:<id>, as ledger.vendor_payable_account makes it
        cur.execute(
            """
            INSERT INTO payments_ledgeraccount (code, name, kind, currency, vendor_id, created_at)
            SELECT 'vendor_payable:' || id, 'Payable to vendor ' || id, 'liability', 'KRW', id, now()
              FROM vendors_vendor ORDER BY id
            """
        )


def seed_orders(*, first_order: int, count: int, day_start: datetime) -> float:
    """`count` captured orders spread over the day, round-robin over the vendors, booked as
    ledger._capture books them. Returns the seconds it took."""
    from django.db import connection, transaction

    from payments import ledger

    t0 = time.monotonic()
    ids = {
        code: ledger.account(code).pk
        for code in (ledger.PROVIDER_CLEARING, ledger.CUSTOMER_FUNDS, ledger.COMMISSION_REVENUE)
    }
    params = {
        "first": first_order,
        "last": first_order + count - 1,
        "day": day_start,
        "bps": BPS,
        "clearing": ids[ledger.PROVIDER_CLEARING],
        "funds": ids[ledger.CUSTOMER_FUNDS],
        "revenue": ids[ledger.COMMISSION_REVENUE],
    }
    with transaction.atomic(), connection.cursor() as cur:
        # Amounts 1,000-20,999; commission = amount × bps / 10,000 rounded half-up
        # (payments.commission.commission_of); the moment spread over the day; vendors in turn.
        cur.execute(
            """
            WITH v AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM vendors_vendor),
                 k AS (SELECT count(*) AS n FROM vendors_vendor)
            INSERT INTO payments_payment (
                order_id, amount, currency, status, provider, provider_ref, checkout_url,
                amount_captured, amount_refunded, failure_code, failure_message, card_brand,
                card_last4, vendor_id, commission, platform_fee, provider_fee, price_advantage,
                purpose, created_at, updated_at, authorised_at, captured_at)
            SELECT g, a.amount, 'KRW', 'captured', 'sandbox', 'pi_bench' || g, '',
                   a.amount, 0, '', '', 'visa', '4242', v.id,
                   (a.amount * %(bps)s + 5000) / 10000, 0, 0, 0, 'order', a.at, a.at, a.at, a.at
              FROM generate_series(%(first)s, %(last)s) g
              CROSS JOIN k
              JOIN v ON v.n = g %% k.n
              CROSS JOIN LATERAL (SELECT 1000 + (g * 7919) %% 20000 AS amount,
                                         %(day)s::timestamptz
                                         + make_interval(secs => (g * 37) %% 86000) AS at) a
             ORDER BY g
            """,
            params,
        )
        for kind, memo in (("capture", "captured"), ("commission", "vendor share and commission")):
            cur.execute(
                f"""
                INSERT INTO payments_journaltransaction (
                    key, kind, currency, memo, payment_id, refund_id, order_id, vendor_id,
                    created_by_id, created_at)
                SELECT '{kind}:' || p.id, '{kind}', 'KRW', 'order ' || p.order_id || ' {memo}',
                       p.id, NULL, p.order_id, p.vendor_id, NULL, p.captured_at
                  FROM payments_payment p
                 WHERE p.order_id BETWEEN %(first)s AND %(last)s
                 ORDER BY p.id
                """,
                params,
            )
        cur.execute(
            """
            INSERT INTO payments_ledgerentry (transaction_id, account_id, side, amount)
            SELECT j.id, x.account_id, x.side, x.amount
              FROM payments_journaltransaction j
              JOIN payments_payment p ON p.id = j.payment_id
              JOIN payments_ledgeraccount va ON va.vendor_id = p.vendor_id
              CROSS JOIN LATERAL (VALUES
                  ('capture', %(clearing)s, 'D', p.amount_captured),
                  ('capture', %(funds)s, 'C', p.amount_captured),
                  ('commission', %(funds)s, 'D', p.amount_captured),
                  ('commission', va.id, 'C', p.amount_captured - p.commission - p.platform_fee),
                  ('commission', %(revenue)s, 'C', p.commission)
              ) AS x(kind, account_id, side, amount)
             WHERE p.order_id BETWEEN %(first)s AND %(last)s
               AND x.kind = j.kind AND x.amount > 0
             ORDER BY j.id
            """,
            params,
        )
    # The deferred trigger checked every journal transaction's balance at that COMMIT.
    with connection.cursor() as cur:
        cur.execute(
            "ANALYZE payments_payment; ANALYZE payments_journaltransaction; "
            "ANALYZE payments_ledgerentry; ANALYZE payments_settlementline"
        )
    return time.monotonic() - t0


# --- the settlement run, in a child process ------------------------------------------------------


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(now: str, trace: bool) -> None:
    """One settlement run. Memory: the peak resident set during the run above the one before it
    (sampled every 10 ms), ru_maxrss, and with --trace tracemalloc's peak (slow: ~4× the time)."""
    import threading

    _stack.django_child_setup(DB)
    from django.db import connection

    from payments import settlement

    connection.ensure_connection()
    before_kb = _rss_kb()
    peak = {"rss": before_kb}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.01):
            peak["rss"] = max(peak["rss"], _rss_kb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if trace:
        tracemalloc.start()
    t0 = time.monotonic()
    result = settlement.settlements_run(now=datetime.fromisoformat(now))
    wall = time.monotonic() - t0
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    stop.set()
    sampler.join()
    print(
        json.dumps(
            {
                "wall_s": round(wall, 2),
                "rss_kb_before": before_kb,
                "rss_kb_peak_growth": max(peak["rss"], _rss_kb()) - before_kb,
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "tracemalloc_peak_kb": round(traced / 1024) if traced is not None else None,
                "result": {k: v for k, v in result.items() if k != "period_start"},
            }
        ),
        flush=True,
    )


def run_child(
    now: datetime,
    period_start: datetime,
    *,
    trace: bool,
    kill_after_vendors: int | None = None,
    batch_size: int | None = None,
) -> dict:
    """Settle in a child process; with kill_after_vendors, SIGKILL it once that many vendors'
    settlements are finished (and return the counts at that moment)."""
    from django.db import connection

    cmd = [str(PY), __file__, "--child", now.isoformat()] + (["--trace"] if trace else [])
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments_settlementline")
        already_lines = cur.fetchone()[0]
    env = {**os.environ}
    if batch_size:
        env["SETTLEMENT_BATCH_SIZE"] = str(batch_size)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, cwd=ROOT)
    done_sql = (
        "SELECT count(*) FROM payments_settlement WHERE status <> 'building' "
        f"AND period_start = '{period_start.isoformat()}'"
    )
    last_log = 0.0
    while proc.poll() is None:
        time.sleep(0.05)
        with connection.cursor() as cur:
            cur.execute(done_sql)
            done = cur.fetchone()[0]
        if kill_after_vendors is not None and done >= kill_after_vendors:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            with connection.cursor() as cur:
                cur.execute(done_sql)
                done = cur.fetchone()[0]
                cur.execute("SELECT count(*) FROM payments_settlementline")
                lines = cur.fetchone()[0] - already_lines
                cur.execute("SELECT count(*) FROM payments_settlement WHERE status = 'building'")
                building = cur.fetchone()[0]
            log(f"  SIGKILLed: {done} settlements finished, {building} half-built, {lines} lines")
            return {"killed": True, "finished": done, "building": building, "lines": lines}
        if time.monotonic() - last_log > 5:
            log(f"  … {done} settlements finished")
            last_log = time.monotonic()
    out = proc.stdout.read().decode().strip().splitlines()
    if proc.returncode != 0 or not out:
        raise SystemExit(f"settlement child failed ({proc.returncode})")
    return json.loads(out[-1])


def reset_day(period_start: datetime) -> None:
    """Forget the day's settlements (ours, beside the ledger; the ledger itself is untouched)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "DELETE FROM payments_payout WHERE settlement_id IN "
            "(SELECT id FROM payments_settlement WHERE period_start = %s)",
            [period_start],
        )
        cur.execute(
            "DELETE FROM payments_settlementline WHERE settlement_id IN "
            "(SELECT id FROM payments_settlement WHERE period_start = %s)",
            [period_start],
        )
        cur.execute("DELETE FROM payments_settlement WHERE period_start = %s", [period_start])
        cur.execute("VACUUM ANALYZE payments_settlementline")


def audit(period_start: datetime, period_end: datetime, vendors: int) -> dict:
    """Every order of the day settled exactly once, in SQL."""
    from django.db import connection

    q = {
        "orders": """SELECT count(*) FROM payments_journaltransaction
                      WHERE kind = 'commission' AND created_at >= %(s)s AND created_at < %(e)s""",
        "orders_settled": """SELECT count(DISTINCT l.journal_transaction_id)
                               FROM payments_settlementline l
                               JOIN payments_journaltransaction j ON j.id = l.journal_transaction_id
                              WHERE j.kind = 'commission' AND j.created_at >= %(s)s
                                AND j.created_at < %(e)s""",
        "lines": """SELECT count(*) FROM payments_settlementline l
                      JOIN payments_settlement s ON s.id = l.settlement_id
                     WHERE s.period_start = %(s)s""",
        "settled_twice": """SELECT count(*) FROM (SELECT journal_transaction_id
                              FROM payments_settlementline GROUP BY 1 HAVING count(*) > 1) t""",
        "settlements": "SELECT count(*) FROM payments_settlement WHERE period_start = %(s)s",
        "settlements_released": """SELECT count(*) FROM payments_settlement
                                    WHERE period_start = %(s)s AND status = 'released'""",
        "payouts": """SELECT count(*) FROM payments_payout o
                        JOIN payments_settlement s ON s.id = o.settlement_id
                       WHERE s.period_start = %(s)s""",
        "payout_total": """SELECT coalesce(sum(o.amount), 0) FROM payments_payout o
                             JOIN payments_settlement s ON s.id = o.settlement_id
                            WHERE s.period_start = %(s)s""",
        "vendor_share_total": """SELECT coalesce(sum(amount - commission - platform_fee), 0)
                                   FROM payments_payment
                                  WHERE captured_at >= %(s)s AND captured_at < %(e)s""",
        "unbalanced_settlements": """SELECT count(*) FROM payments_settlement s
                                      WHERE s.period_start = %(s)s AND s.net <> (
                                        SELECT coalesce(sum(net), 0) FROM payments_settlementline
                                         WHERE settlement_id = s.id)""",
    }
    out = {}
    with connection.cursor() as cur:
        for name, sql in q.items():
            cur.execute(sql, {"s": period_start, "e": period_end})
            out[name] = int(cur.fetchone()[0])
    out["ok"] = (
        out["orders"] == out["orders_settled"] == out["lines"]
        and out["settled_twice"] == 0
        and out["settlements"] == out["settlements_released"] == out["payouts"] == vendors
        and out["payout_total"] == out["vendor_share_total"]
        and out["unbalanced_settlements"] == 0
    )
    return out


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--child", metavar="NOW", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also settle both days again under tracemalloc (slow) for Python's peak",
    )
    args = parser.parse_args()
    if args.child:
        child(args.child, args.trace)
        return
    vendors, small, large = (200, 2_000, 20_000) if args.quick else (1_000, 10_000, 100_000)
    load_start = os.getloadavg()[0]
    _stack.setup_stack(DB)
    from payments.settlement import period_of

    # Two past local days: the small one, then the large one.
    day_small = period_of(datetime.now().astimezone() - timedelta(days=3))
    day_large = period_of(day_small.end + timedelta(hours=1))
    settle_small, settle_large = (
        day_small.end + timedelta(hours=1),
        day_large.end + timedelta(hours=1),
    )

    log(f"seeding {vendors} vendors")
    seed_vendors(vendors)
    log(f"seeding {small} orders on {day_small.start:%Y-%m-%d}")
    seed_small_s = seed_orders(first_order=1, count=small, day_start=day_small.start)
    log(f"seeding {large} orders on {day_large.start:%Y-%m-%d}")
    seed_large_s = seed_orders(first_order=small + 1, count=large, day_start=day_large.start)
    log(f"seeded in {seed_small_s:.1f} s + {seed_large_s:.1f} s (balance trigger on)")

    log(f"1. settling the small day ({small} orders)")
    run_small = run_child(settle_small, day_small.start, trace=False)
    log(f"    {run_small}")
    log(f"2. settling the large day ({large} orders)")
    timed = run_child(settle_large, day_large.start, trace=False)
    log(f"    {timed}")
    timed_audit = audit(day_large.start, day_large.end, vendors)
    log(f"    audit: {timed_audit}")
    traced = {}
    if args.tracemalloc:
        for name, (when, day) in {
            "small": (settle_small, day_small),
            "large": (settle_large, day_large),
        }.items():
            reset_day(day.start)
            log(f"2b. the {name} day again with tracemalloc")
            traced[name] = run_child(when, day.start, trace=True)["tracemalloc_peak_kb"]
            log(f"    peak {traced[name]} kB")

    reset_day(day_large.start)
    log(f"3. settling the large day, SIGKILL after {vendors // 2} vendors, then again")
    # Small batches here (a vendor's day in several transactions), so that the kill is likely to
    # land in the middle of a vendor's settlement, which the restart must then finish.
    killed = run_child(
        settle_large,
        day_large.start,
        trace=False,
        kill_after_vendors=vendors // 2,
        batch_size=KILL_BATCH,
    )
    restarted = run_child(settle_large, day_large.start, trace=False)
    log(f"    restarted: {restarted}")
    kill_audit = audit(day_large.start, day_large.end, vendors)
    log(f"    audit: {kill_audit}")

    # Growth of the resident set during the run, small day vs large day (same vendors, 10× the
    # orders). A few MB of noise either way (malloc arenas, the query cache) is expected.
    growth_kb = {"small": run_small["rss_kb_peak_growth"], "large": timed["rss_kb_peak_growth"]}
    figures = {
        "benchmark": "settlement",
        "quick": args.quick,
        "vendors": vendors,
        "orders_small": small,
        "orders_large": large,
        "seed_s": [round(seed_small_s, 1), round(seed_large_s, 1)],
        "settle_small_s": run_small["wall_s"],
        "settle_large_s": timed["wall_s"],
        "orders_per_s": round(large / timed["wall_s"]),
        "rss_kb_before_run": timed["rss_kb_before"],
        "rss_kb_peak_growth": growth_kb,
        "maxrss_kb": {"small": run_small["maxrss_kb"], "large": timed["maxrss_kb"]},
        "tracemalloc_peak_kb": traced or None,
        "killed_at": killed,
        "restart_s": restarted["wall_s"],
        "audit_after_restart": kill_audit,
        "audit_uninterrupted": timed_audit,
        "loadavg_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "target": "every order settled exactly once after a SIGKILL and a restart; the run's peak "
        "memory flat in the number of orders (10× the orders: under 4 MB more)",
    }
    figures["pass"] = bool(
        kill_audit["ok"]
        and timed_audit["ok"]
        and killed.get("killed")
        and growth_kb["large"] <= growth_kb["small"] + 4096
    )
    if not args.keep:
        from django.db import connections

        connections.close_all()
        _stack.drop_database(DB)
    _stack.emit(figures)


if __name__ == "__main__":
    main()
