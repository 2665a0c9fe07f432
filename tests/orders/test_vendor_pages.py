"""The vendor's inbox: what to act on, grouped by status, each button one service; the history
tab; someone else's order is a 404 and a customer has no inbox."""

import pytest

from orders.models import OrderEvent, Status
from orders.services import order_accept, order_cancel, order_depart, order_hand_over
from tests.orders.conftest import messages_of, place, placed

INBOX = "/orders/vendor/"


def act(client, order, action, **data):
    return client.post(f"/orders/vendor/{order.pk}/{action}/", data, follow=True)


@pytest.mark.django_db
def test_the_inbox_groups_paid_orders_by_status_and_hides_the_rest(
    client, shop, other_shop, buyer, stranger
):
    # Given a new order, an accepted one, one not paid yet, one cancelled, another vendor's
    new = placed(shop, buyer, fulfilment="delivery")
    accepted = placed(shop, stranger, fulfilment="meet")
    order_accept(order_id=accepted.pk, vendor=shop.vendor, eta_minutes=10)
    unpaid = place(shop, buyer)
    cancelled = placed(shop, buyer)
    order_cancel(order_id=cancelled.pk, customer=buyer.customer)
    theirs = placed(other_shop, buyer)
    # When the vendor opens the inbox
    client.force_login(shop.vendor.user)
    response = client.get(INBOX)
    groups = {
        status: [o.pk for o in orders] for status, _label, orders in response.context["groups"]
    }
    # Then each order to act on is under its status
    assert groups == {
        Status.PLACED: [new.pk],
        Status.ACCEPTED: [accepted.pk],
        Status.EN_ROUTE: [],
        Status.READY: [],
    }
    html = response.content.decode()
    for hidden in (unpaid, cancelled, theirs):
        assert f'id="order-{hidden.pk}"' not in html
    # And the new order has accept (with an ETA) and reject, the accepted one a code field
    assert f'action="/orders/vendor/{new.pk}/accept/"' in html
    assert f'action="/orders/vendor/{new.pk}/reject/"' in html
    assert f'action="/orders/vendor/{accepted.pk}/hand-over/"' in html
    assert f'action="/orders/vendor/{accepted.pk}/depart/"' in html
    # And the delivery address is there, the customer's handover codes are not
    assert new.delivery_address in html
    assert f">{new.handover_code}<" not in html and f">{accepted.handover_code}<" not in html
    assert 'id="inbox-config"' in html and "/ws/vendor/orders/" in html


@pytest.mark.django_db
def test_the_list_part_is_the_same_list_without_the_page(client, shop, buyer):
    order = placed(shop, buyer)
    client.force_login(shop.vendor.user)
    part = client.get("/orders/vendor/list/").content.decode()
    assert f'id="order-{order.pk}"' in part
    assert "<html" not in part


@pytest.mark.django_db
def test_inbox_query_count_does_not_grow_with_orders(
    client, shop, buyer, stranger, django_assert_num_queries
):
    client.force_login(shop.vendor.user)
    placed(shop, buyer)
    # session, user, vendor (read once, cached on the user), orders, lines
    with django_assert_num_queries(5):
        assert client.get(INBOX).context["waiting"] == 1
    for customer, fulfilment in ((buyer, "meet"), (stranger, "delivery"), (stranger, "pickup")):
        order = placed(shop, customer, quantity=1, fulfilment=fulfilment)
        order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=5)
    with django_assert_num_queries(5):
        assert client.get(INBOX).context["waiting"] == 4


@pytest.mark.django_db
def test_accept_then_on_the_way_then_arrived_then_hand_over_with_the_code(client, shop, buyer):
    order = placed(shop, buyer, fulfilment="meet")
    client.force_login(shop.vendor.user)
    response = act(client, order, "accept", eta_minutes=15)
    assert response.redirect_chain == [(f"{INBOX}#order-{order.pk}", 302)]
    assert messages_of(response) == [f"Order #{order.pk} accepted. The customer is told."]
    act(client, order, "depart")
    act(client, order, "ready")
    # A wrong code is refused and changes nothing
    wrong = "0000" if order.handover_code != "0000" else "1111"
    response = act(client, order, "hand-over", code=wrong)
    assert messages_of(response) == [
        f"#{order.pk}: That code is not right. Ask the customer to show it."
    ]
    order.refresh_from_db()
    assert order.status == Status.READY
    response = act(client, order, "hand-over", code=order.handover_code)
    assert messages_of(response) == [f"Order #{order.pk} handed over. Thank you!"]
    order.refresh_from_db()
    assert order.status == Status.HANDED_OVER
    events = list(order.events.values_list("to_status", "role", "actor"))
    assert events[-4:] == [
        (Status.ACCEPTED, OrderEvent.Role.VENDOR, shop.vendor.user_id),
        (Status.EN_ROUTE, OrderEvent.Role.VENDOR, shop.vendor.user_id),
        (Status.READY, OrderEvent.Role.VENDOR, shop.vendor.user_id),
        (Status.HANDED_OVER, OrderEvent.Role.VENDOR, shop.vendor.user_id),
    ]


@pytest.mark.parametrize("eta", ["", "0", "-5", "1441", "soon"])
@pytest.mark.django_db
def test_accept_needs_a_sensible_eta(client, shop, buyer, eta):
    order = placed(shop, buyer)
    client.force_login(shop.vendor.user)
    response = act(client, order, "accept", eta_minutes=eta)
    [message] = messages_of(response)
    assert message.startswith(f"#{order.pk}: ")
    order.refresh_from_db()
    assert order.status == Status.PLACED


@pytest.mark.django_db
def test_reject_needs_a_reason_and_returns_the_stock(client, shop, buyer):
    order = placed(shop, buyer, quantity=3)
    client.force_login(shop.vendor.user)
    response = act(client, order, "reject", reason="   ")
    assert messages_of(response) == [f"#{order.pk}: This field is required."]
    assert shop.stock()[shop.yakult.sku] == 7
    response = act(client, order, "reject", reason="Sold out of ice")
    assert messages_of(response) == [f"Order #{order.pk} rejected. The customer is not charged."]
    order.refresh_from_db()
    assert (order.status, order.reason) == (Status.REJECTED, "Sold out of ice")
    assert shop.stock()[shop.yakult.sku] == 10


@pytest.mark.django_db
def test_a_button_from_the_wrong_state_is_a_message_not_a_change(client, shop, buyer):
    order = placed(shop, buyer)
    client.force_login(shop.vendor.user)
    for action in ("depart", "ready"):
        response = act(client, order, action)
        assert messages_of(response) == [
            f"#{order.pk}: This order can no longer be changed that way."
        ]
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=5)
    response = act(client, order, "accept", eta_minutes=5)
    assert messages_of(response) == [f"#{order.pk}: This order can no longer be changed that way."]
    order.refresh_from_db()
    assert order.status == Status.ACCEPTED


@pytest.mark.parametrize("action", ["accept", "reject", "depart", "ready", "hand-over"])
@pytest.mark.django_db
def test_vendor_buttons_are_404_for_anyone_but_the_orders_vendor(
    client, shop, other_shop, buyer, stranger, action
):
    order = placed(shop, buyer)
    data = {"eta_minutes": 5, "reason": "x", "code": order.handover_code}
    url = f"/orders/vendor/{order.pk}/{action}/"
    response = client.post(url, data)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    for user in (buyer, stranger, other_shop.vendor.user):
        client.force_login(user)
        assert client.post(url, data).status_code == 404
    client.force_login(shop.vendor.user)
    assert client.get(url).status_code == 405
    order.refresh_from_db()
    assert order.status == Status.PLACED
    # An unpaid order is none of the vendor's business yet, an unknown action nothing at all
    unpaid = place(shop, buyer)
    assert client.post(f"/orders/vendor/{unpaid.pk}/{action}/", data).status_code == 404
    assert client.post(f"/orders/vendor/{order.pk}/explode/", data).status_code == 404


@pytest.mark.django_db
def test_customers_have_no_inbox(client, buyer):
    assert client.get(INBOX)["Location"].startswith("/accounts/login/")
    client.force_login(buyer)
    response = client.get(INBOX)
    assert response.status_code == 302 and response["Location"] == "/vendors/apply/"
    assert client.get("/orders/vendor/list/").status_code == 404
    assert client.get("/orders/vendor/history/")["Location"] == "/vendors/apply/"


@pytest.mark.django_db
def test_history_tab_lists_finished_orders_only(client, shop, buyer, stranger):
    active = placed(shop, buyer)
    done = placed(shop, stranger)
    order_accept(order_id=done.pk, vendor=shop.vendor, eta_minutes=5)
    order_depart(order_id=done.pk, vendor=shop.vendor)
    order_hand_over(order_id=done.pk, vendor=shop.vendor, code=done.handover_code)
    cancelled = placed(shop, buyer)
    order_cancel(order_id=cancelled.pk, customer=buyer.customer)
    never_paid = place(shop, buyer)
    order_cancel(order_id=never_paid.pk, customer=buyer.customer)
    client.force_login(shop.vendor.user)
    page = client.get("/orders/vendor/history/")
    assert [o.pk for o in page.context["page"].object_list] == [cancelled.pk, done.pk]
    assert f'data-order="{active.pk}"' not in page.content.decode()
