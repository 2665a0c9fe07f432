"""The lunch rush's locustfile (bench/lunch_rush.py runs it headless; `make bench` skips "_" files).

Customers (CustomerUser) do what a phone browser does, signed in already (a session cookie the
seed made): the map page, the nearby list, a cart's page, one or two products into the basket
(the form posts, CSRF token from the page, and the redirect back), the basket page, the checkout
page and its form as the browser submits it (its defaults: the way to receive it, the window "as
soon as possible"), the sandbox card page (GET, then the test card 4242…), the way back from the
card page (/orders/<id>/paid/, where the platform asks the provider) and the order page, which
shows the hand-over code (if the payment is not confirmed yet, the page's own poll of its live part,
/orders/<id>/status/, until it does, at most CODE_WAIT_S).

An order is one customer journey, started at a constant arrival rate (open model): customer k
of N starts its j-th journey at T0 + k / RATE + j * PACING_S, with N = RATE * PACING_S users, so
journeys start at RATE a second whatever the server does, as long as no journey takes longer than
PACING_S (the start lag, reported, says if one did). Journeys scheduled after T0 + SECONDS are
not started.

Vendors (VendorUser, a fixed number) keep their inbox open: every POLL_S the active orders
(GET /api/vendor/orders/, session + X-CSRFToken as the page's script sends it), then accept,
ready, and hand over with the code the customer shows (the customers' journeys leave it in
this process's CODES, as a customer holds up a phone); every STOCK_EVERY polls the stock, and
the lowest row topped up by TOP_UP with `expected` (a 409, an order took units meanwhile, is
read again on the next round, not an error).

The world (RUSH_WORLD, JSON) comes from lunch_rush.py; what the users saw beyond locust's own
statistics (journeys scheduled / started / completed, start lag, failures by reason, hand-overs,
stock top-ups by (vendor, product)) is written to RUSH_RESULT when locust quits.
"""

import itertools
import json
import math
import os
import random
import re
import time
from collections import Counter
from html.parser import HTMLParser
from http.cookiejar import Cookie
from urllib.parse import urlsplit

from locust import FastHttpUser, constant, events, task

WORLD = json.loads(open(os.environ["RUSH_WORLD"]).read())  # noqa: SIM115
RATE = float(WORLD["rate"])
PACING_S = float(WORLD["pacing_s"])
SECONDS = float(WORLD["seconds"])
POLL_S = 3.0
STOCK_EVERY = 10
TOP_UP = 20
CARD = {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}
TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
PRODUCT_RE = re.compile(r'<input type="hidden" name="product" value="(\d+)">')
CODE_RE = re.compile(r'data-testid="handover-code"[^>]*>\s*([^<\s]+)\s*<')
ORDER_RE = re.compile(r"/orders/(\d+)/")
POLL_RE = re.compile(r'data-poll="(\d+)"')
CODE_WAIT_S = 60.0

CODES: dict[int, str] = {}  # order id -> the hand-over code its customer's page shows
STATS: dict = {
    "scheduled": 0,
    "started": 0,
    "completed": 0,
    "failed": Counter(),
    "lag_ms": [],
    "journey_ms": [],
    "first_start": None,
    "done_at": [],
    "vendor": Counter(),
    "topped_up": Counter(),
}
CLOCK: dict = {"t0": None}
_next_customer = itertools.count()
_next_vendor = itertools.count()


@events.test_start.add_listener
def _start(environment, **_kw):
    # Customers start after every user is spawned (vendors first: fixed_count); see lunch_rush.
    CLOCK["t0"] = time.time() + float(WORLD["start_after_s"])


@events.quitting.add_listener
def _quit(environment, **_kw):
    out = {
        **{k: v for k, v in STATS.items() if k not in ("failed", "vendor", "topped_up")},
        "t0": CLOCK["t0"],
        "failed": dict(STATS["failed"]),
        "vendor": dict(STATS["vendor"]),
        "topped_up": [[*k, n] for k, n in STATS["topped_up"].items()],
    }
    with open(os.environ["RUSH_RESULT"], "w") as fh:
        json.dump(out, fh)


def session_cookie(user, key: str) -> None:
    host = urlsplit(user.host).hostname
    user.client.cookiejar.set_cookie(
        Cookie(
            0,
            "sessionid",
            key,
            None,
            False,
            host,
            False,
            False,
            "/",
            True,
            False,
            None,
            True,
            None,
            None,
            {},
        )  # fmt: skip
    )


def csrf_cookie(user) -> str:
    for cookie in user.client.cookiejar:
        if cookie.name == "csrftoken":
            return cookie.value or ""
    return ""


class FormValues(HTMLParser):
    """What a browser submits for the form whose class holds `css` without anyone touching it:
    text and hidden inputs' values, checked radios and boxes, each select's selected (or first)
    option, textareas."""

    def __init__(self, css: str) -> None:
        super().__init__()
        self.css, self.inside, self.values = css, False, {}
        self.select: str | None = None
        self.first: str | None = None
        self.chosen = False
        self.textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = self.css in (a.get("class") or "").split()
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in ("radio", "checkbox"):
                if "checked" in a:
                    self.values[name] = a.get("value", "on")
            elif kind not in ("submit", "button", "image", "file"):
                self.values[name] = a.get("value") or ""
        elif tag == "select" and name:
            self.select, self.first, self.chosen = name, None, False
        elif tag == "option" and self.select:
            value = a.get("value", "")
            if self.first is None:
                self.first = value
            if "selected" in a and not self.chosen:
                self.values[self.select], self.chosen = value, True
        elif tag == "textarea" and name:
            self.textarea = name
            self.values[name] = ""

    def handle_data(self, data):
        if self.textarea:
            self.values[self.textarea] += data

    def handle_endtag(self, tag):
        if tag == "select" and self.select:
            if not self.chosen and self.first is not None:
                self.values[self.select] = self.first
            self.select = None
        elif tag == "textarea":
            self.textarea = None
        elif tag == "form":
            self.inside = False


def form_values(html: str, css: str) -> dict:
    parser = FormValues(css)
    parser.feed(html)
    return parser.values


class JourneyFailed(Exception):
    pass


class CustomerUser(FastHttpUser):
    wait_time = constant(0)
    network_timeout = 60.0
    connection_timeout = 30.0

    def on_start(self) -> None:
        self.k = next(_next_customer)
        customers = WORLD["customers"]
        session_cookie(self, customers[self.k % len(customers)])
        self.rng = random.Random(self.k)
        self.j = 0

    def scheduled(self) -> float:
        return CLOCK["t0"] + self.k / RATE + self.j * PACING_S

    @task
    def lunch(self) -> None:
        at = self.scheduled()
        if at - CLOCK["t0"] >= SECONDS:
            time.sleep(1.0)  # past the window: idle until locust stops us
            return
        now = time.time()
        if now < at:
            time.sleep(min(1.0, at - now))  # short, so a stop never waits on a sleep
            return
        self.j += 1
        STATS["scheduled"] += 1
        STATS["started"] += 1
        STATS["lag_ms"].append((now - at) * 1000)
        if STATS["first_start"] is None:
            STATS["first_start"] = now
        try:
            self.journey()
        except JourneyFailed as exc:
            STATS["failed"][str(exc)[:80]] += 1
            return
        done = time.time()
        STATS["completed"] += 1
        STATS["journey_ms"].append((done - now) * 1000)
        STATS["done_at"].append(done)

    def expect(self, response, ok, why: str):
        if not ok:
            body = (response.text or "")[:160].replace("\n", " ")
            response.failure(f"{why}: {response.status_code} {body}")
            raise JourneyFailed(f"{why} {response.status_code}")
        response.success()

    def journey(self) -> None:
        vendors = WORLD["vendors"][: WORLD["vendors_active"]]
        vendor = vendors[self.k % len(vendors)]
        c = self.client
        with c.get("/map/", name="1 map page", catch_response=True) as r:
            self.expect(r, r.status_code == 200, "map page")
        lat = vendor["lat"] + self.rng.uniform(-0.003, 0.003)
        lng = vendor["lng"] + self.rng.uniform(-0.003, 0.003)
        with c.get(
            f"/api/vendors/nearby?lat={lat:.6f}&lng={lng:.6f}&radius_m=1000",
            name="2 nearby",
            headers={"Accept": "application/json"},
            catch_response=True,
        ) as r:
            self.expect(r, r.status_code == 200 and "results" in r.text, "nearby")
        page = f"/vendors/{vendor['slug']}/"
        with c.get(page, name="3 vendor page", catch_response=True) as r:
            products = PRODUCT_RE.findall(r.text or "")
            token = TOKEN_RE.search(r.text or "")
            self.expect(r, r.status_code == 200 and products and token, "vendor page")
        for product in self.rng.sample(products, min(len(products), self.rng.randint(1, 2))):
            with c.post(
                "/orders/cart/add/",
                data={
                    "vendor": vendor["id"],
                    "product": product,
                    "quantity": self.rng.randint(1, 2),
                    "csrfmiddlewaretoken": token[1],
                },
                headers={"Referer": self.host + page},
                name="4 basket add (and back to the cart's page)",
                catch_response=True,
            ) as r:
                self.expect(r, r.status_code == 200, "basket add")
        with c.get("/orders/cart/", name="4 basket page", catch_response=True) as r:
            self.expect(r, r.status_code == 200 and "/orders/checkout/" in r.text, "basket page")
        with c.get("/orders/checkout/", name="5 checkout page", catch_response=True) as r:
            form = form_values(r.text or "", "checkout")
            self.expect(r, r.status_code == 200 and "checkout_token" in form, "checkout page")
        with c.post(
            "/orders/checkout/",
            data=form,
            headers={"Referer": self.host + "/orders/checkout/"},
            allow_redirects=False,
            name="5 checkout (place the order)",
            catch_response=True,
        ) as r:
            card_url = r.headers.get("Location") or ""
            self.expect(r, r.status_code == 302 and "/sandbox/pay/" in card_url, "checkout")
        with c.get(card_url, name="6 card page (sandbox)", catch_response=True) as r:
            token = TOKEN_RE.search(r.text or "")
            self.expect(r, r.status_code == 200 and token, "card page")
        with c.post(
            card_url,
            data={**CARD, "csrfmiddlewaretoken": token[1]},
            headers={"Referer": card_url},
            allow_redirects=False,
            name="6 pay (card form)",
            catch_response=True,
        ) as r:
            back = r.headers.get("Location") or ""
            self.expect(r, r.status_code == 302 and "/paid/" in back, "pay")
        order = ORDER_RE.search(back)
        with c.get(
            urlsplit(back).path,
            name="7 back from the card page (/orders/<id>/paid/)",
            allow_redirects=False,
            catch_response=True,
        ) as r:
            self.expect(r, r.status_code == 302, "paid return")
        with c.get(f"/orders/{order[1]}/", name="7 order page", catch_response=True) as r:
            code = CODE_RE.search(r.text or "")
            poll = POLL_RE.search(r.text or "")
            self.expect(r, r.status_code == 200, "order page")
        # Payment not confirmed yet (the way back found the provider slow): the page's script
        # fetches its live part every data-poll seconds until the order is placed and the code
        # shows, as a phone left on the page would.
        deadline = time.time() + CODE_WAIT_S
        while code is None:
            if time.time() > deadline:
                raise JourneyFailed("no hand-over code within CODE_WAIT_S")
            time.sleep(int(poll[1]) if poll and poll[1] != "0" else 3)
            with c.get(
                f"/orders/{order[1]}/status/",
                name="7 order status (the page's poll, until placed)",
                catch_response=True,
            ) as r:
                code = CODE_RE.search(r.text or "")
                poll = POLL_RE.search(r.text or "")
                self.expect(r, r.status_code == 200, "order status")
        CODES[int(order[1])] = code[1]


class VendorUser(FastHttpUser):
    fixed_count = int(WORLD["vendors_active"])
    wait_time = constant(POLL_S)
    network_timeout = 60.0
    connection_timeout = 30.0

    def on_start(self) -> None:
        self.vendor = WORLD["vendors"][next(_next_vendor) % int(WORLD["vendors_active"])]
        session_cookie(self, self.vendor["session"])
        self.polls = 0
        with self.client.get("/orders/vendor/", name="v inbox page", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"inbox {r.status_code}")
            self.csrf = csrf_cookie(self)

    def api(self, method: str, path: str, name: str, body=None, ok=(200,)):
        headers = {"X-CSRFToken": self.csrf, "Referer": self.host + "/orders/vendor/"}
        with self.client.request(
            method, path, json=body, headers=headers, name=name, catch_response=True
        ) as r:
            if r.status_code in ok:
                r.success()
            else:
                r.failure(f"{r.status_code} {(r.text or '')[:160]}")
                STATS["vendor"][f"{name} {r.status_code}"] += 1
            return r

    @task
    def inbox(self) -> None:
        self.polls += 1
        r = self.api("GET", "/api/vendor/orders/", "v orders (inbox poll)")
        if r.status_code != 200:
            return
        for order in r.json().get("results", []):
            oid, status = order["id"], order["status"]
            base = f"/api/vendor/orders/{oid}"
            if status == "placed":
                if (
                    self.api("POST", f"{base}/accept/", "v accept", {"eta_minutes": 10}).status_code
                    == 200
                ):
                    STATS["vendor"]["accepted"] += 1
            elif status in ("accepted", "en_route"):
                if self.api("POST", f"{base}/ready/", "v ready").status_code == 200:
                    STATS["vendor"]["ready"] += 1
            elif status == "ready" and oid in CODES:
                body = {"code": CODES[oid]}
                if self.api("POST", f"{base}/hand-over/", "v hand over", body).status_code == 200:
                    STATS["vendor"]["handed_over"] += 1
                    CODES.pop(oid, None)
        if self.polls % STOCK_EVERY == 0:
            self.top_up()

    def top_up(self) -> None:
        r = self.api("GET", "/api/vendors/me/stock/", "v stock")
        if r.status_code != 200 or not r.json():
            return
        row = min(r.json(), key=lambda s: s["quantity"])
        change = {
            "product_id": row["product_id"],
            "quantity": row["quantity"] + TOP_UP,
            "expected": row["quantity"],
        }
        r = self.api("PATCH", "/api/vendors/me/stock/", "v stock update", {"changes": [change]},
                     ok=(200, 409))  # fmt: skip
        if r.status_code == 200:
            STATS["topped_up"][(self.vendor["id"], row["product_id"])] += TOP_UP
        else:
            STATS["vendor"]["stock_conflict_read_again"] += 1


def users_for(rate: float, pacing_s: float) -> int:
    return math.ceil(rate * pacing_s)
