"""A line the vendor could not supply: the vendor marks units of it before the handover, the customer
is told and does not pay for them (refunded right after the capture, over the sandbox for real, with
exactly their commission, once); a vendor who can supply nothing cancels instead."""

import pytest
from django.core import mail
from rest_framework.test import APIClient

from orders.effects import order_capture
from orders.models import Order, OrderLine, Status
from orders.services import (
    InvalidTransition,
    order_accept,
    order_hand_over,
    order_line_short,
    order_ready,
    order_vendor_cancel,
)
from payments import ledger
from payments.models import Payment, Refund
from tests.orders.conftest import messages_of, put_cart
from tests.orders.test_concurrency import kinds, race
from tests.orders.test_payment_journey import APPROVE, back, checkout, pay

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def paid(live_server, settings, shop, buyer, client) -> Order:
    """The buyer's order (yakult × 2 at ₩1,200, latte × 1 at ₩2,500: ₩4,900 at 10 %), paid
    (authorised) and accepted."""
    settings.SANDBOX_BASE_URL = settings.PLATFORM_BASE_URL = live_server.url
    settings.SANDBOX_WEBHOOK_DUPLICATE_RATE = 0.0
    client.defaults["SERVER_NAME"] = "localhost"
    client.force_login(buyer)
    put_cart(client, shop.vendor, {shop.yakult.pk: 2, shop.latte.pk: 1})
    _data, response = checkout(client, shop)
    back(client, pay(response["Location"], APPROVE))
    order = Order.objects.get()
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=10)
    return order


def lines(order: Order) -> tuple[OrderLine, OrderLine]:
    return (
        order.lines.get(product__sku__startswith="yakult"),
        order.lines.get(product__sku__startswith="latte"),
    )


def hand_over(order: Order, vendor) -> Order:
    order_ready(order_id=order.pk, vendor=vendor)
    order_hand_over(order_id=order.pk, vendor=vendor, code=order.handover_code)
    order.refresh_from_db()
    return order


def test_units_not_supplied_are_refunded_after_capture_with_exactly_their_commission(
    paid, shop, client
):
    yakult, latte = lines(paid)
    payable = ledger.vendor_payable_account(shop.vendor.pk)
    stock_before = shop.stock()
    # Given the vendor can't supply one yakult (partly short) nor the latte (all of it)
    order_line_short(
        order_id=paid.pk, line_id=yakult.pk, vendor=shop.vendor, quantity=1, reason="Dropped it"
    )
    order_line_short(
        order_id=paid.pk, line_id=latte.pk, vendor=shop.vendor, quantity=1, reason="Sold out"
    )
    # Then the customer is told, and their page shows what they will not pay
    # (e-mails go out in the site's language, Korean: "... 1개를 드릴 수 없어요: Sold out ...")
    assert any("1개를 드릴 수 없어요: Sold out" in m.body for m in mail.outbox), [
        m.body for m in mail.outbox
    ]
    html = client.get(f"/orders/{paid.pk}/").content.decode()
    assert "not supplied by the vendor" in html
    assert 'data-testid="net-total">₩1,200<' in html
    # And the stock of what was not there stays off the cart
    assert shop.stock() == stock_before
    # When the rest is handed over (the capture runs, then the refunds)
    order = hand_over(paid, shop.vendor)
    assert order.status == Status.COMPLETED
    payment = Payment.objects.get(pk=order.payment_id)
    # Then the customer paid only for what they got: ₩4,900 captured, ₩3,700 given back
    assert (payment.amount_captured, payment.amount_refunded) == (4_900, 1_200 + 2_500)
    assert payment.status == Payment.Status.PARTIALLY_REFUNDED
    made = sorted(Refund.objects.values_list("kind", "order_line_id", "reason"))
    assert made == sorted([("short", yakult.pk, "Dropped it"), ("short", latte.pk, "Sold out")])
    # And exactly their commission left the platform's revenue: 120 of the yakult, 250 of latte
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 490 - 120 - 250 == 120
    # And the vendor keeps their share of the one yakult supplied: 1,200 - 120
    assert ledger.balance(payable) == 1_080
    assert ledger.unbalanced_transactions() == []
    # When the capture task runs again (a retry), nothing more is refunded
    order_capture({"order_id": order.pk})
    assert Refund.objects.count() == 2
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 3_700


def test_staff_refund_only_what_is_left_of_a_partly_short_line(paid, shop, staff):
    yakult, latte = lines(paid)
    order_line_short(
        order_id=paid.pk, line_id=yakult.pk, vendor=shop.vendor, quantity=1, reason="Dropped"
    )
    order_line_short(
        order_id=paid.pk, line_id=latte.pk, vendor=shop.vendor, quantity=1, reason="Sold out"
    )
    hand_over(paid, shop.vendor)
    api = APIClient()
    api.force_authenticate(staff)
    # The yakult line: the one unit supplied (₩1,200) and the rest of the line's commission (120)
    url = f"/api/staff/orders/{paid.pk}/lines/{yakult.pk}/refund/"
    response = api.post(url, {"reason": "Warm."}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["amount"] == 1_200
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 0
    assert ledger.balance(ledger.vendor_payable_account(shop.vendor.pk)) == 0
    # The latte line was not supplied at all: nothing is left to refund
    url = f"/api/staff/orders/{paid.pk}/lines/{latte.pk}/refund/"
    assert api.post(url, {"reason": "Again."}, format="json").status_code == 409
    payment = Payment.objects.get(pk=paid.payment_id)
    assert (payment.status, payment.amount_refunded) == (Payment.Status.REFUNDED, 4_900)
    assert ledger.unbalanced_transactions() == []


def test_the_rules_of_marking_a_line_short(paid, shop, other_shop):
    yakult, latte = lines(paid)

    def short(quantity=1, line=yakult, vendor=shop.vendor, reason="Broken"):
        return order_line_short(
            order_id=paid.pk, line_id=line.pk, vendor=vendor, quantity=quantity, reason=reason
        )

    # Another vendor finds no such order
    with pytest.raises(Exception, match="No such order|주문"):
        short(vendor=other_shop.vendor)
    # A reason and a whole quantity within the line are required
    for bad in ({"reason": "  "}, {"quantity": 0}, {"quantity": True}, {"quantity": 3}):
        with pytest.raises(Exception) as caught:
            short(**bad)
        assert type(caught.value).__name__ == "ValidationError"
    # Marking everything short is refused: cancel instead
    short(quantity=2)
    with pytest.raises(InvalidTransition):
        short(line=latte)
    assert OrderLine.objects.get(pk=latte.pk).short_quantity == 0
    assert OrderLine.objects.get(pk=yakult.pk).short_quantity == 2
    # After the handover, nothing can be marked any more
    hand_over(paid, shop.vendor)
    OrderLine.objects.filter(pk=yakult.pk).update(short_quantity=0)
    with pytest.raises(InvalidTransition):
        short()


def test_a_vendor_who_can_supply_nothing_cancels_and_the_money_is_released(paid, shop):
    stock_before = shop.stock()
    with pytest.raises(Exception) as caught:
        order_vendor_cancel(order_id=paid.pk, vendor=shop.vendor, reason=" ")
    assert type(caught.value).__name__ == "ValidationError"
    mail.outbox.clear()
    order = order_vendor_cancel(order_id=paid.pk, vendor=shop.vendor, reason="Cart broke down")
    assert (order.status, order.reason) == (Status.CANCELLED, "Cart broke down")
    assert Payment.objects.get(pk=order.payment_id).status == Payment.Status.VOIDED
    assert shop.stock() == {
        sku: n + (2 if sku.startswith("yakult") else 1) for sku, n in stock_before.items()
    }
    assert any("Cart broke down" in m.body for m in mail.outbox)
    # A cancelled order can't be cancelled again
    with pytest.raises(InvalidTransition):
        order_vendor_cancel(order_id=order.pk, vendor=shop.vendor, reason="Again")


def test_the_vendor_marks_a_line_short_on_the_inbox_page_and_over_the_api(paid, shop, other_shop):
    yakult, _latte = lines(paid)
    from django.test import Client

    page = Client(headers={"accept-language": "en"})
    page.force_login(shop.vendor.user)
    inbox = page.get("/orders/vendor/").content.decode()
    assert "Mark as not supplied" in inbox
    # A bad quantity is a message on the page, never a 500, and nothing is marked
    bad = page.post(
        f"/orders/vendor/{paid.pk}/short/", {"line": yakult.pk, "quantity": 9, "reason": "x"}
    )
    assert bad.status_code == 302
    assert "At most 2 more of this line can be marked." in " ".join(messages_of(bad))
    assert OrderLine.objects.get(pk=yakult.pk).short_quantity == 0
    done = page.post(
        f"/orders/vendor/{paid.pk}/short/",
        {"line": yakult.pk, "quantity": 1, "reason": "Dropped"},
        follow=True,
    )
    assert any("won't pay for what is missing" in m for m in messages_of(done))
    assert OrderLine.objects.get(pk=yakult.pk).short_quantity == 1
    # Over the API: the line's own vendor only
    url = f"/api/vendor/orders/{paid.pk}/lines/{yakult.pk}/short/"
    api = APIClient()
    api.force_authenticate(other_shop.vendor.user)
    assert api.post(url, {"quantity": 1, "reason": "x"}, format="json").status_code == 404
    api.force_authenticate(shop.vendor.user)
    assert api.post(url, {"quantity": 0, "reason": "x"}, format="json").status_code == 400
    response = api.post(url, {"quantity": 1, "reason": "Dropped too"}, format="json")
    assert response.status_code == 200, response.content
    line = next(item for item in response.json()["lines"] if item["id"] == yakult.pk)
    assert (line["short_quantity"], line["short_reason"]) == (2, "Dropped too")
    # The customer can't mark anything
    api.force_authenticate(paid.customer.user)
    assert api.post(url, {"quantity": 1, "reason": "x"}, format="json").status_code == 403


@pytest.mark.postgres
def test_two_marks_for_the_last_units_of_a_line_never_exceed_it(paid, shop):
    yakult, _latte = lines(paid)
    results = race(
        *[
            (
                lambda: order_line_short(
                    order_id=paid.pk, line_id=yakult.pk, vendor=shop.vendor, quantity=2, reason="x"
                )
            )
            for _ in range(2)
        ]
    )
    assert kinds(results) == {"Order": 1, "ValidationError": 1}, results
    assert OrderLine.objects.get(pk=yakult.pk).short_quantity == 2


@pytest.mark.postgres
def test_a_mark_racing_the_handover_is_either_refunded_or_refused(paid, shop):
    yakult, _latte = lines(paid)
    order_ready(order_id=paid.pk, vendor=shop.vendor)
    results = race(
        lambda: order_hand_over(order_id=paid.pk, vendor=shop.vendor, code=paid.handover_code),
        lambda: order_line_short(
            order_id=paid.pk, line_id=yakult.pk, vendor=shop.vendor, quantity=1, reason="x"
        ),
    )
    assert isinstance(results[0], Order), results
    # (the handover's capture task ran in its thread after commit: nothing runs it again here)
    short = OrderLine.objects.get(pk=yakult.pk).short_quantity
    refunded = Payment.objects.get(pk=paid.payment_id).amount_refunded
    if isinstance(results[1], Order):  # marked first: the unit is refunded after the capture
        assert (short, refunded) == (1, 1_200)
    else:  # handed over first: refused, nothing marked, nothing refunded
        assert isinstance(results[1], InvalidTransition), results
        assert (short, refunded) == (0, 0)
    assert ledger.unbalanced_transactions() == []


def test_a_short_refund_the_provider_does_not_answer_is_pending_and_sent_again_once(
    paid, shop, settings
):
    from orders.services import order_short_lines_refund
    from payments.services import payment_sync

    yakult, _latte = lines(paid)
    # Given an order captured while the vendor had marked a yakult short (its refund not made yet)
    order = hand_over(paid, shop.vendor)
    OrderLine.objects.filter(pk=yakult.pk).update(short_quantity=1, short_reason="Dropped")
    # When the refund is asked for while the provider can't be reached (twice)
    live = settings.SANDBOX_BASE_URL
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:9"
    settings.PAYMENT_HTTP_RETRIES = 0
    assert order_short_lines_refund(order_id=order.pk) == []
    assert order_short_lines_refund(order_id=order.pk) == []
    # Then one refund waits, PENDING, and nothing is given back yet
    refund = Refund.objects.get()
    assert (refund.status, refund.amount) == (Refund.Status.PENDING, 1_200)
    # When the provider is back: the capture task runs again and payments syncs
    settings.SANDBOX_BASE_URL = live
    order_capture({"order_id": order.pk})
    payment_sync(payment_id=order.payment_id)
    # Then that one refund went through, once, with exactly the commission of one yakult
    assert Refund.objects.count() == 1
    assert Refund.objects.get().status == Refund.Status.SUCCEEDED
    assert Payment.objects.get(pk=order.payment_id).amount_refunded == 1_200
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 490 - 120
    assert ledger.unbalanced_transactions() == []


def test_a_short_refund_the_provider_refused_is_tried_again_until_it_is_made(
    paid, shop, settings, monkeypatch
):
    from orders.services import SHORT_REFUND_ATTEMPTS, order_short_lines_refund
    from orders.tasks import orders_short_refunds_retry
    from payments import services as payment_services
    from payments.gateways import _sandbox

    yakult, latte = lines(paid)
    # Given an order captured and completed while a yakult was marked short (refund not made yet)
    order = hand_over(paid, shop.vendor)
    assert order.status == Status.COMPLETED
    OrderLine.objects.filter(pk=yakult.pk).update(short_quantity=1, short_reason="Dropped")
    # When the provider refuses the refund (it does not know our key: 401 from the real sandbox)
    refusing = _sandbox(settings.SANDBOX_BASE_URL, "sk_rotated", "whsec", 2.0, 5.0, 0, 300)
    monkeypatch.setattr(payment_services, "_gateway", lambda payment: refusing)
    assert order_short_lines_refund(order_id=order.pk) == []
    assert Refund.objects.get().status == Refund.Status.FAILED
    # And the scheduled retry runs while it still refuses: one more FAILED attempt, no money moved
    assert orders_short_refunds_retry.apply().get() == 1
    assert list(Refund.objects.values_list("status", flat=True)) == ["failed", "failed"]
    assert Payment.objects.get(pk=order.payment_id).amount_refunded == 0
    # When the provider takes our key again and the retry runs
    monkeypatch.undo()
    assert orders_short_refunds_retry.apply().get() == 1
    # Then the yakult is refunded once, with exactly its commission; nothing is due any more
    made = Refund.objects.exclude(status=Refund.Status.FAILED).get()
    assert (made.status, made.amount) == (Refund.Status.SUCCEEDED, 1_200)
    assert Payment.objects.get(pk=order.payment_id).amount_refunded == 1_200
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 490 - 120
    assert orders_short_refunds_retry.apply().get() == 0
    assert ledger.unbalanced_transactions() == []
    # And a line the provider keeps refusing is tried SHORT_REFUND_ATTEMPTS times in all, then
    # left to staff (its FAILED refunds are in the admin)
    OrderLine.objects.filter(pk=latte.pk).update(short_quantity=1, short_reason="Sold out")
    monkeypatch.setattr(payment_services, "_gateway", lambda payment: refusing)
    for _attempt in range(SHORT_REFUND_ATTEMPTS):
        assert orders_short_refunds_retry.apply().get() == 1
    assert orders_short_refunds_retry.apply().get() == 0
    tries = Refund.objects.filter(order_line=latte, kind=Refund.Kind.SHORT)
    assert [r.status for r in tries] == [Refund.Status.FAILED] * SHORT_REFUND_ATTEMPTS
    assert Payment.objects.get(pk=order.payment_id).amount_refunded == 1_200


def test_the_vendor_cancels_on_the_page_and_over_the_api_and_short_units_stay_off_the_cart(
    paid, shop, other_shop
):
    from django.test import Client

    yakult, _latte = lines(paid)
    stock_before = shop.stock()
    order_line_short(
        order_id=paid.pk, line_id=yakult.pk, vendor=shop.vendor, quantity=1, reason="Dropped"
    )
    url = f"/api/vendor/orders/{paid.pk}/cancel/"
    api = APIClient()
    # Neither another vendor nor the customer can cancel it; a reason is required
    api.force_authenticate(other_shop.vendor.user)
    assert api.post(url, {"reason": "x"}, format="json").status_code == 404
    api.force_authenticate(paid.customer.user)
    assert api.post(url, {"reason": "x"}, format="json").status_code == 403
    api.force_authenticate(shop.vendor.user)
    assert api.post(url, {"reason": ""}, format="json").status_code == 400
    # The vendor's page offers it
    page = Client(headers={"accept-language": "en"})
    page.force_login(shop.vendor.user)
    assert (
        f'action="/orders/vendor/{paid.pk}/cancel/"' in page.get("/orders/vendor/").content.decode()
    )
    blank = page.post(f"/orders/vendor/{paid.pk}/cancel/", {"reason": ""})
    assert blank.status_code in (200, 302)
    assert Order.objects.get(pk=paid.pk).status == Status.ACCEPTED
    done = page.post(f"/orders/vendor/{paid.pk}/cancel/", {"reason": "Cart broke"}, follow=True)
    assert any("cancelled" in m for m in messages_of(done)), messages_of(done)
    order = Order.objects.get(pk=paid.pk)
    assert (order.status, order.reason) == (Status.CANCELLED, "Cart broke")
    assert Payment.objects.get(pk=order.payment_id).status == Payment.Status.VOIDED
    # One yakult of the two was not there: only the other one and the latte go back on the cart
    assert shop.stock() == {
        sku: n + 1 for sku, n in stock_before.items() if sku[:5] in ("yakul", "latte")
    } | {sku: n for sku, n in stock_before.items() if sku[:5] not in ("yakul", "latte")}
    assert api.post(url, {"reason": "again"}, format="json").status_code == 409


def test_staff_refund_a_line_from_the_admin_with_a_reason(paid, shop, staff, client):
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

    yakult, latte = lines(paid)
    order_line_short(
        order_id=paid.pk, line_id=yakult.pk, vendor=shop.vendor, quantity=1, reason="Dropped"
    )
    hand_over(paid, shop.vendor)
    client.force_login(staff)
    chosen = [yakult.pk, latte.pk]
    listing = client.get("/admin/orders/orderline/", {"q": str(paid.pk)})
    assert {line.pk for line in listing.context["cl"].result_list} == set(chosen)
    # A confirmation page asks for a reason first: nothing is refunded yet
    action = {"action": "refund_lines", ACTION_CHECKBOX_NAME: chosen}
    page = client.post("/admin/orders/orderline/", action)
    assert page.status_code == 200
    assert Refund.objects.filter(reason__contains="Warm").count() == 0
    blank = client.post("/admin/orders/orderline/", {**action, "apply": "1", "reason": ""})
    assert blank.status_code == 200 and blank.context["form"].errors
    done = client.post("/admin/orders/orderline/", {**action, "apply": "1", "reason": "Warm"})
    assert done.status_code == 302
    # The rest of the yakult line (one unit) and the whole latte line are refunded; all is back
    refunds = set(
        Refund.objects.filter(reason="Warm").values_list("kind", "order_line_id", "amount")
    )
    assert refunds == {("line", yakult.pk, 1_200), ("line", latte.pk, 2_500)}
    payment = Payment.objects.get(pk=paid.payment_id)
    assert (payment.status, payment.amount_refunded) == (Payment.Status.REFUNDED, 4_900)
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 0
    assert ledger.unbalanced_transactions() == []
    # The line pages are read-only
    assert client.get(f"/admin/orders/orderline/{yakult.pk}/change/").status_code == 200
    assert client.get("/admin/orders/orderline/add/").status_code == 403


def test_the_inbox_offers_only_what_can_be_marked(paid, shop):
    yakult, latte = lines(paid)
    # yakult × 2 and latte × 1: each line can be marked in full while the other is left
    assert (yakult.markable, latte.markable) == (2, 1)
    order_line_short(
        order_id=paid.pk, line_id=yakult.pk, vendor=shop.vendor, quantity=2, reason="Broken"
    )
    yakult, latte = lines(paid)
    # Now the latte is all that is left to hand over: nothing more can be marked, only cancelled
    assert (yakult.markable, latte.markable) == (0, 0)
    from django.test import Client

    page = Client(headers={"accept-language": "en"})
    page.force_login(shop.vendor.user)
    inbox = page.get("/orders/vendor/").content.decode()
    assert "Mark as not supplied" not in inbox
    assert "Can&#x27;t supply the order" in inbox or "Can't supply the order" in inbox
    assert "2 not supplied" in inbox


def test_the_customer_sees_what_is_missing_in_the_live_part_of_the_page(paid, shop, client):
    yakult, _latte = lines(paid)
    order_line_short(
        order_id=paid.pk, line_id=yakult.pk, vendor=shop.vendor, quantity=1, reason="Dropped it"
    )
    # The part the page fetches on each live message says what is missing and what is not paid
    html = client.get(f"/orders/{paid.pk}/status/").content.decode()
    assert 'data-testid="short-note"' in html
    assert "The vendor can&#x27;t supply 1 × " in html or "The vendor can't supply 1 × " in html
    assert "(₩1,200)" in html
    # And it brings the lines along, with the short one and what the customer now pays
    assert '<template data-part="lines">' in html
    assert f'data-testid="short-{yakult.pk}">−₩1,200<' in html
    assert 'data-testid="net-total">' in html
    # And a vendor who then cancels is named with their reason
    order_vendor_cancel(order_id=paid.pk, vendor=shop.vendor, reason="Cart broke down")
    html = client.get(f"/orders/{paid.pk}/status/").content.decode()
    assert "The vendor had to cancel this order." in html
    assert "Cart broke down" in html
    assert 'data-testid="short-note"' not in html
