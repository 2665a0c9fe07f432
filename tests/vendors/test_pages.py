"""Vendor pages: the public list and detail, applying to sell, and the vendor's own stock page."""

import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from tests.factories import (
    CustomerProfileFactory,
    ProductFactory,
    StockFactory,
    VendorFactory,
)
from vendors.models import ServiceCell, Stock, Vendor
from vendors.services import MAX_STOCK, stock_adjust

S = Vendor.Status


@pytest.fixture
def client():
    return Client(headers={"accept-language": "en"})


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- Public list and detail -------------------------------------------------------------------


@pytest.mark.django_db
def test_list_shows_only_approved_vendors_and_the_others_have_no_page(client):
    # Given a vendor in every state
    vendors = {status: VendorFactory(name=f"cart-{status}", status=status) for status in S.values}
    # When a customer opens the list
    response = client.get("/vendors/")
    # Then only the approved one is listed
    assert response.status_code == 200
    assert [v.pk for v in response.context["vendors"]] == [vendors[S.APPROVED].pk]
    html = response.content.decode()
    assert "cart-approved" in html
    for status in (S.PENDING, S.SUSPENDED, S.REJECTED):
        assert f"cart-{status}" not in html
        # And the unapproved ones' pages don't exist for the public
        assert client.get(f"/vendors/{vendors[status].slug}/").status_code == 404
    assert client.get(f"/vendors/{vendors[S.APPROVED].slug}/").status_code == 200


@pytest.mark.django_db
def test_unknown_vendor_is_404(client):
    assert client.get("/vendors/no-such-cart/").status_code == 404


@pytest.mark.django_db
def test_detail_shows_what_is_on_the_cart_with_won_prices(client, vendor):
    # Given a cart with two products on it and one the platform stopped selling
    yakult = StockFactory(
        vendor=vendor, product=ProductFactory(sku="yakult", price=1200), quantity=7
    )
    StockFactory(vendor=vendor, product=ProductFactory(sku="latte", price=13500), quantity=0)
    StockFactory(vendor=vendor, product=ProductFactory(sku="gone", is_active=False), quantity=9)
    # When a customer opens the vendor's page
    response = client.get(f"/vendors/{vendor.slug}/")
    html = response.content.decode()
    # Then each active product shows its quantity and its price in won
    assert response.status_code == 200
    assert "₩1,200" in html
    assert "₩13,500" in html
    assert re.search(r'data-testid="qty-yakult"[^>]*>\s*7\b', html)
    assert 'data-sku="latte"' in html
    # And the inactive product is not shown
    assert 'data-sku="gone"' not in html
    lines = response.context["vendor"].stock_lines
    assert [(s.product.sku, s.quantity) for s in lines] == [("yakult", 7), ("latte", 0)]
    assert lines[0].pk == yakult.pk


def _approved_vendor_with_stock(products: int = 3) -> Vendor:
    v = VendorFactory()
    for _ in range(products):
        StockFactory(vendor=v, quantity=5)
    return v


@pytest.mark.django_db
def test_list_page_query_count_does_not_grow_with_vendors(client, django_assert_num_queries):
    # Given a few vendors with stock
    for _ in range(2):
        _approved_vendor_with_stock()
    # (the vendors with their shift, and their published hours)
    with django_assert_num_queries(2):
        small = client.get("/vendors/")
    # When there are many more
    for _ in range(8):
        _approved_vendor_with_stock()
    # Then the page still takes two queries
    with django_assert_num_queries(2):
        large = client.get("/vendors/")
    assert len(small.context["vendors"]) == 2
    assert len(large.context["vendors"]) == 10


@pytest.mark.django_db
def test_detail_page_query_count_does_not_grow_with_products(client, django_assert_num_queries):
    v = _approved_vendor_with_stock(2)
    with django_assert_num_queries(3):
        client.get(f"/vendors/{v.slug}/")
    for _ in range(8):
        StockFactory(vendor=v)
    with django_assert_num_queries(3):
        response = client.get(f"/vendors/{v.slug}/")
    assert len(response.context["vendor"].stock_lines) == 10


# --- Applying to sell -------------------------------------------------------------------------


APPLY = {
    "name": "Mangwon Morning Cart",
    "phone": "010-5555-1234",
    "bio": "Yakult and coffee.",
    "home_lat": "37.5563",
    "home_lng": "126.9220",
}


@pytest.mark.django_db
def test_anonymous_apply_goes_to_login(client):
    response = client.get("/vendors/apply/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/vendors/apply/"


@pytest.mark.django_db
def test_a_customer_applies_and_becomes_a_pending_vendor_with_a_service_area(client, customer):
    # Given a logged-in customer on the apply page
    client.force_login(customer)
    assert client.get("/vendors/apply/").status_code == 200
    # When they apply
    response = client.post("/vendors/apply/", APPLY)
    # Then they are a PENDING vendor with a service area around home, sent to their dashboard
    assert response.status_code == 302
    assert response["Location"] == "/vendors/me/"
    vendor = Vendor.objects.get(user=customer)
    assert vendor.status == S.PENDING
    assert vendor.name == "Mangwon Morning Cart"
    assert vendor.slug.startswith("mangwon-morning-cart-")
    assert ServiceCell.objects.filter(vendor=vendor).count() == 7  # home cell and its ring
    assert vendor.home_cell
    # And the dashboard says they are waiting; the public can't see them yet
    dashboard = client.get("/vendors/me/")
    assert dashboard.status_code == 200
    assert "Awaiting approval" in dashboard.content.decode()
    assert client.get(f"/vendors/{vendor.slug}/").status_code == 404
    assert vendor not in client.get("/vendors/").context["vendors"]


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"home_lat": "91"}, "home_lat"),
        ({"home_lat": "-90.5"}, "home_lat"),
        ({"home_lng": "181"}, "home_lng"),
        ({"home_lng": "east"}, "home_lng"),
        ({"home_lat": ""}, "home_lat"),
        ({"name": ""}, "name"),
        ({"name": "x" * 81}, "name"),
    ],
)
@pytest.mark.django_db
def test_bad_application_shows_a_form_error_and_saves_nothing(client, customer, bad, field):
    client.force_login(customer)
    response = client.post("/vendors/apply/", {**APPLY, **bad})
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Vendor.objects.exists()
    assert not ServiceCell.objects.exists()


@pytest.mark.django_db
def test_applying_twice_is_refused(client, customer):
    # Given a customer who applied
    client.force_login(customer)
    client.post("/vendors/apply/", APPLY)
    vendor = Vendor.objects.get(user=customer)
    # When they try again
    response = client.post("/vendors/apply/", {**APPLY, "name": "Second cart"})
    # Then they are sent to their dashboard and still have the one application
    assert response.status_code == 302
    assert response["Location"] == "/vendors/me/"
    assert Vendor.objects.filter(user=customer).count() == 1
    vendor.refresh_from_db()
    assert vendor.name == "Mangwon Morning Cart"


@pytest.mark.django_db
def test_customer_dashboard_redirects_to_apply(client, customer):
    client.force_login(customer)
    response = client.get("/vendors/me/")
    assert response.status_code == 302
    assert response["Location"] == "/vendors/apply/"


# --- The vendor's stock page ------------------------------------------------------------------


def _post_data(page_response, new: dict[int, object], **override) -> dict:
    """The formset as the browser would send it back, with quantities changed per product id."""
    formset = page_response.context["formset"]
    data = {
        f"{formset.prefix}-TOTAL_FORMS": str(formset.total_form_count()),
        f"{formset.prefix}-INITIAL_FORMS": str(formset.initial_form_count()),
        f"{formset.prefix}-MIN_NUM_FORMS": "0",
        f"{formset.prefix}-MAX_NUM_FORMS": "1000",
    }
    for form in formset.forms:
        pid = form.initial["product_id"]
        data[f"{form.prefix}-product_id"] = str(pid)
        data[f"{form.prefix}-expected"] = str(form.initial["expected"])
        data[f"{form.prefix}-quantity"] = str(new.get(pid, form.initial["quantity"]))
    data.update(override)
    return data


def _quantities(vendor: Vendor) -> dict[int, int]:
    return dict(Stock.objects.filter(vendor=vendor).values_list("product_id", "quantity"))


@pytest.fixture
def cart(vendor):
    """A vendor with two products on the cart and one in the catalogue they don't carry."""
    a = StockFactory(vendor=vendor, quantity=3).product
    b = StockFactory(vendor=vendor, quantity=8).product
    c = ProductFactory()
    return vendor, a, b, c


@pytest.mark.django_db
def test_anonymous_stock_page_goes_to_login(client):
    response = client.get("/vendors/me/stock/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/vendors/me/stock/"


@pytest.mark.django_db
def test_a_customer_is_sent_to_apply_from_the_stock_page(client, customer):
    client.force_login(customer)
    for response in (client.get("/vendors/me/stock/"), client.post("/vendors/me/stock/", {})):
        assert response.status_code == 302
        assert response["Location"] == "/vendors/apply/"


@pytest.mark.django_db
def test_a_vendor_sees_only_their_own_stock(client, cart):
    # Given vendor A's cart and vendor B carrying the same products in other quantities
    vendor, a, b, c = cart
    other = VendorFactory()
    StockFactory(vendor=other, product=a, quantity=77)
    StockFactory(vendor=other, product=c, quantity=55)
    # When A opens the stock page
    client.force_login(vendor.user)
    response = client.get("/vendors/me/stock/")
    # Then every active product is listed with A's quantity (0 where A has none)
    assert response.status_code == 200
    shown = {f.initial["product_id"]: f.initial["quantity"] for f in response.context["formset"]}
    assert shown == {a.pk: 3, b.pk: 8, c.pk: 0}
    html = response.content.decode()
    assert 'value="77"' not in html and 'value="55"' not in html


@pytest.mark.django_db
def test_saving_the_stock_page_changes_the_quantities(client, cart):
    # Given a vendor on their stock page
    vendor, a, b, c = cart
    other = VendorFactory()
    StockFactory(vendor=other, product=a, quantity=77)
    client.force_login(vendor.user)
    page = client.get("/vendors/me/stock/")
    # When they change two quantities (one product new on the cart) and save
    response = client.post("/vendors/me/stock/", _post_data(page, {a.pk: 0, c.pk: 4}))
    # Then the cart holds the new quantities, the untouched one and the other vendor stay
    assert response.status_code == 302
    assert response["Location"] == "/vendors/me/stock/"
    assert _quantities(vendor) == {a.pk: 0, b.pk: 8, c.pk: 4}
    assert _quantities(other) == {a.pk: 77}
    assert any("Saved 2 change" in m for m in _messages(response))


@pytest.mark.django_db
def test_saving_without_changes_saves_nothing(client, cart):
    vendor, a, b, c = cart
    client.force_login(vendor.user)
    page = client.get("/vendors/me/stock/")
    response = client.post("/vendors/me/stock/", _post_data(page, {}))
    assert response.status_code == 302
    assert _quantities(vendor) == {a.pk: 3, b.pk: 8}
    assert any("Nothing changed" in m for m in _messages(response))


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("-1", id="negative"),
        pytest.param("abc", id="not-a-number"),
        pytest.param("2.5", id="fraction"),
        pytest.param("10001", id="huge"),
        pytest.param("99999999999999999999999", id="enormous"),
        pytest.param("", id="empty"),
    ],
)
@pytest.mark.django_db
def test_a_bad_quantity_rerenders_with_an_error_and_saves_none_of_the_batch(client, cart, bad):
    # Given a vendor changing one quantity validly and one badly
    vendor, a, b, c = cart
    client.force_login(vendor.user)
    page = client.get("/vendors/me/stock/")
    # When they save
    response = client.post("/vendors/me/stock/", _post_data(page, {a.pk: 6, b.pk: bad}))
    # Then the page comes back with an error on the bad row, and nothing was saved
    assert response.status_code == 200
    errors = {
        f.initial.get("product_id") or f.data[f"{f.prefix}-product_id"]: f.errors
        for f in response.context["formset"]
    }
    bad_row = [e for e in errors.values() if e]
    assert len(bad_row) == 1 and "quantity" in bad_row[0]
    assert _quantities(vendor) == {a.pk: 3, b.pk: 8}


@pytest.mark.parametrize("target", ["inactive", "unknown", "garbage"])
@pytest.mark.django_db
def test_a_tampered_product_id_is_refused_and_saves_none_of_the_batch(client, cart, target):
    # Given a vendor whose form was edited to point at a product not on sale
    vendor, a, b, c = cart
    inactive = ProductFactory(is_active=False)
    product_id = {"inactive": str(inactive.pk), "unknown": "987654321", "garbage": "x"}[target]
    client.force_login(vendor.user)
    page = client.get("/vendors/me/stock/")
    data = _post_data(page, {a.pk: 6, c.pk: 9})
    row = next(k for k, v in data.items() if k.endswith("-product_id") and v == str(c.pk))
    data[row] = product_id
    # When they save
    response = client.post("/vendors/me/stock/", data)
    # Then the page comes back with an error and nothing of the batch was saved
    assert response.status_code == 200
    formset = response.context["formset"]
    assert formset.non_form_errors() or any(f.errors for f in formset)
    assert _quantities(vendor) == {a.pk: 3, b.pk: 8}
    assert not Stock.objects.filter(product=inactive).exists()


@pytest.mark.django_db
def test_a_duplicated_product_row_is_refused(client, cart):
    vendor, a, b, c = cart
    client.force_login(vendor.user)
    page = client.get("/vendors/me/stock/")
    data = _post_data(page, {a.pk: 6, c.pk: 9})
    row = next(k for k, v in data.items() if k.endswith("-product_id") and v == str(c.pk))
    data[row] = str(a.pk)
    response = client.post("/vendors/me/stock/", data)
    assert response.status_code == 200
    assert response.context["formset"].non_form_errors()
    assert _quantities(vendor) == {a.pk: 3, b.pk: 8}


@pytest.mark.django_db
def test_stale_stock_gives_a_clear_message_and_saves_nothing(client, cart):
    # Given a vendor who opened the stock page
    vendor, a, b, c = cart
    client.force_login(vendor.user)
    page = client.get("/vendors/me/stock/")
    # And meanwhile an order took 2 units of b (8 -> 6)
    assert stock_adjust(stock_id=Stock.objects.get(vendor=vendor, product=b).pk, delta=-2)
    # When the vendor saves changes to a (still as seen) and b (now stale)
    response = client.post(
        "/vendors/me/stock/", _post_data(page, {a.pk: 10, b.pk: 20}), follow=True
    )
    # Then they are told b changed and how many are left, and neither change was saved
    assert response.status_code == 200
    messages = _messages(response)
    assert any("changed meanwhile" in m and "6 left" in m and b.name_en in m for m in messages), (
        messages
    )
    assert _quantities(vendor) == {a.pk: 3, b.pk: 6}
    # And the page they land on shows the current numbers to start again from
    shown = {f.initial["product_id"]: f.initial["quantity"] for f in response.context["formset"]}
    assert shown[b.pk] == 6


@pytest.mark.parametrize("status", [S.SUSPENDED, S.REJECTED])
@pytest.mark.django_db
def test_a_suspended_or_rejected_vendor_cannot_change_stock(client, cart, status):
    vendor, a, b, c = cart
    Vendor.objects.filter(pk=vendor.pk).update(status=status)
    client.force_login(vendor.user)
    page = client.get("/vendors/me/stock/")
    response = client.post("/vendors/me/stock/", _post_data(page, {a.pk: 10}))
    assert response.status_code == 200
    assert response.context["formset"].non_form_errors()
    assert _quantities(vendor) == {a.pk: 3, b.pk: 8}


@pytest.mark.django_db
def test_a_pending_vendor_can_already_stock_the_cart(client):
    vendor = VendorFactory(status=S.PENDING)
    CustomerProfileFactory(user=vendor.user)
    product = ProductFactory()
    client.force_login(vendor.user)
    page = client.get("/vendors/me/stock/")
    response = client.post("/vendors/me/stock/", _post_data(page, {product.pk: 12}))
    assert response.status_code == 302
    assert _quantities(vendor) == {product.pk: 12}


@pytest.mark.django_db
def test_a_vendor_can_lower_stock_that_released_units_pushed_above_the_maximum(client, cart):
    # Given a row above MAX_STOCK (a cancelled order's units went back onto a full cart)
    vendor, a, b, c = cart
    Stock.objects.filter(vendor=vendor, product=a).update(quantity=MAX_STOCK + 1)
    client.force_login(vendor.user)
    page = client.get("/vendors/me/stock/")
    # When the vendor lowers it to 500 and saves
    response = client.post("/vendors/me/stock/", _post_data(page, {a.pk: 500}))
    # Then it is saved
    assert response.status_code == 302
    assert response["Location"] == "/vendors/me/stock/"
    assert _quantities(vendor) == {a.pk: 500, b.pk: 8}


@pytest.mark.django_db
def test_a_row_left_above_the_maximum_does_not_block_saving_the_others(client, cart):
    # Given a row above MAX_STOCK
    vendor, a, b, c = cart
    Stock.objects.filter(vendor=vendor, product=a).update(quantity=MAX_STOCK + 1)
    client.force_login(vendor.user)
    page = client.get("/vendors/me/stock/")
    # When the vendor changes another row and sends that one back as it was
    response = client.post("/vendors/me/stock/", _post_data(page, {b.pk: 2}))
    # Then the change is saved and the untouched row stays as it was
    assert response.status_code == 302
    assert _quantities(vendor) == {a.pk: MAX_STOCK + 1, b.pk: 2}


@pytest.mark.django_db
def test_raising_a_row_above_the_maximum_is_still_refused(client, cart):
    # Given a row above MAX_STOCK
    vendor, a, b, c = cart
    Stock.objects.filter(vendor=vendor, product=a).update(quantity=MAX_STOCK + 1)
    client.force_login(vendor.user)
    page = client.get("/vendors/me/stock/")
    # When the vendor changes it to another quantity above MAX_STOCK
    response = client.post("/vendors/me/stock/", _post_data(page, {a.pk: MAX_STOCK + 2}))
    # Then the page comes back with the limit on that row, and nothing was saved
    assert response.status_code == 200
    errors = {
        int(f.data[f"{f.prefix}-product_id"]): f.errors.get_json_data()
        for f in response.context["formset"]
        if f.errors
    }
    assert errors == {
        a.pk: {"quantity": [{"message": "Quantity can't be more than 10000.", "code": ""}]}
    }
    assert _quantities(vendor) == {a.pk: MAX_STOCK + 1, b.pk: 8}
