"""The vendor's lots on the stock page and the API, the customer's "fresh today", staff's waste
report."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import ProductFactory, StaffFactory, VendorFactory, stock_put
from vendors.models import LotAdjustment, Stock, StockLot, Vendor
from vendors.services import korea_today, lot_load, lot_write_off


def _expired_lot(vendor, product, quantity=4) -> StockLot:
    stock_put(vendor=vendor, product=product, quantity=quantity)
    lot = StockLot.objects.get(vendor=vendor, product=product)
    StockLot.objects.filter(pk=lot.pk).update(sell_by=timezone.now() - timedelta(minutes=1))
    return lot


@pytest.mark.django_db
def test_the_stock_page_prompts_to_take_an_expired_lot_off_in_korean(vendor):
    product = ProductFactory(name_ko="발효유")
    lot = _expired_lot(vendor, product)
    client = Client(headers={"accept-language": "ko"})
    client.force_login(vendor.user)
    html = client.get("/vendors/me/stock/").content.decode()
    assert 'class="lots-expired"' in html and f'data-lot="{lot.pk}"' in html
    assert "발효유" in html  # the new msgids' Korean comes with locale/ (I16_LOTS_KO.md)
    # When the vendor takes it off
    response = client.post(
        "/vendors/me/stock/lots/", {"action": "write_off", "lot": lot.pk, "reason": "expired"}
    )
    assert response.status_code == 302 and response["Location"] == "/vendors/me/stock/"
    assert Stock.objects.get(vendor=vendor, product=product).quantity == 0
    assert LotAdjustment.objects.get().reason == "expired"
    assert 'class="lots-expired"' not in client.get("/vendors/me/stock/").content.decode()


@pytest.mark.django_db
def test_the_stock_page_loads_and_corrects_lots(vendor):
    product = ProductFactory()
    client = Client(headers={"accept-language": "en"})
    client.force_login(vendor.user)
    day = (korea_today() + timedelta(days=2)).isoformat()
    client.post(
        "/vendors/me/stock/lots/",
        {"action": "load", "product": product.pk, "quantity": 6, "expires_on": day},
    )
    lot = StockLot.objects.get(vendor=vendor)
    assert lot.quantity == 6 and lot.best_before is None
    client.post("/vendors/me/stock/lots/", {"action": "correct", "lot": lot.pk, "quantity": 4})
    assert Stock.objects.get(vendor=vendor, product=product).quantity == 4
    # a past expiry is refused with a message, nothing loaded
    past = (korea_today() - timedelta(days=1)).isoformat()
    response = client.post(
        "/vendors/me/stock/lots/",
        {"action": "load", "product": product.pk, "quantity": 2, "expires_on": past},
        follow=True,
    )
    assert "This date has passed" in response.content.decode()
    assert StockLot.objects.count() == 1
    # someone else's lot is refused
    other = lot_load(
        vendor=(v := VendorFactory()),
        actor=v.user,
        product_id=product.pk,
        quantity=1,
        expires_on=korea_today(),
    )
    response = client.post(
        "/vendors/me/stock/lots/",
        {"action": "write_off", "lot": other.pk, "reason": "damaged"},
        follow=True,
    )
    assert "That lot is not on your cart." in response.content.decode()
    other.refresh_from_db()
    assert other.quantity == 1


@pytest.mark.django_db
def test_the_customer_page_shows_fresh_today_and_hides_expired_units(client):
    vendor = VendorFactory(status=Vendor.Status.APPROVED)
    fresh, old, stale = ProductFactory(sku="fresh"), ProductFactory(sku="old"), ProductFactory()
    lot_load(
        vendor=vendor, actor=vendor.user, product_id=fresh.pk, quantity=3, expires_on=korea_today()
    )
    stock_put(vendor=vendor, product=old, quantity=2, loaded_at=timezone.now() - timedelta(days=2))
    _expired_lot(vendor, stale, 5)
    response = client.get(f"/vendors/{vendor.slug}/")
    html = response.content.decode()
    assert 'data-testid="fresh-fresh"' in html and 'data-testid="fresh-old"' not in html
    lines = {line.product_id: line.sellable for line in response.context["vendor"].stock_lines}
    assert lines == {fresh.pk: 3, old.pk: 2, stale.pk: 0}
    api = client.get(f"/api/vendors/{vendor.slug}/").json()
    by_sku = {line["product"]["sku"]: line for line in api["stock"]}
    assert by_sku["fresh"]["fresh_today"] is True and by_sku["old"]["fresh_today"] is False
    assert by_sku[stale.sku]["quantity"] == 0


@pytest.mark.django_db
def test_the_lots_api_does_what_the_page_does(api, vendor):
    product = ProductFactory()
    api.force_authenticate(vendor.user)
    day = (korea_today() + timedelta(days=1)).isoformat()
    created = api.post(
        "/api/vendors/me/lots/",
        {"product_id": product.pk, "quantity": 5, "expires_on": day},
        format="json",
    )
    assert created.status_code == 201, created.content
    lot_id = created.json()["id"]
    assert api.get("/api/vendors/me/lots/").json()[0]["quantity"] == 5
    corrected = api.post(f"/api/vendors/me/lots/{lot_id}/correct/", {"quantity": 3}, format="json")
    assert corrected.status_code == 200 and corrected.json()["quantity"] == 3
    too_many = api.post(
        f"/api/vendors/me/lots/{lot_id}/write-off/", {"reason": "damaged", "quantity": 9}
    )
    assert too_many.status_code == 409
    gone = api.post(f"/api/vendors/me/lots/{lot_id}/write-off/", {"reason": "recall"})
    assert gone.status_code == 200 and gone.json()["quantity"] == 0
    assert (
        api.post("/api/vendors/me/lots/999999/write-off/", {"reason": "other"}).status_code == 404
    )
    bad = api.post(
        "/api/vendors/me/lots/",
        {"product_id": product.pk, "quantity": 5, "expires_on": "2000-01-01"},
        format="json",
    )
    assert bad.status_code == 400
    assert Stock.objects.get(vendor=vendor, product=product).quantity == 0


@pytest.mark.django_db
def test_staff_see_waste_by_vendor_product_and_reason(vendor):
    product = ProductFactory(name_ko="우유", price=1500)
    lot = lot_load(
        vendor=vendor,
        actor=vendor.user,
        product_id=product.pk,
        quantity=9,
        expires_on=korea_today(),
    )
    lot_write_off(lot_id=lot.pk, vendor=vendor, actor=vendor.user, reason="damaged", quantity=2)
    lot_write_off(lot_id=lot.pk, vendor=vendor, actor=vendor.user, reason="damaged", quantity=1)
    lot_write_off(lot_id=lot.pk, vendor=vendor, actor=vendor.user, reason="recall", quantity=4)
    client = Client(headers={"accept-language": "en"})
    client.force_login(StaffFactory())
    response = client.get("/admin/vendors/wasterecord/")
    summary = {
        (r["lot__product__name_ko"], r["reason"]): (r["units"], r["value"])
        for r in response.context["waste_summary"]
    }
    assert summary == {("우유", "damaged"): (3, 4500), ("우유", "recall"): (4, 6000)}
    filtered = client.get("/admin/vendors/wasterecord/", {"reason__exact": "recall"})
    assert [r["units"] for r in filtered.context["waste_summary"]] == [4]
