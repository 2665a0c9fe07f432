"""Orders in the admin: read-only pages that open, search by number, and the one transition staff
take (cancel and return the money) through the service."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages

from orders.models import Order, Status
from orders.services import order_accept
from tests.factories import UserFactory
from tests.orders.conftest import placed


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
def test_cancel_action_cancels_what_may_be_and_says_what_could_not(
    admin_client, shop, buyer, stranger
):
    waiting, accepted = placed(shop, buyer, quantity=2), placed(shop, stranger, quantity=3)
    order_accept(order_id=accepted.pk, vendor=shop.vendor, eta_minutes=5)
    response = admin_client.post(
        "/admin/orders/order/",
        {"action": "cancel_and_return_money", ACTION_CHECKBOX_NAME: [waiting.pk, accepted.pk]},
    )
    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert f"#{accepted.pk}: This order can no longer be changed that way." in messages
    assert "1 order cancelled; its money is being returned." in messages
    assert Order.objects.get(pk=waiting.pk).status == Status.CANCELLED
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
