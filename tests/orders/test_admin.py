"""Orders in the admin: read-only pages that open, search by number, and the one transition staff
take (cancel with a reason and return the money; expire an order nobody accepted) through the
services, as staff."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages

from orders.models import Order, OrderEvent, Status
from orders.services import order_accept, order_depart, order_hand_over
from tests.factories import UserFactory
from tests.orders.conftest import placed

Role = OrderEvent.Role


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


@pytest.mark.django_db
def test_order_pages_open_read_only_with_lines_and_events(admin_client, shop, buyer):
    order = placed(shop, buyer, quantity=3)
    listing = admin_client.get("/admin/orders/order/")
    assert listing.status_code == 200
    assert "₩3,600" in listing.content.decode()
    for q in (f"#{order.pk}", str(order.pk), shop.vendor.name, buyer.email):
        found = admin_client.get("/admin/orders/order/", {"q": q}).context["cl"].result_list
        assert order in list(found), q
    page = admin_client.get(f"/admin/orders/order/{order.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert shop.yakult.name_ko in html  # the line, inline
    assert "pending_payment" in html or "Waiting for payment" in html  # the events, inline
    assert 'name="status"' not in html and 'name="total"' not in html  # nothing to edit
    assert "handover" not in html.lower()  # staff have no business showing the code
    assert admin_client.get("/admin/orders/order/add/").status_code == 403
    assert admin_client.get(f"/admin/orders/order/{order.pk}/delete/").status_code == 403

    events = admin_client.get("/admin/orders/orderevent/", {"q": str(order.pk)})
    assert events.status_code == 200 and events.context["cl"].result_count == 2


@pytest.mark.django_db
def test_cancel_action_asks_for_a_reason_then_cancels_what_may_be(
    admin_client, shop, buyer, stranger, staff
):
    # Given an order waiting for the vendor, one on its way, and one handed over
    waiting, en_route = placed(shop, buyer, quantity=2), placed(shop, stranger, quantity=3)
    order_accept(order_id=en_route.pk, vendor=shop.vendor, eta_minutes=5)
    order_depart(order_id=en_route.pk, vendor=shop.vendor)
    done = placed(shop, buyer, quantity=1)
    order_accept(order_id=done.pk, vendor=shop.vendor, eta_minutes=5)
    order_hand_over(order_id=done.pk, vendor=shop.vendor, code=done.handover_code)
    chosen = [waiting.pk, en_route.pk, done.pk]
    # When staff choose the action, a confirmation page lists them and asks why; nothing changes
    page = admin_client.post(
        "/admin/orders/order/", {"action": "cancel_and_return_money", ACTION_CHECKBOX_NAME: chosen}
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="reason"' in html and all(f"#{pk} " in html for pk in chosen)
    assert Order.objects.get(pk=waiting.pk).status == Status.PLACED
    # ... and confirming without a reason is refused on that page, still changing nothing
    blank = {
        "action": "cancel_and_return_money",
        ACTION_CHECKBOX_NAME: chosen,
        "apply": "1",
        "reason": "  ",
    }
    again = admin_client.post("/admin/orders/order/", blank)
    assert again.status_code == 200 and "This field is required." in again.content.decode()
    assert Order.objects.get(pk=en_route.pk).status == Status.EN_ROUTE
    # When they confirm with a reason
    response = admin_client.post("/admin/orders/order/", {**blank, "reason": "카트 고장"})
    # Then the two not yet handed over are cancelled by staff, and the handed-over one is left
    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert "2 orders cancelled; their money is being returned." in messages
    assert f"#{done.pk}: This order can no longer be changed that way." in messages
    for order in (waiting, en_route):
        order.refresh_from_db()
        event = order.events.last()
        assert order.status == Status.CANCELLED
        assert (event.role, event.actor, event.reason) == (Role.STAFF, staff, "카트 고장")
    assert Order.objects.get(pk=done.pk).status in (Status.HANDED_OVER, Status.COMPLETED)
    assert shop.stock()[shop.yakult.sku] == 10 - 1


@pytest.mark.django_db
def test_expire_action_expires_only_orders_waiting_for_the_vendor(
    admin_client, shop, buyer, stranger, staff
):
    waiting, accepted = placed(shop, buyer, quantity=2), placed(shop, stranger, quantity=3)
    order_accept(order_id=accepted.pk, vendor=shop.vendor, eta_minutes=5)
    response = admin_client.post(
        "/admin/orders/order/",
        {"action": "expire_now", ACTION_CHECKBOX_NAME: [waiting.pk, accepted.pk]},
    )
    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert "1 order expired; its money is being released." in messages
    assert f"#{accepted.pk}: This order can no longer be changed that way." in messages
    waiting.refresh_from_db()
    assert waiting.status == Status.EXPIRED
    assert (waiting.events.last().role, waiting.events.last().actor) == (Role.STAFF, staff)
    assert Order.objects.get(pk=accepted.pk).status == Status.ACCEPTED
    assert shop.stock()[shop.yakult.sku] == 10 - 3


@pytest.mark.django_db
def test_staff_without_permission_cannot_cancel(client, shop, buyer):
    order = placed(shop, buyer)
    client.force_login(UserFactory(is_staff=True))
    response = client.post(
        "/admin/orders/order/",
        {"action": "cancel_and_return_money", ACTION_CHECKBOX_NAME: [order.pk]},
    )
    assert response.status_code == 403
    assert Order.objects.get(pk=order.pk).status == Status.PLACED


CHANGELISTS = ["/admin/orders/order/", "/admin/orders/orderline/", "/admin/orders/orderevent/"]


@pytest.mark.parametrize("changelist", CHANGELISTS)
@pytest.mark.django_db
def test_search_by_order_number_finds_the_order_on_every_list(
    admin_client, shop, buyer, changelist
):
    # Given an order (with its lines and events)
    order = placed(shop, buyer)
    for q in (f"#{order.pk}", f" {order.pk} "):
        # When staff search its number, with or without "#"
        response = admin_client.get(changelist, {"q": q})
        # Then the list shows that order's rows only
        assert response.status_code == 200
        rows = list(response.context["cl"].result_list)
        assert rows, q
        assert {getattr(row, "order_id", row.pk) for row in rows} == {order.pk}, q


@pytest.mark.parametrize("changelist", CHANGELISTS)
@pytest.mark.parametrize("q", ["#²", "①", "١٢", "#" + "1" * 5000])
@pytest.mark.django_db
def test_search_with_digits_int_cannot_read_finds_nothing_not_a_500(
    admin_client, shop, buyer, changelist, q
):
    # Given an order
    placed(shop, buyer)
    # When staff search for digits only str.isdigit() calls digits (superscript, circled,
    # Arabic-Indic) or for more digits than int() reads
    response = admin_client.get(changelist, {"q": q})
    # Then the list opens, with nothing found
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
