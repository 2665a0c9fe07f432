"""Every page in Korean has no English sentence in it.

The URL resolver is walked: every named route outside the admin and the API must be in PAGES (a
page, with the role that sees it and the data that fills it) or in NOT_PAGES (why it is no page),
so a page added later fails this test until it is listed here. Each page is asked for with the
language cookie "ko" by its role, over a world where it shows its content (orders in many states,
a refund, a settlement with lines and a paid payout, stock, a pickup point and its staff); the text
users read (text, title, aria-label, placeholder, alt, button values, texts handed to JavaScript in
data-* attributes) must hold no run of two or more English words but for a few allowed ones.
The error pages and the Django admin index (our model and app names) are read the same way."""

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone, translation

from orders.models import Status
from payments.models import Payout
from payments.payouts import payout_mark_paid, payout_mark_sent
from payments.sandbox.models import SandboxCustomer, SandboxSetupSession
from payments.settlement import period_of, settlement_create
from tests.factories import AddressFactory, CustomerProfileFactory, StaffFactory
from tests.orders.conftest import open_shop, place, placed, put_cart
from tests.orders.factories import OrderEventFactory, OrderFactory, OrderLineFactory
from tests.partners.factories import PointStaffFactory
from tests.partners.test_api import ready_pickup_order
from tests.payments.factories import SandboxIntentFactory
from tests.payments.test_earnings import adjusted, captured, refunded

pytestmark = pytest.mark.django_db

# --- what counts as English ----------------------------------------------------------------------

# Words that are the same in Korean pages: the brand, abbreviations, units, file types.
ALLOWED_WORDS = {"O2O", "QR", "CSV", "PDF", "API", "KRW", "km", "m", "kg", "ml", "PIN", "OK", "ID"}
URL_OR_EMAIL = re.compile(r"(?:https?://|/)\S*|\S+@\S+")
ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'’-]*(?:[ \u00a0]+[A-Za-z][A-Za-z'’-]*)+")
READ_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt", "aria-description"}


def english_runs(text: str, allowed: set[str]) -> list[str]:
    text = URL_OR_EMAIL.sub(" | ", text)
    for phrase in sorted(allowed, key=len, reverse=True):
        text = text.replace(phrase, " | ")
    # Allowed words, and names of things (with digits or underscores: id_lat, 3-D, sku-12), break a run
    words = (w for w in re.split(r"(\s+)", text))
    text = "".join(
        " | " if w.strip() in ALLOWED_WORDS or re.search(r"[\d_]", w) else w for w in words
    )
    return [m.group(0) for m in ENGLISH_RUN.finditer(text)]


def _strings_in_json(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings_in_json(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings_in_json(v)


class ReadText(HTMLParser):
    """The texts of a page a user reads (or hears), each with where it was found."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[tuple[str, str]] = []
        self._skip = 0
        self._where: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self._where.append(tag)
        a = {k: v or "" for k, v in attrs}
        for name, value in a.items():
            if name in READ_ATTRIBUTES:
                self.texts.append((f"<{tag} {name}>", value))
            elif name == "value" and (
                tag == "button" or a.get("type") in ("submit", "button", "reset")
            ):
                self.texts.append((f"<{tag} value>", value))
            elif name.startswith("data-") and value.strip():
                try:
                    strings = list(_strings_in_json(json.loads(value)))
                except ValueError:
                    strings = [value]
                self.texts += [(f"<{tag} {name}>", s) for s in strings]
        if tag == "meta" and a.get("name") == "description":
            self.texts.append(("<meta description>", a.get("content", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        if tag in self._where:
            while self._where and self._where.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.append((f"<{self._where[-1] if self._where else ''}>", data))


def english_in(html: str, allowed: set[str]) -> list[str]:
    parser = ReadText()
    parser.feed(html)
    found = []
    for where, text in parser.texts:
        found += [f"{where} {run!r}" for run in english_runs(text, allowed)]
    return found


def test_the_detector_finds_english_and_lets_korean_and_allowed_words_be():
    page = """<html><head><title>정산서</title><script>var a = "Hello world";</script>
    <style>.a::after{content:"Big thing"}</style></head><body>
    <h1>Owed to you now</h1><p>판매 <b>CSV 내려받기</b> · PDF · O2O · 3 km</p>
    <a href="/payments/statements/" title="All statements">전체</a>
    <input type="submit" value="Save stock"><input placeholder="이름">
    <p>help@example.test https://example.test/some path</p><button data-x="id_lat id_lng">3-D Secure</button>
    <div data-labels='{"placed": "New order!", "x": "접수"}' data-url="/orders/1/"></div>
    </body></html>"""
    found = english_in(page, allowed=set())
    assert found == [
        "<h1> 'Owed to you now'",
        "<a title> 'All statements'",
        "<input value> 'Save stock'",
        "<div data-labels> 'New order'",
    ]


# --- the world -----------------------------------------------------------------------------------


@dataclass
class World:
    users: dict[str, object]
    ids: dict[str, object] = field(default_factory=dict)
    allowed: set[str] = field(default_factory=set)


def _order(shop, customer, status: str, **kwargs):
    order = OrderFactory(
        vendor=shop.vendor, customer=customer, status=status, pickup_point=shop.point, **kwargs
    )
    OrderLineFactory(order=order, product=shop.yakult, quantity=2)
    OrderEventFactory(order=order, to_status=Status.PENDING_PAYMENT)
    OrderEventFactory(order=order, from_status=Status.PENDING_PAYMENT, to_status=status)
    return order


@pytest.fixture
def world(vendor) -> World:
    shop = open_shop(vendor)
    profile = CustomerProfileFactory()
    AddressFactory(customer=profile, is_default=True)
    buyer = profile.user
    staff = StaffFactory()
    clerk = PointStaffFactory(pickup_point=shop.point).user
    # Orders in many states: waiting for payment, placed, and ended every way
    waiting = place(shop, buyer)
    live = placed(shop, buyer, fulfilment="delivery")
    ended = {
        s: _order(shop, profile, s, fulfilment="pickup")
        for s in (
            Status.COMPLETED,
            Status.CANCELLED,
            Status.REFUNDED,
            Status.REJECTED,
            Status.EXPIRED,
            Status.FAILED,
        )
    }
    ready_pickup_order(shop.point)
    # Money: two sales, a partial and a full refund, an adjustment; settled, its payout paid
    sale = captured(vendor, amount=2400, commission=240, order_id=ended[Status.COMPLETED].pk)
    back = captured(vendor, amount=2400, commission=240, order_id=ended[Status.REFUNDED].pk)
    refunded(sale, 1200)
    refunded(back, 2400)
    adjusted(vendor, 700, staff=staff)
    settlement = settlement_create(vendor_id=vendor.pk, period=period_of(timezone.now()))
    assert settlement is not None
    payout = Payout.objects.get(settlement=settlement)
    payout_mark_sent(payout_id=payout.pk, provider_ref="po_korean_1")
    payout_mark_paid(payout_id=payout.pk)
    intent = SandboxIntentFactory()
    return World(
        users={"customer": buyer, "vendor": vendor.user, "staff": staff, "partner": clerk},
        ids={
            "vendor": vendor,
            "shop": shop,
            "orders": [waiting, live, *ended.values()],
            "paid_order": ended[Status.COMPLETED],
            "settlement": settlement,
            "intent": intent.pk,
        },
        # What users typed or the fixtures named (shown as it is, in any language)
        allowed={
            *(p.name_en for p in (shop.yakult, shop.latte)),
            *(c.name_en for c in (shop.yakult.category, shop.latte.category)),
            "cooler broke, goodwill",
            "a yakult was missing",
            "test",
        },
    )


# --- the pages -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    role: str  # anonymous, customer, vendor, staff, partner
    kwargs: Callable[[World], list[dict]] = lambda w: [{}]
    prepare: Callable[[Client, World], None] | None = None
    status: int = 200


def _orders(w: World) -> list[dict]:
    return [{"order_id": o.pk} for o in w.ids["orders"]]


def _receipts(w: World) -> list[dict]:
    # An order never paid has no receipt (404)
    unpaid = (Status.PENDING_PAYMENT, Status.FAILED)
    return [{"order_id": o.pk} for o in w.ids["orders"] if o.status not in unpaid]


def _subscriptions(w: World) -> list[dict]:
    from tests.subscriptions.factories import SubscriptionFactory, SubscriptionItemFactory

    sub = SubscriptionFactory(
        customer=w.users["customer"].customer, vendor=w.ids["vendor"], plan="commit_3m"
    )
    SubscriptionItemFactory(subscription=sub, product=w.ids["shop"].yakult, unit_price=1200)
    return [{"subscription_id": sub.pk}]


def _wellbeing_request(w: World) -> list[dict]:
    from tests.subscriptions.factories import SubscriptionFactory, WellbeingRequestFactory

    customer = w.users["customer"].customer
    SubscriptionFactory(customer=customer, vendor=w.ids["vendor"])
    ask = WellbeingRequestFactory(
        customer=customer, requester_name="김민지", message="어머니가 혼자 사세요."
    )
    return [{"token": ask.token}]


def _wellbeing_asked(client: Client, w: World) -> None:
    response = client.post(
        reverse("subscriptions:wellbeing-ask"),
        {
            "subscriber_email": "someone@example.test",
            "requester_name": "Kim",
            "requester_email": "kim@example.test",
            "relation": "family",
        },
    )
    assert response.status_code == 302, response.content[:500]


def _counter_pass(client: Client, w: World) -> None:
    from counter.tokens import cart_token_make

    client.get(reverse("counter:scan", args=[cart_token_make(vendor_id=w.ids["vendor"].pk)]))


def _counter_cart(w: World) -> list[dict]:
    return [{"vendor_id": w.ids["vendor"].pk}]


def _counter_basket(w: World) -> list[dict]:
    from counter.tokens import basket_token_make

    code = basket_token_make(vendor_id=w.ids["vendor"].pk, items={w.ids["shop"].yakult.pk: 2})
    return [{"code": code}]


def _counter_order(w: World) -> list[dict]:
    import uuid

    from django.core import signing

    from counter.services import walkup_order_place
    from counter.views import ORDER_SALT

    order = walkup_order_place(
        vendor_id=w.ids["vendor"].pk,
        items={w.ids["shop"].yakult.pk: 1},
        checkout_token=uuid.uuid4(),
        receipt_email="walker@example.test",
    )
    return [{"code": signing.dumps(order.pk, salt=ORDER_SALT)}]


def _round(client: Client, w: World) -> None:
    """A regular with the wellbeing check on today's round (and due tomorrow), and a one-off."""
    from datetime import timedelta

    from tests.subscriptions.factories import (
        DeliveryFactory,
        SubscriptionFactory,
        SubscriptionItemFactory,
    )

    vendor, now = w.ids["vendor"], timezone.now()
    sub = SubscriptionFactory(
        customer=w.users["customer"].customer,
        vendor=vendor,
        weekdays=0b1111111,
        starts_on=timezone.localdate(),
        wellbeing_check=True,
        wellbeing_contact_email="family@example.test",
        wellbeing_consent_at=now,
    )
    SubscriptionItemFactory(subscription=sub, product=w.ids["shop"].yakult, quantity=2)
    window = {"window_start": now + timedelta(minutes=5), "window_end": now + timedelta(hours=2)}
    for regular in (True, False):
        order = OrderFactory(
            vendor=vendor,
            customer=w.users["customer"].customer,
            delivery=True,
            status=Status.ACCEPTED,
            note="" if regular else "초인종을 두 번 눌러 주세요",
            **window,
        )
        OrderLineFactory(order=order, product=w.ids["shop"].yakult)
        if regular:
            DeliveryFactory(subscription=sub, order=order, status="ordered")


def _insight(client: Client, w: World) -> None:
    """Four weeks of sales in and around the vendor's cell (one customer alone far off, hidden),
    and similar carts to compare with: every part of the insight page shows."""
    from datetime import timedelta

    import h3

    from insights.summaries import summaries_refresh
    from tests.factories import VendorFactory
    from tests.insights.factories import CELL, SaleRecordFactory

    vendor, now = w.ids["vendor"], timezone.now()
    cells = [CELL, *sorted(h3.grid_ring(CELL, 1))[:2]]
    for i in range(24):
        for peer in [vendor] + ([VendorFactory()] if i < 6 else []):
            SaleRecordFactory(
                vendor_id=peer.pk,
                product_id=w.ids["shop"].yakult.pk,
                occurred_at=now - timedelta(days=i),
                cell=cells[i % 3],
                buyer=1000 + i % 9,
                channel=["online", "walkup", "cash", "regular"][i % 4],
            )
    SaleRecordFactory(
        vendor_id=vendor.pk, product_id=w.ids["shop"].yakult.pk, cell=h3.grid_ring(CELL, 40)[0]
    )
    summaries_refresh()


def _handover_links(w: World) -> list[dict]:
    from orders.services import handover_token_make

    return [{"token": handover_token_make(order=w.ids["orders"][1])}]


def _cash_sale(client: Client, w: World) -> None:
    """A cash sale just recorded: the page shows its banner (with the undo) and today's list."""
    import uuid

    from orders.services import order_cash_sale

    order_cash_sale(
        vendor=w.ids["vendor"], items={w.ids["shop"].yakult.pk: 1}, client_id=uuid.uuid4()
    )


def _basket(client: Client, w: World) -> None:
    put_cart(client, w.ids["vendor"], {w.ids["shop"].yakult.pk: 2})


def _favourites(client: Client, w: World) -> None:
    """Two favourites, one on the map and told about when near; a usual Monday purchase."""
    from customers.services import favourite_add, favourite_notify_set
    from tests.factories import VendorFactory

    customer = w.users["customer"].customer
    favourite_add(customer=customer, vendor_id=w.ids["vendor"].pk)
    favourite_notify_set(customer=customer, vendor_id=w.ids["vendor"].pk, notify_near=True)
    favourite_add(customer=customer, vendor_id=VendorFactory().pk)


def _favourite_stop(w: World) -> list[dict]:
    from customers.notifications import near_stop_token
    from customers.services import favourite_add

    favourite = favourite_add(customer=w.users["customer"].customer, vendor_id=w.ids["vendor"].pk)
    return [{"token": near_stop_token(favourite_id=favourite.pk)}]


PAGES: dict[str, Page] = {
    "signup": Page("anonymous"),
    "login": Page("anonymous"),
    "password_reset": Page("anonymous"),
    "password_reset_done": Page("anonymous"),
    "password_reset_confirm": Page(
        "anonymous", lambda w: [{"uidb64": "MQ", "token": "set-password"}]
    ),
    "password_reset_complete": Page("anonymous"),
    "password_change": Page("customer"),
    "password_change_done": Page("customer"),
    "tracking:map": Page("anonymous"),
    "tracking:shift": Page("vendor"),
    "vendors:list": Page("anonymous"),
    "vendors:detail": Page("customer", lambda w: [{"slug": w.ids["vendor"].slug}]),
    "vendors:apply": Page("customer"),
    "vendors:dashboard": Page("vendor"),
    "vendors:stock": Page("vendor"),
    "vendors:hours": Page("vendor"),
    "orders:cart": Page("customer", prepare=_basket),
    "orders:checkout": Page("customer", prepare=_basket),
    "orders:list": Page("customer"),
    "orders:detail": Page("customer", _orders),
    "orders:status": Page("customer", _orders),
    "orders:receipt": Page("customer", _receipts),
    "orders:paid": Page("customer", lambda w: [{"order_id": w.ids["orders"][1].pk}]),
    "orders:inbox": Page("vendor"),
    "orders:inbox-list": Page("vendor"),
    "orders:vendor-history": Page("vendor"),
    "orders:vendor-scan": Page("vendor"),
    "orders:vendor-cash": Page("vendor", prepare=_cash_sale),
    "handover-qr": Page("vendor", _handover_links),
    "payments:earnings": Page("vendor"),
    "payments:earnings-vendor": Page("staff", lambda w: [{"vendor_id": w.ids["vendor"].pk}]),
    "payments:earnings-order": Page("vendor", lambda w: [{"order_id": w.ids["paid_order"].pk}]),
    "payments:statements": Page("vendor"),
    "payments:statement": Page("vendor", lambda w: [{"settlement_id": w.ids["settlement"].pk}]),
    "payments:money-dashboard": Page("staff"),
    "payments:adjustment-new": Page("staff"),
    "insights-staff:demand": Page("staff"),
    "sandbox:pay": Page("anonymous", lambda w: [{"intent_id": w.ids["intent"]}]),
    "sandbox:challenge": Page("anonymous", lambda w: [{"intent_id": w.ids["intent"]}]),
    "payments:cards": Page("customer"),
    "sandbox:setup": Page(
        "anonymous",
        lambda w: [
            {
                "setup_id": SandboxSetupSession.objects.create(
                    customer=SandboxCustomer.objects.create(),
                    return_url="https://shop.example/cards/",
                    url="https://shop.example/sandbox/setup/",
                ).pk
            }
        ],
    ),
    "partners:point": Page("partner"),
    "partners:point-orders": Page("partner"),
    "subscriptions:list": Page("customer"),
    "subscriptions:new": Page("customer"),
    "subscriptions:detail": Page("customer", _subscriptions),
    "subscriptions:wellbeing-ask": Page("anonymous"),
    "counter:vendor": Page("vendor"),
    "counter:cart": Page("anonymous", _counter_cart, prepare=_counter_pass),
    "counter:basket": Page("anonymous", _counter_basket),
    "counter:order": Page("anonymous", _counter_order),
    "subscriptions:wellbeing-ask-sent": Page("anonymous", prepare=_wellbeing_asked),
    "subscriptions:wellbeing-answer": Page("customer", _wellbeing_request),
    "customers:favourites": Page("customer", prepare=_favourites),
    "customers:favourite-stop": Page("anonymous", _favourite_stop),
    "round:today": Page("vendor", prepare=_round),
    "round:tomorrow": Page("vendor", prepare=_round),
    "insights:vendor": Page("vendor", prepare=_insight),
}

NOT_PAGES: dict[str, str] = {
    "home": "redirects to the map",
    "healthz": "a health check for machines",
    "set_language": "the language switch (a POST that redirects)",
    "logout": "a POST that redirects",
    "payments:webhook": "the payment provider's webhook",
    "payments:statement-download": "CSV/PDF files: tests/payments/test_statement_language.py",
    "sandbox:api-intents": "the sandbox gateway's API",
    "sandbox:api-intent": "the sandbox gateway's API",
    "sandbox:api-capture": "the sandbox gateway's API",
    "sandbox:api-void": "the sandbox gateway's API",
    "sandbox:api-refunds": "the sandbox gateway's API",
    "sandbox:api-payouts": "the sandbox gateway's API",
    "sandbox:api-payout": "the sandbox gateway's API",
    "sandbox:api-confirm": "the sandbox gateway's API",
    "sandbox:api-customers": "the sandbox gateway's API",
    "sandbox:api-customer": "the sandbox gateway's API",
    "sandbox:api-customer-payment-methods": "the sandbox gateway's API",
    "sandbox:api-payment-method-detach": "the sandbox gateway's API",
    "sandbox:api-setup-sessions": "the sandbox gateway's API",
    "sandbox:api-setup": "the sandbox gateway's API",
    "orders:cart-add": "a POST that redirects",
    "orders:cart-update": "a POST that redirects",
    "orders:cart-remove": "a POST that redirects",
    "orders:vendor-action": "a POST that redirects",
    "orders:pay": "a POST that redirects to the card page",
    "orders:payment-refresh": "a POST that redirects",
    "orders:cancel": "a POST that redirects",
    "orders:problem": "a POST that redirects",
    "orders:again": "a POST that redirects",
    "customers:favourite-set": "a POST that redirects (or answers JSON to the page's script)",
    "customers:favourite-notify": "a POST that redirects (or answers JSON to the page's script)",
    "orders:vendor-cash-undo": "a POST that redirects to the cash-sale page",
    "vendors:lots": "a POST that redirects to the stock page (lots shown there)",
    "tracking:manifest": "the web app manifest (JSON)",
    "tracking:sw": "the service worker (JavaScript)",
    "subscriptions:action": "a POST that redirects",
    "round:tap": "a POST that redirects",
    "round:sw": "the service worker (JavaScript)",
    "counter:vendor-qr": "the cart's fresh QR for the counter page's script (JSON)",
    "counter:vendor-sales": "a fragment of the counter page, fetched by its script",
    "counter:vendor-basket": "a POST answered by a page shown to the buyer (tests/counter)",
    "counter:scan": "the cart's QR link: sets a pass and redirects",
}
ERROR_PAGES = ["403.html", "403_csrf.html", "404.html", "500.html", "503.html"]


def named_routes() -> set[str]:
    """Every named route outside the admin and the API (namespaced as `reverse` names them)."""

    def walk(patterns, prefix: str, namespace: str | None) -> Iterator[tuple[str, str]]:
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = namespace
                if p.namespace:
                    ns = f"{namespace}:{p.namespace}" if namespace else p.namespace
                yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern) and p.name:
                yield prefix + str(p.pattern), f"{namespace}:{p.name}" if namespace else p.name

    return {
        name
        for route, name in walk(get_resolver().url_patterns, "", None)
        if not route.startswith(("admin/", "api/"))
    }


def test_every_route_is_in_the_table():
    routes = named_routes()
    unlisted = sorted(routes - PAGES.keys() - NOT_PAGES.keys())
    assert not unlisted, (
        f"routes not in tests/o2o/test_korean_pages.py: {unlisted}; add each to PAGES (the role "
        "that sees it and the data that fills it) or to NOT_PAGES (why it is no page)"
    )
    gone = sorted((PAGES.keys() | NOT_PAGES.keys()) - routes)
    assert not gone, f"routes in the table that no longer exist: {gone}"


def _client(w: World, role: str) -> Client:
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ko"
    if role != "anonymous":
        client.force_login(w.users[role])
    return client


def test_every_page_in_korean_has_no_english_sentence(world):
    problems: dict[str, list[str]] = {}
    for name, page in PAGES.items():
        for kwargs in page.kwargs(world):
            client = _client(world, page.role)
            if page.prepare:
                page.prepare(client, world)
            url = reverse(name, kwargs=kwargs)
            response = client.get(url, follow=True)
            where = f"{name} {url} as {page.role}"
            if response.status_code != page.status:
                problems[where] = [f"HTTP {response.status_code}"]
                continue
            assert response["Content-Language"] == "ko", where
            found = english_in(response.content.decode(), world.allowed)
            if found:
                problems[where] = found
    assert not problems, "English on Korean pages:\n" + "\n".join(
        f"{where}:\n    " + "\n    ".join(found) for where, found in problems.items()
    )


@pytest.mark.parametrize("template", ERROR_PAGES)
def test_the_error_pages_in_korean(template, rf: RequestFactory):
    request = rf.get("/nowhere/")
    request.LANGUAGE_CODE = "ko"
    with translation.override("ko"):
        html = render_to_string(template, {"request_path": "/nowhere/"}, request=request)
    assert english_in(html, set()) == []


def test_a_missing_page_answers_in_korean(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ko"
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert english_in(response.content.decode(), set()) == []


def test_the_admin_index_names_our_models_in_korean(staff, client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ko"
    client.force_login(staff)
    response = client.get("/admin/")
    assert response.status_code == 200
    # The admin's own name is the brand's; third-party apps keep their catalogues' words.
    found = english_in(response.content.decode(), {"O2O admin"})
    assert found == []


@pytest.mark.parametrize("name", ["orders:detail", "payments:statement"])
def test_the_same_pages_are_english_in_english(world, name):
    # The check is no accident of the test data: the English pages do show English sentences.
    page = PAGES[name]
    client = _client(world, page.role)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.get(reverse(name, kwargs=page.kwargs(world)[0]))
    assert response.status_code == 200
    assert english_in(response.content.decode(), world.allowed)
