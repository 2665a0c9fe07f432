"""The basket: one vendor at a time (asking before it is emptied), quantities checked against what
is on the vendor's cart now, kept in the session so it survives logging in."""

import pytest
from django.conf import settings

from tests.factories import PASSWORD
from tests.orders.conftest import messages_of, put_cart
from vendors.models import Vendor
from vendors.services import StockChange, stock_set, vendor_suspend

ADD = "/orders/cart/add/"
CART = "/orders/cart/"


def add(client, shop, product, quantity=1, **extra):
    data = {"vendor": shop.vendor.pk, "product": product.pk, "quantity": quantity, **extra}
    return client.post(ADD, data, follow=True)


def basket(client) -> dict:
    return client.session.get("cart") or {}


@pytest.mark.django_db
def test_adding_from_the_vendor_page_fills_the_basket_with_won_totals(client, shop):
    # Given the vendor's page offers an add-to-cart form per product on the cart
    page = client.get(f"/vendors/{shop.vendor.slug}/").content.decode()
    assert 'action="/orders/cart/add/"' in page
    # When an anonymous visitor adds 2 yakult and 1 latte
    response = add(client, shop, shop.yakult, 2)
    add(client, shop, shop.latte, 1)
    # Then they go back to the vendor's page, told it worked
    assert response.redirect_chain == [(f"/vendors/{shop.vendor.slug}/", 302)]
    assert messages_of(response) == ["Added to your basket."]
    # And the basket page shows both lines and the total in won
    page = client.get(CART)
    html = page.content.decode()
    assert [(line.product.sku, line.quantity) for line in page.context["lines"]] == [
        (shop.yakult.sku, 2),
        (shop.latte.sku, 1),
    ]
    assert "₩2,400" in html and "₩2,500" in html
    assert page.context["subtotal"] == 4900
    assert "₩4,900" in html


@pytest.mark.django_db
def test_adding_again_adds_up_and_is_checked_against_the_cart(client, shop):
    # Given 10 yakult on the vendor's cart and 8 in the basket
    add(client, shop, shop.yakult, 8)
    # When the visitor adds 3 more
    response = add(client, shop, shop.yakult, 3)
    # Then they are told only 10 are left, and the basket keeps 8
    assert messages_of(response) == ["Only 10 left on the cart."]
    assert basket(client)["lines"] == {str(shop.yakult.pk): 8}
    # And adding 2 makes exactly 10
    add(client, shop, shop.yakult, 2)
    assert basket(client)["lines"] == {str(shop.yakult.pk): 10}


@pytest.mark.parametrize("quantity", [0, -1, "two", ""])
@pytest.mark.django_db
def test_a_quantity_below_one_is_refused(client, shop, quantity):
    response = add(client, shop, shop.yakult, quantity)
    assert response.redirect_chain == [(f"/vendors/{shop.vendor.slug}/", 302)]
    assert messages_of(response) == ["Choose a quantity of at least 1."]
    assert basket(client) == {}


@pytest.mark.django_db
def test_more_than_the_per_order_limit_is_refused_even_when_the_cart_has_it(client, shop):
    # Given plenty on the cart
    stock_set(
        vendor=shop.vendor,
        actor=shop.vendor.user,
        changes=[StockChange(product_id=shop.yakult.pk, quantity=500)],
    )
    # When the visitor asks for one more than an order may hold
    response = add(client, shop, shop.yakult, settings.ORDER_MAX_QUANTITY + 1)
    # Then it is refused with the limit
    assert messages_of(response) == [
        f"At most {settings.ORDER_MAX_QUANTITY} of one product per order."
    ]
    assert basket(client) == {}


@pytest.mark.django_db
def test_sold_out_inactive_and_foreign_products_cannot_be_added(client, shop, other_shop):
    # Given a sold-out product, a product the platform stopped selling, another vendor's product
    stock_set(
        vendor=shop.vendor,
        actor=shop.vendor.user,
        changes=[StockChange(product_id=shop.latte.pk, quantity=0)],
    )
    shop.yakult.is_active = False
    shop.yakult.save()
    for product in (shop.latte, shop.yakult, other_shop.yakult):
        # When the visitor tries to add it from this vendor
        response = add(client, shop, product)
        # Then it is refused
        assert messages_of(response) == ["This product is not on the cart now."]
    assert basket(client) == {}


@pytest.mark.django_db
def test_a_vendor_who_cannot_sell_sells_nothing(client, shop):
    Vendor.objects.filter(pk=shop.vendor.pk).update(status=Vendor.Status.SUSPENDED)
    response = add(client, shop, shop.yakult)
    assert messages_of(response) == ["This vendor is not selling now."]
    assert basket(client) == {}


@pytest.mark.django_db
def test_unknown_vendor_is_404(client, shop):
    response = client.post(ADD, {"vendor": 999999, "product": shop.yakult.pk, "quantity": 1})
    assert response.status_code == 404


@pytest.mark.django_db
def test_another_vendors_product_asks_before_emptying_the_basket(client, shop, other_shop):
    # Given a basket with the first vendor's yakult
    add(client, shop, shop.yakult, 2)
    # When the visitor adds a product of another vendor
    response = add(client, other_shop, other_shop.latte, 1)
    # Then nothing changes yet: a page asks, naming both vendors, with a form that confirms
    assert response.status_code == 409
    html = response.content.decode()
    assert shop.vendor.name in html and other_shop.vendor.name in html
    assert 'name="replace" value="1"' in html
    assert f'name="product" value="{other_shop.latte.pk}"' in html
    assert basket(client)["vendor_id"] == shop.vendor.pk
    assert basket(client)["lines"] == {str(shop.yakult.pk): 2}
    # When they confirm
    response = add(client, other_shop, other_shop.latte, 1, replace="1")
    # Then the basket holds only the other vendor's product
    assert messages_of(response) == ["Added to your basket."]
    assert basket(client) == {
        "vendor_id": other_shop.vendor.pk,
        "lines": {str(other_shop.latte.pk): 1},
    }


@pytest.mark.django_db
def test_quantities_change_and_lines_go(client, shop):
    add(client, shop, shop.yakult, 2)
    add(client, shop, shop.latte, 1)
    # When the visitor sets yakult to 5
    response = client.post(
        "/orders/cart/update/", {"product": shop.yakult.pk, "quantity": 5}, follow=True
    )
    assert messages_of(response) == ["Your basket is updated."]
    assert basket(client)["lines"][str(shop.yakult.pk)] == 5
    # And tries 11 (10 on the cart)
    response = client.post(
        "/orders/cart/update/", {"product": shop.yakult.pk, "quantity": 11}, follow=True
    )
    assert messages_of(response) == ["Only 10 left on the cart."]
    assert basket(client)["lines"][str(shop.yakult.pk)] == 5
    # And a product not in the basket can't be set
    response = client.post("/orders/cart/update/", {"product": 999999, "quantity": 1}, follow=True)
    assert messages_of(response) == ["That product is not in your basket."]
    # And setting latte to 0 removes it, removing yakult empties the basket
    client.post("/orders/cart/update/", {"product": shop.latte.pk, "quantity": 0})
    assert basket(client)["lines"] == {str(shop.yakult.pk): 5}
    client.post("/orders/cart/remove/", {"product": shop.yakult.pk})
    assert basket(client) == {"vendor_id": None, "lines": {}}
    assert "Your basket is empty." in client.get(CART).content.decode()


@pytest.mark.django_db
def test_the_basket_page_says_when_the_vendor_has_less_now(client, shop):
    # Given 4 latte in the basket
    add(client, shop, shop.latte, 4)
    # When the vendor sells some at the cart and 2 are left, and yakult is withdrawn
    stock_set(
        vendor=shop.vendor,
        actor=shop.vendor.user,
        changes=[StockChange(product_id=shop.latte.pk, quantity=2)],
    )
    # Then the basket page says so for that line
    page = client.get(CART)
    assert page.context["problems"] is True
    assert "Only 2 left on the cart." in page.content.decode()
    assert f'data-testid="problem-{shop.latte.pk}"' in page.content.decode()


@pytest.mark.django_db
def test_the_anonymous_basket_survives_logging_in(client, shop, buyer):
    # Given an anonymous visitor with 3 yakult in the basket
    add(client, shop, shop.yakult, 3)
    anonymous_session = client.cookies["sessionid"].value
    # When they log in through the login page (which cycles the session key)
    response = client.post("/accounts/login/", {"username": buyer.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.cookies["sessionid"].value != anonymous_session
    # Then the basket is still there, and checkout opens with it
    assert basket(client)["lines"] == {str(shop.yakult.pk): 3}
    checkout = client.get("/orders/checkout/")
    assert checkout.status_code == 200
    assert [line.quantity for line in checkout.context["lines"]] == [3]


@pytest.mark.django_db
def test_a_garbled_session_basket_is_read_as_far_as_it_goes(client, shop):
    session = client.session
    session["cart"] = {"vendor_id": shop.vendor.pk, "lines": {"x": 1, str(shop.yakult.pk): "2"}}
    session.save()
    page = client.get(CART)
    assert [(line.product.pk, line.quantity) for line in page.context["lines"]] == [
        (shop.yakult.pk, 2)
    ]


@pytest.mark.django_db
def test_nav_shows_how_many_products_are_in_the_basket(client, shop):
    put_cart(client, shop.vendor, {shop.yakult.pk: 2, shop.latte.pk: 1})
    html = client.get(CART).content.decode()
    assert '<span class="nav-count">2</span>' in html


# --- A vendor who can't sell now, or is gone ------------------------------------------------------


@pytest.mark.django_db
def test_a_suspended_vendors_products_are_not_shown_as_on_sale_in_the_basket(client, shop):
    # Given a basket filled while the vendor was approved
    add(client, shop, shop.yakult, 2)
    # When staff suspend the vendor and the customer opens the basket
    vendor_suspend(vendor_id=shop.vendor.pk)
    page = client.get(CART)
    # Then the line is there but not on sale, and the page says the vendor is not selling now
    assert page.status_code == 200
    assert [(line.product.pk, line.quantity, line.available) for line in page.context["lines"]] == [
        (shop.yakult.pk, 2, 0)
    ]
    assert [line.on_sale for line in page.context["lines"]] == [False]
    html = page.content.decode()
    assert f'data-testid="problem-{shop.yakult.pk}"' in html
    assert '<p class="note" role="alert" data-testid="vendor-not-selling">' in html
    assert "This vendor is not selling now." in html
    # And it offers neither checkout nor a link to the vendor's page (a 404 now)
    assert 'href="/orders/checkout/"' not in html
    assert f'href="/vendors/{shop.vendor.slug}/"' not in html


@pytest.mark.django_db
def test_a_basket_line_of_a_suspended_vendor_cannot_be_raised_but_can_be_lowered(client, shop):
    # Given 2 yakult in the basket, and the vendor suspended since
    add(client, shop, shop.yakult, 2)
    Vendor.objects.filter(pk=shop.vendor.pk).update(status=Vendor.Status.SUSPENDED)
    # When the customer raises the line to 5
    response = client.post(
        "/orders/cart/update/", {"product": shop.yakult.pk, "quantity": 5}, follow=True
    )
    # Then it is refused, and the line stays at 2
    assert messages_of(response) == ["This vendor is not selling now."]
    assert basket(client)["lines"] == {str(shop.yakult.pk): 2}
    # When they lower it to 1
    response = client.post(
        "/orders/cart/update/", {"product": shop.yakult.pk, "quantity": 1}, follow=True
    )
    # Then that is allowed
    assert messages_of(response) == ["Your basket is updated."]
    assert basket(client)["lines"] == {str(shop.yakult.pk): 1}


@pytest.mark.django_db
def test_a_basket_whose_vendor_is_gone_is_emptied(client, shop):
    # Given a session basket naming a vendor that no longer exists (deleted in the admin, or a
    # stale or tampered session) with a product that still does
    put_cart(client, shop.vendor, {shop.yakult.pk: 1})
    session = client.session
    session["cart"]["vendor_id"] = 987654321
    session.save()
    # When the customer opens the basket
    page = client.get(CART)
    # Then the page opens, empty, and the session basket is emptied too
    assert page.status_code == 200
    assert page.context["lines"] == []
    assert "Your basket is empty." in page.content.decode()
    assert basket(client) == {"vendor_id": None, "lines": {}}


@pytest.mark.django_db
def test_adding_over_a_basket_whose_vendor_is_gone_does_not_ask(client, shop):
    # Given a session basket naming a vendor that no longer exists
    put_cart(client, shop.vendor, {shop.latte.pk: 1})
    session = client.session
    session["cart"]["vendor_id"] = 987654321
    session.save()
    # When the customer adds a product from a vendor who sells
    response = add(client, shop, shop.yakult, 2)
    # Then it is added without asking to empty the basket, and the old line is gone
    assert messages_of(response) == ["Added to your basket."]
    assert basket(client) == {"vendor_id": shop.vendor.pk, "lines": {str(shop.yakult.pk): 2}}
