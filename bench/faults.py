"""Faults under load: the outside fault run of issue #12, reproduced on loopback.

    .venv/bin/python bench/faults.py [--quick] [--keep] [--clients 5] [--workers single|by-queue]
                                     [--beat-scheduler database|default] [--settle SECONDS]

The real stack in private processes this script starts and stops (nothing shared with the
PostgreSQL on 5432 or the Redis on 6379): a PostgreSQL cluster (initdb into a temp dir, Debian's
binaries under /usr/lib/postgresql/<version>/bin, its own port and socket directory), a
redis-server on its own port with `--save "" --appendonly yes`, one uvicorn serving the platform
and the sandbox provider, a Celery worker (`-Q money,notifications,bulk -c 2 --pool prefork`) and
one beat (django-celery-beat's DatabaseScheduler, or `--beat-scheduler default`). With
`--workers by-queue` the workers are laid out as docker-compose.yml deploys them (money -c 2,
notifications -c 2, bulk -c 1; the money worker is the one killed).

N client threads (5) each place orders over the HTTP API as a phone app would: a token from
/api/auth/token/, POST /api/orders/ (a pickup order at a partner point), the sandbox card page
paid with the approve card 4242 4242 4242 4242 (GET, then POST the form with its CSRF token),
POST /api/orders/{id}/payment/refresh/, then the vendor's side: accept, ready, and hand over with
the code the customer's order shows; about 1 order in 10 is cancelled by the customer and 1 in 10
rejected by the vendor instead. A request that got no answer, a 5xx or a 429 is sent again (the
same body, the same checkout token), as an app would, for up to 60 s.

Phases, each under that load: a baseline, then in turn
  1. pg_restart   the private cluster stopped (`pg_ctl stop -m fast`) and started again ~3 s later,
  2. worker_kill  the worker's process group (main process and pool children) SIGKILLed, restarted
                  after 3 s,
  3. redis_stop   redis-server stopped for 5 s, then started again on the same AOF,
each followed by a recovery period under load. Then the load stops; the script waits for one beat
sweep of the effects (none due), runs one convergence (`orders_converge`, as beat would every
minute) and reports, as ONE JSON object on the last line of stdout (progress on stderr):
orders per phase, HTTP status counts, 5xx and 5xx other than 503 (target 0), 5xx on /api/ not in
the API's JSON error shape (target 0), time until check_invariants() is ok after the last fault,
stuck money after the sweep and the convergence (orders_payments_disagreeing(grace=0) and payments
PENDING with no intent: target 0), the invariants report, effects by status. Without --quick
(or with --settle) it then waits for every effect to be done (a relay killed mid-effect leaves
that one effect leased for its lease, 120 s) and reports the money state again.

Every process it started is stopped on the way out (also on Ctrl-C / SIGTERM); the temp dir is
removed unless --keep. Logs: test-artifacts/faults-{web,worker*,beat,redis,postgres}.log.
"""

import argparse
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack  # noqa: E402
from _stack import ROOT, log  # noqa: E402

BIN = ROOT / ".venv" / "bin"
DB = "o2o_faults"
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "faults-bench-1234"
CARD = {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}
TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
PICKUP = (37.5494, 126.9144)
STEP_DEADLINE_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- private services ---------------------------------------------------------------------------


def _pg_bin() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise SystemExit("no PostgreSQL binaries under /usr/lib/postgresql/<version>/bin")
    return found[-1].parent


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PrivatePostgres:
    def __init__(self, root: Path) -> None:
        self.bin = _pg_bin()
        self.port = free_port()
        self.dir = root / "pg"
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.logfile = self.dir / "postgres.log"
        self.initialised = False

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            _as_postgres([str(self.bin / args[0]), *args[1:]]),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def init(self) -> None:
        self.sock.mkdir(parents=True)
        if os.geteuid() == 0:
            for path in (self.dir, self.sock):
                shutil.chown(path, "postgres", "postgres")
        out = self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E",
                        "UTF8", "--locale=C.UTF-8", "-N")  # fmt: skip
        if out.returncode != 0:
            raise SystemExit(f"initdb failed:\n{out.stdout}\n{out.stderr}")
        self.initialised = True
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.sock}'\nmax_connections = 100\n"
                "shared_buffers = 64MB\n"
            )

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), *args)

    def start(self) -> None:
        out = self.ctl("-w", "-t", "60", "start")
        if out.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed:\n{out.stdout}\n{out.stderr}")

    def stop(self, mode: str = "fast") -> None:
        out = self.ctl("-w", "-t", "60", "-m", mode, "stop")
        if out.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed:\n{out.stdout}\n{out.stderr}")

    def running(self) -> bool:
        return self.initialised and self.ctl("status").returncode == 0

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, db: str) -> None:
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"
        )
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{db}"')
        conn.close()


class PrivateRedis:
    def __init__(self, root: Path, logfile: Path) -> None:
        self.port = free_port()
        self.dir = root / "redis"
        self.dir.mkdir(parents=True)
        self.logfile = logfile
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with self.logfile.open("a") as out:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                 str(self.dir), "--save", "", "--appendonly", "yes", "--daemonize", "no"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.3) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on {self.port}")

    def stop(self) -> None:
        """SIGTERM: redis-server's own shutdown (the AOF is flushed)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


class Proc:
    """A process of the stack in its own process group (so its children go with it)."""

    def __init__(self, name: str, cmd: list[str], env: dict, logfile: Path) -> None:
        self.name, self.cmd, self.env, self.logfile = name, cmd, env, logfile
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        with self.logfile.open("a") as out:
            out.write(f"\n===== {datetime.now(UTC).isoformat()} start {self.name}\n")
            out.flush()
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)  # the group this Popen started (start_new_session)

    def kill(self) -> None:
        """SIGKILL the main process and its children at once."""
        self._signal_group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        self._signal_group(signal.SIGKILL)  # children a warm shutdown left behind, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.proc = None


# --- the world ----------------------------------------------------------------------------------


def seed(clients: int) -> list[dict]:
    """One approved on-shift vendor (4 products, plenty of stock) and one customer per client,
    all with a password, a partner pickup point open all day near them."""
    from datetime import time as dtime

    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from customers.models import CustomerProfile
    from o2o.accounts.models import User
    from vendors.models import Category, OpeningHours, PickupPoint, Product, Stock
    from vendors.services import stock_lots_fill

    rng = random.Random(12)
    points = [
        (PICKUP[0] + rng.uniform(-0.004, 0.004), PICKUP[1] + rng.uniform(-0.004, 0.004))
        for _ in range(clients)
    ]
    vendors = _stack.seed_vendors(points, slug_prefix="faults")
    password = make_password(PASSWORD)  # hashed once, shared
    now = timezone.now()
    with transaction.atomic():
        User.objects.filter(vendor__pk__in=[vid for vid, _slug in vendors]).update(
            password=password
        )
        point = PickupPoint.objects.create(
            name="장애 벤치 픽업", address="서울 마포구 양화로 45", lat=PICKUP[0], lng=PICKUP[1]
        )
        OpeningHours.objects.bulk_create(
            [
                OpeningHours(point=point, weekday=d, opens=dtime(0, 0), closes=dtime(23, 59, 59))
                for d in range(7)
            ]
        )
        category, _ = Category.objects.get_or_create(
            slug="faults-snacks", defaults={"name_ko": "간식", "name_en": "Snacks"}
        )
        products = Product.objects.bulk_create(
            [
                Product(
                    sku=f"faults-{n}",
                    name_ko=name,
                    name_en=f"Snack {n}",
                    price=1500 + 500 * n,
                    category=category,
                )
                for n, name in enumerate(_stack.SNACKS[:6])
            ]
        )
        carried = {vid: rng.sample([p.pk for p in products], 4) for vid, _slug in vendors}
        Stock.objects.bulk_create(
            [
                Stock(vendor_id=vid, product_id=pid, quantity=100_000)
                for vid, pids in carried.items()
                for pid in pids
            ]
        )
        stock_lots_fill()  # every row the sum of its lots
        users = User.objects.bulk_create(
            [
                User(
                    email=f"buyer-{i}@faults.test",
                    name=f"Buyer {i}",
                    password=password,
                    date_joined=now,
                )
                for i in range(clients)
            ]
        )
        CustomerProfile.objects.bulk_create(
            [CustomerProfile(user=u, phone="010-0000-0000") for u in users]
        )
    return [
        {
            "vendor_id": vid,
            "vendor_email": f"faults-{i}@bench.test",
            "customer_email": f"buyer-{i}@faults.test",
            "products": carried[vid],
            "point": point.pk,
        }
        for i, (vid, _slug) in enumerate(vendors)
    ]


# --- the load -----------------------------------------------------------------------------------


def endpoint(method: str, url: str) -> str:
    path = urlsplit(url).path
    path = re.sub(r"/sandbox/pay/[^/]+/", "/sandbox/pay/{intent}/", path)
    path = re.sub(r"/\d+/", "/{id}/", path)
    return f"{method} {path}"


def api_error_shape(response) -> bool:
    if not response.headers.get("content-type", "").startswith("application/json"):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and set(body) == {"error"}
        and isinstance(body["error"], dict)
        and {"code", "message"} <= set(body["error"])
    )


class Recorder:
    """Every answer the clients got, by phase and endpoint; what each order came to."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.phase = "setup"
        self.statuses: Counter = Counter()
        self.phase_statuses: dict[str, Counter] = {}
        self.non_2xx: Counter = Counter()  # "status endpoint"
        self.conn_errors: Counter = Counter()
        self.five_xx: list[dict] = []
        self.api_bad_shape: list[dict] = []
        self.outcomes: dict[str, Counter] = {}  # phase -> placed / handed_over / ... / gave_up_*
        self.samples: list[str] = []
        self.latency_ms: dict[str, list[float]] = {}  # phase -> every answered request

    def response(self, method: str, url: str, r, seconds: float) -> None:
        ep = endpoint(method, url)
        with self.lock:
            self.latency_ms.setdefault(self.phase, []).append(seconds * 1000)
            self.statuses[r.status_code] += 1
            self.phase_statuses.setdefault(self.phase, Counter())[r.status_code] += 1
            if r.status_code >= 300 and not (r.status_code == 302 and "/sandbox/pay/" in ep):
                self.non_2xx[f"{r.status_code} {ep}"] += 1
            if r.status_code >= 500:
                entry = {
                    "phase": self.phase,
                    "status": r.status_code,
                    "endpoint": ep,
                    "content_type": r.headers.get("content-type", ""),
                    "body": r.text[:200],
                }
                if len(self.five_xx) < 500:
                    self.five_xx.append(entry)
                if urlsplit(url).path.startswith("/api/") and not api_error_shape(r):
                    self.api_bad_shape.append(entry)

    def conn_error(self, method: str, url: str, exc: Exception) -> None:
        with self.lock:
            self.conn_errors[f"{type(exc).__name__} {endpoint(method, url)} ({self.phase})"] += 1

    def outcome(self, what: str, detail: str = "") -> None:
        with self.lock:
            self.outcomes.setdefault(self.phase, Counter())[what] += 1
            if detail and len(self.samples) < 30:
                self.samples.append(f"[{self.phase}] {what}: {detail}")


RETRY = object()  # a step's answer that means "send it again"


class Client(threading.Thread):
    """One phone app: its customer orders from its vendor, whose app moves the order along."""

    def __init__(self, n: int, base: str, world: dict, rec: Recorder, stop: threading.Event):
        super().__init__(name=f"client-{n}", daemon=True)
        import httpx

        self.n, self.world, self.rec, self.stop_event = n, world, rec, stop
        self.rng = random.Random(1000 + n)
        self.cust = httpx.Client(base_url=base, timeout=15)
        self.vend = httpx.Client(base_url=base, timeout=15)
        self.browser = httpx.Client(base_url=base, timeout=15, follow_redirects=False)
        self.error: str | None = None

    # --- HTTP with the recorder ---

    def call(self, client, method: str, url: str, **kwargs):
        import httpx

        t0 = time.perf_counter()
        try:
            r = client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.rec.conn_error(method, url, exc)
            return None
        self.rec.response(method, url, r, time.perf_counter() - t0)
        return r

    def login(self) -> None:
        for client, email in (
            (self.cust, self.world["customer_email"]),
            (self.vend, self.world["vendor_email"]),
        ):
            r = self.retrying(
                lambda c=client, e=email: self.call(
                    c, "POST", "/api/auth/token/", json={"email": e, "password": PASSWORD}
                ),
                lambda r: r.status_code == 200,
            )
            if r is None or r.status_code != 200:
                raise RuntimeError(f"login {email}: {r and r.status_code} {r and r.text[:200]}")
            client.headers["Authorization"] = f"Token {r.json()['token']}"

    def retrying(self, send, done, *, deadline: float = STEP_DEADLINE_S, again=None):
        """Send until `done(response)`; no answer, a 5xx or a 429 (or `again(response)`) is sent
        again with backoff until the deadline; any other answer is returned as it is."""
        end = time.monotonic() + deadline
        delay = 0.2
        while True:
            r = send()
            if r is not None and done(r):
                return r
            retry = r is None or r.status_code >= 500 or r.status_code == 429
            if r is not None and again is not None and again(r):
                retry = True
            if not retry or time.monotonic() > end:
                return r
            time.sleep(delay)
            delay = min(2.0, delay * 1.6)

    def status(self, order_id: int) -> str | None:
        r = self.retrying(
            lambda: self.call(self.cust, "GET", f"/api/orders/{order_id}/"),
            lambda r: r.status_code == 200,
            deadline=30,
        )
        return r.json()["status"] if r is not None and r.status_code == 200 else None

    # --- one order ---

    def place(self):
        now = datetime.now(UTC)
        pids = self.rng.sample(self.world["products"], self.rng.randint(1, 2))
        body = {
            "vendor": self.world["vendor_id"],
            "lines": [{"product_id": p, "quantity": self.rng.randint(1, 2)} for p in pids],
            "fulfilment": "pickup",
            "pickup_point_id": self.world["point"],
            "window_start": now.isoformat(),
            "window_end": (now + timedelta(hours=1)).isoformat(),
            "checkout_token": str(uuid.uuid4()),
            "note": f"faults bench client {self.n}",
        }
        return self.retrying(
            lambda: self.call(self.cust, "POST", "/api/orders/", json=body),
            lambda r: r.status_code == 201,
        )

    def pay(self, checkout_url: str) -> bool:
        """The customer's browser on the card page: GET (CSRF cookie + token), POST the card."""
        end = time.monotonic() + STEP_DEADLINE_S
        delay = 0.2
        while time.monotonic() < end:
            page = self.call(self.browser, "GET", checkout_url)
            if page is not None and page.status_code == 200:
                match = TOKEN_RE.search(page.text)
                if match is None:
                    return True  # the "already paid" page (a retried POST went through)
                paid = self.call(
                    self.browser,
                    "POST",
                    checkout_url,
                    data={**CARD, "csrfmiddlewaretoken": match[1]},
                    headers={"Referer": checkout_url},
                )
                if paid is not None and paid.status_code in (302, 409):
                    return True  # 409: paid meanwhile (a retry)
                if paid is not None and 400 <= paid.status_code < 500:
                    self.rec.outcome("card_refused", f"{paid.status_code} {paid.text[:120]}")
                    return False
            elif page is not None and page.status_code in (301, 302, 303):
                return True
            elif page is not None and 400 <= page.status_code < 500:
                self.rec.outcome("card_page_refused", f"{page.status_code} {page.text[:120]}")
                return False
            time.sleep(delay)
            delay = min(2.0, delay * 1.6)
        return False

    def refresh_until_placed(self, order_id: int) -> str | None:
        end = time.monotonic() + STEP_DEADLINE_S
        state = None
        while time.monotonic() < end:
            r = self.retrying(
                lambda: self.call(self.cust, "POST", f"/api/orders/{order_id}/payment/refresh/"),
                lambda r: r.status_code == 200,
                deadline=max(1.0, end - time.monotonic()),
            )
            if r is None or r.status_code != 200:
                return state
            state = r.json()["status"]
            if state != "pending_payment":
                return state
            time.sleep(0.5)
        return state

    def act(self, client, order_id: int, path: str, body: dict | None, target: str) -> bool:
        """A transition: done when answered 200, or when the order is already in `target` (an
        earlier try committed but its answer was lost). A 400 on the hand-over is tried again
        (with Redis down the code's try counter can't count, so the code is refused)."""
        end = time.monotonic() + STEP_DEADLINE_S
        delay = 0.2
        while True:
            r = self.call(client, "POST", path, json=body or {})
            if r is not None and r.status_code == 200:
                return True
            retry = r is None or r.status_code >= 500 or r.status_code == 429
            if r is not None and not retry:
                state = self.status(order_id)
                if state == target:
                    return True
                if r.status_code == 400 and target == "handed_over" and state == "ready":
                    retry = True
                else:
                    self.rec.outcome(
                        f"refused_{target}", f"order {order_id} is {state}: {r.text[:160]}"
                    )
                    return False
            if time.monotonic() > end:
                return False
            time.sleep(delay)
            delay = min(2.0, delay * 1.6)

    def one_order(self) -> None:
        r = self.place()
        if r is None or r.status_code != 201:
            self.rec.outcome("gave_up_place", f"{r and r.status_code} {r and r.text[:160]}")
            return
        data = r.json()
        order_id, checkout_url = data["order"]["id"], data["checkout_url"]
        self.rec.outcome("placed")
        if not self.pay(checkout_url):
            self.rec.outcome("gave_up_pay", f"order {order_id}")
            return
        state = self.refresh_until_placed(order_id)
        if state != "placed":
            self.rec.outcome("not_placed_after_pay", f"order {order_id}: {state}")
            return
        self.rec.outcome("paid")
        fate = self.rng.random()
        vendor_orders = "/api/vendor/orders"
        if fate < 0.1:
            ok = self.act(
                self.cust,
                order_id,
                f"/api/orders/{order_id}/cancel/",
                {"reason": "changed my mind"},
                "cancelled",
            )
            self.rec.outcome("cancelled" if ok else "gave_up_cancel")
            return
        if fate < 0.2:
            ok = self.act(
                self.vend,
                order_id,
                f"{vendor_orders}/{order_id}/reject/",
                {"reason": "the cart is full"},
                "rejected",
            )
            self.rec.outcome("rejected" if ok else "gave_up_reject")
            return
        steps = [
            ("accept", {"eta_minutes": 10}, "accepted"),
            ("ready", None, "ready"),
        ]
        for action, body, target in steps:
            if not self.act(
                self.vend, order_id, f"{vendor_orders}/{order_id}/{action}/", body, target
            ):
                self.rec.outcome(f"gave_up_{action}", f"order {order_id}")
                return
        detail = self.retrying(
            lambda: self.call(self.cust, "GET", f"/api/orders/{order_id}/"),
            lambda r: r.status_code == 200,
        )
        code = detail.json().get("handover_code") if detail is not None else None
        if detail is None or detail.status_code != 200 or not code:
            self.rec.outcome("gave_up_code", f"order {order_id}")
            return
        ok = self.act(
            self.vend,
            order_id,
            f"{vendor_orders}/{order_id}/hand-over/",
            {"code": code},
            "handed_over",
        )
        self.rec.outcome("handed_over" if ok else "gave_up_hand_over")

    def run(self) -> None:
        try:
            self.login()
            while not self.stop_event.is_set():
                self.one_order()
        except Exception as exc:  # noqa: BLE001 - reported, never hidden
            self.error = f"{type(exc).__name__}: {exc}"
            log(f"client {self.n} died: {self.error}")
        finally:
            for client in (self.cust, self.vend, self.browser):
                client.close()


# --- checks -------------------------------------------------------------------------------------


def _fresh_db() -> None:
    from django.db import connections

    connections.close_all()


class ConvergeWatch(threading.Thread):
    """check_invariants() every 2 s from the end of the last fault; when it became ok for good."""

    def __init__(self, since: float) -> None:
        super().__init__(name="converge-watch", daemon=True)
        self.since = since
        self.polls: list[tuple[float, bool, dict]] = []
        self.stop_event = threading.Event()

    def check(self) -> tuple[float, bool, dict]:
        from o2o.invariants import check_invariants

        t = time.monotonic()
        try:
            report = check_invariants()
            result = (t, report.ok, report.counts())
        except Exception as exc:  # noqa: BLE001 - the database may still be coming back
            result = (t, False, {"error": f"{type(exc).__name__}: {str(exc)[:100]}"})
        finally:
            _fresh_db()
        self.polls.append(result)
        return result

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.check()
            self.stop_event.wait(2.0)

    def converged_after(self) -> float | None:
        """Seconds from the end of the last fault to the first poll after which every poll was
        ok (None if the last one was not)."""
        if not self.polls or not self.polls[-1][1]:
            return None
        first_ok = self.polls[-1][0]
        for t, ok, _counts in reversed(self.polls):
            if not ok:
                break
            first_ok = t
        return round(max(0.0, first_ok - self.since), 1)


def effects_due() -> int:
    from django.utils import timezone

    from o2o.effects import _due

    try:
        return _due(timezone.now()).count()
    finally:
        _fresh_db()


def queue_lengths(redis_url: str) -> dict[str, int]:
    """Messages waiting on the broker per Celery queue (a backlog the worker has not taken)."""
    import redis as redis_py

    client = redis_py.Redis.from_url(redis_url, socket_timeout=2)
    try:
        return {q: client.llen(q) for q in ("money", "notifications", "bulk")}
    except redis_py.RedisError:
        return {}
    finally:
        client.close()


def wait_effects_swept(*, at_least: float, at_most: float, redis_url: str) -> float:
    """Wait for beat's sweep (every 5 s) to run what is due: at least `at_least` seconds, then
    until no effect is due, at most `at_most`. Returns the seconds waited."""
    t0 = time.monotonic()
    time.sleep(at_least)
    last_log = 0.0
    while time.monotonic() - t0 < at_most:
        try:
            due = effects_due()
            if due == 0:
                break
            if time.monotonic() - last_log > 5:
                last_log = time.monotonic()
                log(f"  {due} effects due; broker queues {queue_lengths(redis_url)}")
        except Exception as exc:  # noqa: BLE001
            log(f"effects due: {exc}")
        time.sleep(1.0)
    return round(time.monotonic() - t0, 1)


def wait_all_effects_done(cap: float, *, since: float) -> dict:
    """Wait until no effect is pending (leases of killed relays run out, backoffs end), at most
    `cap` seconds; the seconds from `since` (the end of the load) when that happened."""
    from o2o.models import Effect

    t0 = time.monotonic()
    pending = None
    while time.monotonic() - t0 < cap:
        try:
            pending = Effect.objects.filter(status=Effect.Status.PENDING).count()
        except Exception as exc:  # noqa: BLE001
            log(f"pending effects: {exc}")
        finally:
            _fresh_db()
        if pending == 0:
            break
        time.sleep(2.0)
    return {
        "all_effects_done": pending == 0,
        "effects_pending": pending,
        "seconds_after_load_stop": round(time.monotonic() - since, 1),
    }


def money_state() -> dict:
    """Orders whose money is in the wrong state, now (no grace), and payments pending with no
    intent; also pairs that disagree while an effect about them is still pending (in flight)."""
    from django.db.models import OuterRef, Subquery

    from orders.models import Order
    from orders.services import orders_payments_disagreeing
    from orders.services.convergence import _problem
    from payments.models import Payment

    try:
        stuck = orders_payments_disagreeing(grace=timedelta(0), limit=None)
        pay = Payment.objects.filter(order_id=OuterRef("pk"))
        pairs = (
            Order.objects.annotate(pay_status=Subquery(pay.values("status")[:1]))
            .filter(pay_status__isnull=False)
            .values_list("pk", "status", "pay_status")
        )
        in_flight = [
            f"order:{pk} {status} / {pay_status}"
            for pk, status, pay_status in pairs
            if _problem(status, pay_status) is not None
        ]
        pending_no_intent = Payment.objects.filter(
            status=Payment.Status.PENDING, provider_ref=""
        ).count()
        return {
            "orders_money_wrong": len(stuck),
            "payments_pending_no_intent": pending_no_intent,
            "stuck_total": len(stuck) + pending_no_intent,
            "disagreeing_incl_in_flight": len(in_flight),
            "stuck_sample": [
                f"order:{d.order_id} {d.order_status} / payment:{d.payment_id} "
                f"{d.payment_status} ({d.problem})"
                for d in stuck[:10]
            ],
            "in_flight_sample": in_flight[:10],
        }
    finally:
        _fresh_db()


def provider_agreement() -> dict:
    """Our payments against the sandbox provider's intents (the provider is the truth)."""
    from django.db.models import F, Q

    from payments.models import Payment
    from payments.sandbox.models import SandboxIntent

    try:
        intents = dict(SandboxIntent.objects.values_list("id", "status"))
        over = SandboxIntent.objects.filter(
            Q(amount_captured__gt=F("amount")) | Q(amount_refunded__gt=F("amount_captured"))
        )
        same = {
            "pending": ("requires_payment_method", "requires_action"),
            "authorised": ("authorised",),
            "captured": ("captured",),
            "partially_refunded": ("captured",),
            "refunded": ("captured",),
            "voided": ("voided",),
            "failed": ("failed",),
        }
        mismatched = []
        for pk, status, ref in Payment.objects.exclude(provider_ref="").values_list(
            "pk", "status", "provider_ref"
        ):
            if intents.get(ref) not in same.get(status, ()):
                mismatched.append(f"payment:{pk} {status} / intent {intents.get(ref)}")
        return {
            "payments_vs_provider_mismatch": len(mismatched),
            "mismatch_sample": mismatched[:10],
            "provider_over_captured_or_refunded": over.count(),
        }
    finally:
        _fresh_db()


def _seconds_from_now(when) -> float | None:
    from django.utils import timezone

    return None if when is None else round((when - timezone.now()).total_seconds(), 1)


def db_summary() -> dict:
    from django.db.models import Count

    from o2o.models import Effect, EffectAttempt
    from orders.models import Order
    from payments.models import Payment

    try:
        return {
            "orders_by_status": dict(
                Order.objects.values_list("status").annotate(n=Count("id")).order_by()
            ),
            "payments_by_status": dict(
                Payment.objects.values_list("status").annotate(n=Count("id")).order_by()
            ),
            "effects_by_status": dict(
                Effect.objects.values_list("status").annotate(n=Count("id")).order_by()
            ),
            "effects_by_kind_status": {
                f"{k} {s}": n
                for k, s, n in Effect.objects.values_list("kind", "status")
                .annotate(n=Count("id"))
                .order_by("kind", "status")
            },
            "effects_tried_more_than_once": Effect.objects.filter(attempts__gt=1).count(),
            # How long after its change each effect was done, by kind (seconds): the backlog.
            "effect_lag_s": {
                kind: _stack.percentiles(
                    [
                        (done - created).total_seconds()
                        for done, created in Effect.objects.filter(
                            kind=kind, status=Effect.Status.DONE
                        ).values_list("done_at", "created_at")
                    ],
                    1,
                )
                for kind in Effect.objects.values_list("kind", flat=True).distinct().order_by()
            },
            # Handed over -> COMPLETED (the money captured): what a vendor waits for.
            "capture_lag_s": _stack.percentiles(
                [
                    (done - handed).total_seconds()
                    for done, handed in Order.objects.filter(
                        completed_at__isnull=False, handed_over_at__isnull=False
                    ).values_list("completed_at", "handed_over_at")
                ],
                1,
            ),
            "effect_attempts_by_outcome": dict(
                EffectAttempt.objects.values_list("outcome").annotate(n=Count("id")).order_by()
            ),
            "effects_pending_sample": [
                f"{k} attempts={a} due_in={_seconds_from_now(due)} "
                f"leased_for={_seconds_from_now(leased)}: {e[:120]}"
                for k, a, due, leased, e in Effect.objects.filter(
                    status=Effect.Status.PENDING
                ).values_list("key", "attempts", "next_attempt_at", "locked_until", "last_error")[
                    :10
                ]
            ],
            "effects_failed_sample": [
                f"{k}: {e[:160]}"
                for k, e in Effect.objects.filter(status=Effect.Status.FAILED).values_list(
                    "key", "last_error"
                )[:10]
            ],
        }
    finally:
        _fresh_db()


def log_findings(path: Path) -> dict:
    if not path.exists():
        return {}
    text = path.read_text(errors="replace")
    return {
        "tracebacks": text.count("Traceback (most recent call last)"),
        "error_lines": sum(
            1 for line in text.splitlines() if " ERROR " in line or "ERROR/" in line
        ),
        "critical_lines": sum(1 for line in text.splitlines() if "CRITICAL" in line),
    }


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short phases (under a minute)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (cluster, AOF)")
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument(
        "--workers",
        choices=("single", "by-queue"),
        default="single",
        help="one worker on every queue (-c 2, the outside run), or one per queue as "
        "docker-compose.yml deploys them (money -c 2, notifications -c 2, bulk -c 1)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=None,
        help="after the report's sweep and convergence, wait up to this many seconds for every "
        "effect to be done (a killed relay's lease runs out after 120 s); default 0 with "
        "--quick, 150 otherwise",
    )
    parser.add_argument(
        "--beat-scheduler",
        choices=("database", "default"),
        default="database",
        help="django-celery-beat's DatabaseScheduler (as deployed) or Celery's own, on a file",
    )
    args = parser.parse_args()
    # seconds: baseline, recovery after each fault
    baseline, recovery = (6, 9) if args.quick else (30, 40)
    pg_down, worker_down, redis_down = 3.0, 3.0, 5.0
    load_start = os.getloadavg()[0]
    uptime_start = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()

    def on_term(_signo, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C (also when started from a script that ignores SIGINT for background jobs).
    signal.signal(signal.SIGINT, signal.default_int_handler)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    logs = {name: ARTIFACTS / f"faults-{name}.log" for name in ("web", "worker", "beat", "redis")}
    for path in logs.values():
        path.write_text("")
    tmp = Path(tempfile.mkdtemp(prefix="o2o-faults-"))
    tmp.chmod(0o755)  # the postgres user reaches its data dir through it
    pg = PrivatePostgres(tmp)
    redis = PrivateRedis(tmp, logs["redis"])
    procs: list[Proc] = []
    stop = threading.Event()
    clients: list[Client] = []
    watch: ConvergeWatch | None = None
    result: dict = {}
    try:
        log(f"private PostgreSQL ({pg.bin}) on {pg.port}, redis-server on {redis.port}; {tmp}")
        pg.init()
        pg.start()
        pg.create_database(DB)
        redis.start()

        web_port = free_port()
        base = f"http://127.0.0.1:{web_port}"
        env = {
            **os.environ,
            **_stack.bench_env(DB),
            "DATABASE_URL": pg.url(DB),
            "REDIS_URL": redis.url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "SANDBOX_BASE_URL": base,
            "PLATFORM_BASE_URL": base,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Orders and payments still for 5 s are stuck, not in flight (default 120 s).
            "CONVERGE_GRACE_SECONDS": "5",
            "THROTTLE_USER": "100000/min",
            # The order e-mails are rendered and "sent" into memory, not onto the worker's log.
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        }
        os.environ.update(env)
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.core.management import call_command

        log("migrating the private database")
        call_command("migrate", verbosity=0)
        log(f"seeding {args.clients} vendors and customers")
        worlds = seed(args.clients)
        _fresh_db()

        web = Proc(
            "web",
            [str(BIN / "python"), "-m", "uvicorn", "o2o.asgi:application", "--host", "127.0.0.1",
             "--port", str(web_port), "--log-level", "warning", "--no-access-log",
             "--ws-per-message-deflate", "false"],
            {**env, "CONN_MAX_AGE": "0"},  # under ASGI: a connection per request (settings)
            logs["web"],
        )  # fmt: skip

        def celery_worker(name: str, queues: str, concurrency: int, node: str) -> Proc:
            logs.setdefault(name, ARTIFACTS / f"faults-{name}.log").write_text("")
            return Proc(
                name,
                [str(BIN / "celery"), "-A", "o2o", "worker", "-Q", queues, "-c", str(concurrency),
                 "--pool", "prefork", "--prefetch-multiplier", "1", "--loglevel", "warning",
                 "-n", f"{node}@%h"],
                env,
                logs[name],
            )  # fmt: skip

        if args.workers == "single":
            # The one worker of the outside run: every queue, two pool processes.
            worker = celery_worker("worker", "money,notifications,bulk", 2, "faults")
            workers = [worker]
        else:
            # As docker-compose.yml deploys them: one worker per queue (the money one is killed).
            worker = celery_worker("worker", "money", 2, "faults-money")
            workers = [
                worker,
                celery_worker("worker-notifications", "notifications", 2, "faults-notifications"),
                celery_worker("worker-bulk", "bulk", 1, "faults-bulk"),
            ]
        scheduler = (
            ["--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]
            if args.beat_scheduler == "database"
            else ["--scheduler", "celery.beat:PersistentScheduler", "-s",
                  str(tmp / "celerybeat-schedule")]
        )  # fmt: skip
        beat = Proc(
            "beat",
            [str(BIN / "celery"), "-A", "o2o", "beat", "--loglevel", "warning",
             "--pidfile", str(tmp / "beat.pid"), *scheduler],
            env,
            logs["beat"],
        )  # fmt: skip
        procs += [web, *workers, beat]
        for proc in procs:
            proc.start()

        import httpx

        deadline = time.monotonic() + 90
        while True:
            if not web.alive():
                raise SystemExit(f"uvicorn exited:\n{logs['web'].read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=3).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"uvicorn did not answer /healthz:\n{logs['web'].read_text()}")
            time.sleep(0.3)

        from o2o.celery import app as celery_app

        def worker_ready(proc: Proc, timeout: float) -> float | None:
            """Seconds until the worker answers a ping over the broker (None: it did not)."""
            node = proc.cmd[proc.cmd.index("-n") + 1].replace("%h", socket.gethostname())
            t0 = time.monotonic()
            while time.monotonic() - t0 < timeout:
                if not proc.alive():
                    return None
                try:
                    replies = celery_app.control.ping(destination=[node], timeout=1.0)
                    if any(node in reply for reply in replies):
                        return time.monotonic() - t0
                except Exception:  # noqa: BLE001 - the broker may be coming back
                    time.sleep(0.5)
            return None

        for proc in workers:
            if worker_ready(proc, 90) is None:
                raise SystemExit(f"{proc.name} did not answer:\n{proc.logfile.read_text()[-3000:]}")
        log(
            f"stack up: web {base}, {len(workers)} worker(s) ({args.workers}), "
            f"beat ({args.beat_scheduler} scheduler)"
        )

        rec = Recorder()
        phases: dict[str, dict] = {}
        restarts: Counter = Counter()

        def supervise(seconds: float) -> None:
            """Let the load run; a web or beat process that died on its own is reported and
            started again (the worker too, outside its planned kill)."""
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                for proc in procs:
                    if not proc.alive():
                        code = proc.proc.returncode if proc.proc is not None else None
                        log(f"!! {proc.name} exited on its own (code {code}): restarting it")
                        restarts[f"{proc.name}_exited_unplanned"] += 1
                        proc.stop()
                        proc.start()
                for c in clients:
                    if c.error:
                        raise SystemExit(f"client {c.n} died: {c.error}")
                time.sleep(min(0.5, max(0.0, end - time.monotonic())))

        def phase(name: str) -> dict:
            rec.phase = name
            info = {"started": time.monotonic()}
            try:  # the backlog each phase starts with (effects due, messages on the broker)
                info["effects_due_at_start"] = effects_due()
            except Exception:  # noqa: BLE001
                info["effects_due_at_start"] = None
            info["broker_queues_at_start"] = queue_lengths(redis.url)
            phases[name] = info
            log(f"--- phase {name} {info}")
            return info

        phase("baseline")
        clients = [Client(i, base, worlds[i], rec, stop) for i in range(args.clients)]
        for c in clients:
            c.start()
        supervise(baseline)

        # 1. PostgreSQL restart
        info = phase("pg_restart")
        t0 = time.monotonic()
        pg.stop("fast")
        stopped = time.monotonic()
        time.sleep(max(0.0, pg_down - (stopped - t0)))
        pg.start()
        info["down_s"] = round(time.monotonic() - t0, 2)
        info["stop_s"] = round(stopped - t0, 2)
        log(f"PostgreSQL down {info['down_s']} s (stop took {info['stop_s']} s)")
        supervise(recovery)

        # 2. worker SIGKILL
        info = phase("worker_kill")
        worker.kill()
        log("worker SIGKILLed (main process and pool children)")
        time.sleep(worker_down)
        worker.start()
        back = worker_ready(worker, 60)
        info["worker_back_s"] = None if back is None else round(worker_down + back, 2)
        log(f"worker answering again {info['worker_back_s']} s after the kill")
        supervise(max(0.0, recovery - (back or 0)))

        # 3. Redis stop
        info = phase("redis_stop")
        t0 = time.monotonic()
        redis.stop()
        time.sleep(redis_down)
        redis.start()
        last_fault_end = time.monotonic()
        info["down_s"] = round(last_fault_end - t0, 2)
        log(f"Redis down {info['down_s']} s, back on its AOF")
        watch = ConvergeWatch(last_fault_end)
        watch.start()
        supervise(recovery)

        # The load stops; each client finishes the order it is on.
        rec.phase = "drain"
        stop.set()
        t_stop = time.monotonic()
        for c in clients:
            c.join(timeout=STEP_DEADLINE_S * 2)
        stuck_clients = [c.n for c in clients if c.is_alive()]
        log(f"load stopped; clients drained in {time.monotonic() - t_stop:.1f} s {stuck_clients}")
        for info in phases.values():
            info.pop("started", None)

        backlog = queue_lengths(redis.url)
        log(f"broker queues at the end of the load: {backlog}")
        swept_s = wait_effects_swept(at_least=6.0, at_most=90.0, redis_url=redis.url)
        after_sweep = money_state()
        log(f"after one effects sweep ({swept_s} s): {after_sweep}")

        from orders.services import orders_converge

        try:
            converge_counts = orders_converge()
        finally:
            _fresh_db()
        log(f"orders_converge: {converge_counts}")
        swept_again_s = wait_effects_swept(at_least=2.0, at_most=30.0, redis_url=redis.url)
        after_converge = money_state()
        log(f"after the convergence run (+{swept_again_s} s): {after_converge}")
        settle_cap = args.settle if args.settle is not None else (0.0 if args.quick else 150.0)
        settled = None
        if settle_cap > 0:
            settled = wait_all_effects_done(settle_cap, since=t_stop)
            settled["money"] = money_state()
            log(f"settled: {settled}")

        watch.stop_event.set()
        watch.join(timeout=30)
        _t, ok, counts = watch.check()
        converged = watch.converged_after()
        from o2o.invariants import check_invariants

        try:
            report = check_invariants()
            invariants = {
                "ok": report.ok,
                "problems": report.counts(),
                "problems_sample": {k: v[:5] for k, v in report.problems.items()},
                "attention": {k: len(v) for k, v in report.attention.items()},
                "attention_sample": {k: v[:5] for k, v in report.attention.items()},
            }
        finally:
            _fresh_db()
        summary = db_summary()
        provider = provider_agreement()
        alive = {p.name: p.alive() for p in procs}

        statuses = dict(sorted(rec.statuses.items()))
        five_xx = sum(n for s, n in rec.statuses.items() if s >= 500)
        five_xx_not_503 = sum(n for s, n in rec.statuses.items() if s >= 500 and s != 503)
        per_phase = {}
        for name in [*phases, "drain"]:
            outcomes = rec.outcomes.get(name, Counter())
            st = rec.phase_statuses.get(name, Counter())
            per_phase[name] = {
                **phases.get(name, {}),
                "orders_placed": outcomes.get("placed", 0),
                "outcomes": dict(sorted(outcomes.items())),
                "requests": sum(st.values()),
                "http_5xx": sum(n for s, n in st.items() if s >= 500),
                "http_statuses": dict(sorted(st.items())),
                "request_ms": _stack.percentiles(rec.latency_ms.get(name, []), 0),
            }
        outcomes_total: Counter = Counter()
        for c in rec.outcomes.values():
            outcomes_total.update(c)
        load_seconds = baseline + 3 * recovery + pg_down + worker_down + redis_down
        result = {
            "benchmark": "faults",
            "quick": args.quick,
            "clients": args.clients,
            "beat_scheduler": args.beat_scheduler,
            "workers": args.workers,
            "orders_placed_total": outcomes_total.get("placed", 0),
            "orders_per_s": round(outcomes_total.get("placed", 0) / load_seconds, 2),
            "outcomes_total": dict(sorted(outcomes_total.items())),
            "phases": per_phase,
            "http": {
                "status_counts": statuses,
                "requests": sum(statuses.values()),
                "5xx": five_xx,
                "5xx_not_503": five_xx_not_503,
                "api_5xx_not_json_error_shape": len(rec.api_bad_shape),
                "connection_errors": dict(rec.conn_errors),
                "non_2xx_by_endpoint": dict(rec.non_2xx.most_common(25)),
                "5xx_sample": rec.five_xx[:6],
                "api_bad_shape_sample": rec.api_bad_shape[:6],
            },
            "client_notes": rec.samples[:15],
            "converge_s_after_last_fault": converged,
            "converge_polls": len(watch.polls),
            "last_poll": {"ok": ok, "problems": counts},
            "broker_backlog_at_load_stop": backlog,
            "effects_sweep_wait_s": swept_s,
            "stuck_money_after_one_sweep": after_sweep,
            "orders_converge_run": converge_counts,
            "stuck_money_after_sweep_and_converge": after_converge,
            "invariants": invariants,
            "settled": settled,
            **summary,
            **provider,
            "processes": {
                "alive_at_end": alive,
                "unplanned_restarts": dict(restarts),
                "starts": {p.name: p.starts for p in procs},
            },
            "logs": {p.name: log_findings(p.logfile) for p in procs},
            "clients_not_drained": stuck_clients,
            "uptime_start": uptime_start,
            "loadavg_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
            "target": "5xx other than 503: 0; 5xx on /api/ outside the JSON error shape: 0; "
            "orders with money in the wrong state and payments pending with no intent after one "
            "sweep and one convergence: 0; invariants ok",
        }
        result["pass"] = bool(
            five_xx_not_503 == 0
            and not rec.api_bad_shape
            and after_converge["stuck_total"] == 0
            and invariants["ok"]
        )
    except KeyboardInterrupt:
        log("interrupted: stopping everything this run started")
        result = {}
    finally:
        stop.set()
        if watch is not None:
            watch.stop_event.set()
        for c in clients:
            c.join(timeout=5)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may not be set up yet
            pass
        for proc in reversed(procs):
            try:
                proc.stop()
            except Exception as exc:  # noqa: BLE001
                log(f"stopping {proc.name}: {exc}")
        try:
            redis.stop()
        except Exception as exc:  # noqa: BLE001
            log(f"stopping redis: {exc}")
        try:
            if pg.running():
                pg.stop("fast")
        except Exception as exc:  # noqa: BLE001
            log(f"stopping PostgreSQL: {exc}")
            with contextlib.suppress(Exception):
                pg.stop("immediate")
        if pg.logfile.exists():
            shutil.copyfile(pg.logfile, ARTIFACTS / "faults-postgres.log")
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if not result:
        raise SystemExit(130)
    if result.get("logs") is not None:
        result["logs"]["postgres"] = log_findings(ARTIFACTS / "faults-postgres.log")
    _stack.emit(result)


if __name__ == "__main__":
    main()
