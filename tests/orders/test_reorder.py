"""One-tap reorder (issue #17, part 4): a received order back in the basket, adjusted to what the
cart has now, and on to checkout with last time's way to receive it filled in; what changed said
in one message. Only the order's own customer; never a 500 when the vendor can't sell."""

import pytest
from django.urls import reverse

from orders.models import Fulfilment
from orders.reorder import reorder_plan
from tests.factories import AddressFactory, StaffFactory, VendorHoursFactory, stock_put
from tests.orders.conftest import messages_of, placed, put_cart, received
from tracking.models import VendorPosition
from vendors.models import PickupPoint, Product, Vendor

pytestmark = pytest.mark.django_db


def again(client, order, **data):
    return client.post(reverse("orders:again", args=[order.pk]), data, follow=True)


def test_the_basket_is_adjusted_to_the_cart_now_and_every_change_is_said(client, shop, buyer):
    # Given a received order of 3 yakult and 2 lattes
    order = received(shop, buyer, items=[(shop.yakult, 3), (shop.latte, 2)])
    # And now the cart has only 2 yakult, at a new price, and no latte
    stock_put(vendor=shop.vendor, product=shop.yakult, quantity=2)
    stock_put(vendor=shop.vendor, product=shop.latte, quantity=0)
    Product.objects.filter(pk=shop.yakult.pk).update(price=1300)
    client.force_login(buyer)
    # When the customer taps "Order again"
    response = again(client, order)
    # Then checkout opens with what the cart can give, at today's price
    assert response.redirect_chain == [("/orders/checkout/", 302)]
    assert client.session["cart"]["lines"] == {str(shop.yakult.pk): 2}
    assert response.context["subtotal"] == 2600
    # And one message says what changed
    yakult, latte = shop.yakult.name_en, shop.latte.name_en
    assert messages_of(response) == [
        "Your basket holds your last order, with changes: "
        f"Only 2 of 3 {yakult} left; {yakult} costs ₩1,300 now (was ₩1,200); "
        f"{latte} is sold out."
    ]


def test_nothing_changed_says_so_and_prefills_the_pickup_point_and_note(client, shop, buyer):
    order = received(shop, buyer, note="초인종 누르지 마세요")
    client.force_login(buyer)
    response = again(client, order)
    assert messages_of(response) == ["Your basket holds your last order again. Check and pay."]
    form = response.context["form"]
    assert form.initial["fulfilment"] == Fulfilment.PICKUP
    assert form.initial["pickup_point"] == shop.point.pk
    assert form.initial["note"] == "초인종 누르지 마세요"
    html = response.content.decode()
    assert "초인종 누르지 마세요</textarea>" in html


def test_delivery_prefills_the_saved_address_it_went_to(client, shop, buyer):
    # Given two saved addresses and an order delivered to the second
    office = AddressFactory(customer=buyer.customer, label="회사", lat=37.5561, lng=126.9061)
    order = received(shop, buyer, fulfilment="delivery", address_id=office.pk)
    client.force_login(buyer)
    form = again(client, order).context["form"]
    # Then checkout chooses delivery to that one, not the default
    assert form.initial["fulfilment"] == Fulfilment.DELIVERY
    assert form.initial["address"] == str(office.pk)
    # And once that address is deleted, the message says to choose one
    office.delete()
    response = again(client, order)
    assert "the address you used is no longer saved" in messages_of(response)[0]
    assert response.context["form"].initial["address"] != str(office.pk)


def test_meeting_an_off_shift_cart_falls_back_with_a_word(client, shop, buyer):
    order = received(shop, buyer, fulfilment="meet")
    # The cart went off shift, but takes orders ahead in its hours (every day, all day)
    VendorPosition.objects.filter(vendor=shop.vendor).update(on_shift=False)
    for day in range(7):
        VendorHoursFactory(vendor=shop.vendor, weekday=day, opens="00:00", closes="23:59")
    client.force_login(buyer)
    response = again(client, order)
    assert response.redirect_chain == [("/orders/checkout/", 302)]
    assert "the cart is off shift, so you can't meet it now" in messages_of(response)[0]
    assert response.context["form"].initial["fulfilment"] != Fulfilment.MEET


@pytest.mark.parametrize("why", ["suspended", "off_shift_no_hours", "sold_out", "product_gone"])
def test_a_vendor_that_cant_sell_or_an_empty_cart_is_said_clearly(client, shop, buyer, why):
    order = received(shop, buyer)
    if why == "suspended":
        Vendor.objects.filter(pk=shop.vendor.pk).update(status=Vendor.Status.SUSPENDED)
    elif why == "off_shift_no_hours":
        VendorPosition.objects.filter(vendor=shop.vendor).update(on_shift=False)
    elif why == "sold_out":
        stock_put(vendor=shop.vendor, product=shop.yakult, quantity=0)
    else:
        Product.objects.filter(pk=shop.yakult.pk).update(is_active=False)
    put_cart(client, shop.vendor, {shop.latte.pk: 1})  # whatever was in the basket stays
    client.force_login(buyer)
    response = again(client, order)
    assert response.status_code == 200
    assert response.redirect_chain == [(f"/orders/{order.pk}/", 302)]
    expected = {
        "suspended": "is not selling now, so this order can't be repeated.",
        "off_shift_no_hours": "is off shift and takes no orders ahead now.",
        "sold_out": "Nothing from this order is on",
        "product_gone": "Nothing from this order is on",
    }[why]
    assert expected in messages_of(response)[0]
    assert client.session["cart"]["lines"] == {str(shop.latte.pk): 1}


def test_an_order_not_received_has_no_button_and_is_refused(client, shop, buyer):
    order = placed(shop, buyer)
    client.force_login(buyer)
    assert 'data-testid="order-again"' not in client.get(f"/orders/{order.pk}/").content.decode()
    response = again(client, order)
    assert messages_of(response) == ["Only an order you have received can be ordered again."]
    assert not client.session.get("cart", {}).get("lines")


def test_the_button_is_on_received_orders_in_the_page_and_the_list(client, shop, buyer):
    waiting, done = placed(shop, buyer), received(shop, buyer)
    client.force_login(buyer)
    assert 'data-testid="order-again"' in client.get(f"/orders/{done.pk}/").content.decode()
    listing = client.get("/orders/").content.decode()
    assert f'action="/orders/{done.pk}/again/"' in listing
    assert f'action="/orders/{waiting.pk}/again/"' not in listing


def test_only_the_orders_own_customer_may_reorder(client, shop, other_shop, buyer, stranger):
    order = received(shop, buyer)
    url = reverse("orders:again", args=[order.pk])
    response = client.post(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    for user in (stranger, shop.vendor.user, other_shop.vendor.user, StaffFactory()):
        client.force_login(user)
        assert client.post(url).status_code == 404
        assert not client.session.get("cart")
    assert client.get(url).status_code == 405


def test_another_vendors_basket_is_replaced_only_when_the_customer_agrees(
    client, shop, other_shop, buyer
):
    order = received(shop, buyer)
    put_cart(client, other_shop.vendor, {other_shop.latte.pk: 1})
    client.force_login(buyer)
    response = client.post(reverse("orders:again", args=[order.pk]))
    assert response.status_code == 409
    assert client.session["cart"]["vendor_id"] == other_shop.vendor.pk
    response = again(client, order, replace="1")
    assert response.redirect_chain == [("/orders/checkout/", 302)]
    assert client.session["cart"]["lines"] == {str(shop.yakult.pk): 2}
    # Adding another vendor's product later forgets the remembered choices
    client.post(
        "/orders/cart/add/",
        {
            "vendor": other_shop.vendor.pk,
            "product": other_shop.latte.pk,
            "quantity": 1,
            "replace": "1",
        },
    )
    assert "prefill" not in client.session["cart"]


def test_the_prefilled_checkout_places_the_order(client, shop, buyer):
    # Given the checkout a reorder opened
    order = received(shop, buyer, items=[(shop.yakult, 1)], note="문 앞")
    client.force_login(buyer)
    form = again(client, order).context["form"]
    data = {
        "checkout_token": form.initial["checkout_token"],
        "fulfilment": form.initial["fulfilment"],
        "pickup_point": form.initial["pickup_point"],
        "window": "asap",
        "note": form.initial["note"],
        "expected_subtotal": 1200,
    }
    # When the customer sends it as it is
    response = client.post("/orders/checkout/", data)
    # Then a new order is placed with the same choices, and the basket is empty
    assert response.status_code == 302
    new = buyer.customer.orders.order_by("-pk").first()
    assert new.pk != order.pk and new.pickup_point_id == shop.point.pk and new.note == "문 앞"
    assert not client.session["cart"]["lines"]


def test_the_plan_reads_the_sellable_units_not_the_raw_count(shop, buyer):
    # The plan caps at ORDER_MAX_QUANTITY and drops inactive pickup points with a word
    order = received(shop, buyer, items=[(shop.yakult, 2)])
    PickupPoint.objects.filter(pk=shop.point.pk).update(is_active=False)
    plan = reorder_plan(customer=buyer.customer, order_id=order.pk)
    assert [(line.product_id, line.quantity) for line in plan.lines] == [(shop.yakult.pk, 2)]
    assert [c.kind for c in plan.changes] == ["pickup_point"]


@pytest.fixture
def api_for():
    from rest_framework.test import APIClient

    def _api(user=None):
        client = APIClient(headers={"accept-language": "en"})
        if user is not None:
            client.force_authenticate(user)
        return client

    return _api


def test_reorder_api_answers_the_adjusted_basket_and_changes(api_for, shop, buyer, stranger):
    order = received(shop, buyer, items=[(shop.yakult, 3), (shop.latte, 1)], note="문 앞")
    stock_put(vendor=shop.vendor, product=shop.yakult, quantity=2)
    stock_put(vendor=shop.vendor, product=shop.latte, quantity=0)
    url = f"/api/orders/{order.pk}/reorder/"
    assert api_for().post(url).status_code == 401
    assert api_for(stranger).post(url).status_code == 404
    assert api_for(shop.vendor.user).post(url).status_code == 404
    response = api_for(buyer).post(url)
    assert response.status_code == 200
    body = response.json()
    assert body["vendor"] == shop.vendor.pk
    assert [(line["product_id"], line["quantity"]) for line in body["lines"]] == [
        (shop.yakult.pk, 2)
    ]
    assert [c["kind"] for c in body["changes"]] == ["fewer", "sold_out"]
    assert body["receive"] == {
        "fulfilment": "pickup",
        "address_id": None,
        "pickup_point_id": shop.point.pk,
        "note": "문 앞",
    }
    assert body["message"].startswith("Only 2 of 3")
    # Nothing left: 409 with a sentence
    stock_put(vendor=shop.vendor, product=shop.yakult, quantity=0)
    refused = api_for(buyer).post(url)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "cannot_reorder"
    assert "Nothing from this order" in refused.json()["error"]["message"]
