"""The customer's order pages: the live order page and its status part, cancelling, the history
with "order again", receipts, the way back from the card page; each for its own customer only."""

import pytest

from orders.models import Order, Status
from orders.services import (
    order_accept,
    order_depart,
    order_hand_over,
    order_payment_settled,
    order_reject,
)
from tests.factories import StaffFactory
from tests.orders.conftest import messages_of, place, placed
from tracking.models import VendorPosition


@pytest.mark.django_db
def test_a_placed_order_shows_steps_lines_totals_and_the_code(client, shop, buyer):
    order = placed(shop, buyer, quantity=3)
    client.force_login(buyer)
    response = client.get(f"/orders/{order.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    # Then the status, the step reached, the lines and the total in won
    assert 'data-testid="status">Placed<' in html
    assert [s["state"] for s in response.context["steps"]] == ["current", "todo", "todo", "todo"]
    assert "₩3,600" in html
    assert shop.yakult.name_en in html
    # And the handover code, large, and a cancel button
    assert 'data-testid="handover-code"' in html and f">{order.handover_code}</p>" in html
    assert f'action="/orders/{order.pk}/cancel/"' in html
    # And where it is picked up, and the socket the page follows
    assert shop.point.name in html
    assert f'"/ws/orders/{order.pk}/"' in html


@pytest.mark.django_db
def test_the_code_is_not_shown_before_payment_nor_after_handover(client, shop, buyer):
    client.force_login(buyer)
    waiting = place(shop, buyer)
    html = client.get(f"/orders/{waiting.pk}/").content.decode()
    assert 'data-testid="handover-code"' not in html
    assert f'action="/orders/{waiting.pk}/pay/"' in html  # pay (again)
    done = placed(shop, buyer)
    order_accept(order_id=done.pk, vendor=shop.vendor, eta_minutes=10)
    order_hand_over(order_id=done.pk, vendor=shop.vendor, code=done.handover_code)
    html = client.get(f"/orders/{done.pk}/").content.decode()
    assert 'data-testid="handover-code"' not in html
    assert "cancel/" not in html


@pytest.mark.django_db
def test_the_status_part_follows_each_transition(client, shop, buyer):
    order = placed(shop, buyer, fulfilment="meet")
    client.force_login(buyer)
    url = f"/orders/{order.pk}/status/"
    assert client.get(url).context["order"].status == Status.PLACED
    # When the vendor accepts with an ETA
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=20)
    part = client.get(url)
    html = part.content.decode()
    # Then the part (a fragment, not a page) says so, with the ETA, and no cancel any more
    assert "<html" not in html
    assert 'data-status="accepted"' in html
    assert "Expected around" in html
    assert "cancel/" not in html
    assert part.context["vendor_cell"] is None
    # When the vendor sets off to the meeting
    order_depart(order_id=order.pk, vendor=shop.vendor)
    part = client.get(url)
    # Then the customer sees the vendor's public cell (an area), never the exact position
    assert part.context["vendor_cell"]["cell"] == shop.cell
    position = VendorPosition.objects.get(vendor=shop.vendor)
    html = part.content.decode()
    assert f"{position.lat:.6f}" not in html and f"{position.lng:.6f}" not in html
    assert 'data-poll="30"' in html
    assert [s["state"] for s in part.context["steps"]] == [
        "done",
        "done",
        "current",
        "todo",
        "todo",
    ]


@pytest.mark.django_db
def test_the_vendor_area_is_only_for_meetings(client, shop, buyer):
    order = placed(shop, buyer, fulfilment="delivery")
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=20)
    order_depart(order_id=order.pk, vendor=shop.vendor)
    client.force_login(buyer)
    assert client.get(f"/orders/{order.pk}/status/").context["vendor_cell"] is None


@pytest.mark.django_db
def test_the_customer_cancels_before_acceptance_and_the_stock_returns(client, shop, buyer):
    order = placed(shop, buyer, quantity=4)
    assert shop.stock()[shop.yakult.sku] == 6
    client.force_login(buyer)
    response = client.post(
        f"/orders/{order.pk}/cancel/", {"reason": "changed my mind"}, follow=True
    )
    assert messages_of(response) == ["Your order is cancelled. You will not be charged."]
    order.refresh_from_db()
    assert order.status == Status.CANCELLED
    assert order.events.last().reason == "changed my mind"
    assert shop.stock()[shop.yakult.sku] == 10


@pytest.mark.django_db
def test_cancelling_after_acceptance_is_refused_with_a_message(client, shop, buyer):
    order = placed(shop, buyer)
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=5)
    client.force_login(buyer)
    response = client.post(f"/orders/{order.pk}/cancel/", follow=True)
    assert messages_of(response) == ["This order can no longer be changed that way."]
    assert Order.objects.get(pk=order.pk).status == Status.ACCEPTED


@pytest.mark.django_db
def test_a_rejected_order_says_why(client, shop, buyer):
    order = placed(shop, buyer)
    order_reject(order_id=order.pk, vendor=shop.vendor, reason="Out of ice")
    client.force_login(buyer)
    html = client.get(f"/orders/{order.pk}/").content.decode()
    assert "The vendor could not take this order" in html
    assert "Out of ice" in html


@pytest.mark.django_db
def test_coming_back_from_the_card_page_without_a_payment_says_it_is_being_checked(
    client, shop, buyer
):
    # Given an order whose payment was never started at the provider
    order = place(shop, buyer)
    client.force_login(buyer)
    response = client.get(f"/orders/{order.pk}/paid/", follow=True)
    assert response.redirect_chain == [(f"/orders/{order.pk}/", 302)]
    # Then the live status part says it (a flash message would outlive the status it is about)
    assert messages_of(response) == []
    assert 'data-testid="payment-wait"' in response.content.decode()
    # And a paid one is simply shown, saying so while it is waiting for the vendor
    order_payment_settled(order_id=order.pk, payment_status="authorised")
    response = client.get(f"/orders/{order.pk}/paid/", follow=True)
    assert messages_of(response) == []
    assert "Paid! The vendor will confirm your order soon." in response.content.decode()


# --- history, order again, receipts ---------------------------------------------------------------


@pytest.mark.django_db
def test_history_lists_own_orders_newest_first(client, shop, buyer, stranger):
    first, second = placed(shop, buyer), placed(shop, buyer, fulfilment="meet")
    placed(shop, stranger)
    client.force_login(buyer)
    page = client.get("/orders/")
    assert [o.pk for o in page.context["page"].object_list] == [second.pk, first.pk]


@pytest.mark.django_db
def test_history_query_count_does_not_grow_with_orders(
    client, shop, buyer, django_assert_num_queries
):
    client.force_login(buyer)
    placed(shop, buyer)
    # session, user, customer profile, vendor nav, count, orders, lines
    with django_assert_num_queries(7):
        assert len(client.get("/orders/").context["page"].object_list) == 1
    for _ in range(3):
        placed(shop, buyer, quantity=1)
    with django_assert_num_queries(7):
        assert len(client.get("/orders/").context["page"].object_list) == 4


# "Order again" (one-tap reorder): tests/orders/test_reorder.py


@pytest.mark.django_db
def test_receipt_for_the_customer_and_the_vendor_only_once_paid(client, shop, buyer):
    order = placed(shop, buyer, quantity=2)
    for user in (buyer, shop.vendor.user):
        client.force_login(user)
        response = client.get(f"/orders/{order.pk}/receipt/")
        assert response.status_code == 200
        html = response.content.decode()
        assert f"#{order.pk}" in html and "₩2,400" in html and shop.vendor.name in html
    unpaid = place(shop, buyer)
    client.force_login(buyer)
    assert client.get(f"/orders/{unpaid.pk}/receipt/").status_code == 404


# --- who may see what ---------------------------------------------------------------------------


CUSTOMER_PAGES = [
    ("get", "/orders/{id}/"),
    ("get", "/orders/{id}/status/"),
    ("get", "/orders/{id}/paid/"),
    ("post", "/orders/{id}/pay/"),
    ("post", "/orders/{id}/payment/refresh/"),
    ("post", "/orders/{id}/cancel/"),
    ("post", "/orders/{id}/again/"),
]


@pytest.mark.parametrize(("method", "path"), CUSTOMER_PAGES)
@pytest.mark.django_db
def test_customer_pages_are_404_for_anyone_but_the_customer(
    client, shop, other_shop, buyer, stranger, method, path
):
    order = placed(shop, buyer)
    url = path.format(id=order.pk)
    # Anonymous: to the login page
    response = getattr(client, method)(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    # Another customer, the order's own vendor, another vendor, staff: no such order
    for user in (stranger, shop.vendor.user, other_shop.vendor.user, StaffFactory()):
        client.force_login(user)
        assert getattr(client, method)(url).status_code == 404, user
    # And an order that doesn't exist is the same 404
    client.force_login(stranger)
    assert getattr(client, method)(path.format(id=order.pk + 1000)).status_code == 404
    # Nothing happened to the order
    assert Order.objects.get(pk=order.pk).status == Status.PLACED


@pytest.mark.django_db
def test_receipt_is_404_for_others(client, shop, other_shop, buyer, stranger):
    order = placed(shop, buyer)
    assert client.get(f"/orders/{order.pk}/receipt/").status_code == 302
    for user in (stranger, other_shop.vendor.user):
        client.force_login(user)
        assert client.get(f"/orders/{order.pk}/receipt/").status_code == 404


@pytest.mark.django_db
def test_customer_pages_are_not_cached_where_they_change(client, shop, buyer):
    order = placed(shop, buyer)
    client.force_login(buyer)
    response = client.get(f"/orders/{order.pk}/status/")
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


@pytest.mark.django_db
def test_the_meet_page_map_shows_the_meeting_cell(client, shop, buyer):
    order = placed(shop, buyer, fulfilment="meet")
    client.force_login(buyer)
    response = client.get(f"/orders/{order.pk}/")
    config = response.context["order_config"]
    assert config["meet"]["cell"] == shop.cell
    assert len(config["meet"]["boundary"]) == 6
