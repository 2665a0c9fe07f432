"""A customer watches a cart while its vendor recounts the stock: Chromium, Korean UI by default,
English by the language selector. Screenshots of every step land in test-artifacts/screenshots/."""

import re

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import DESKTOP, PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KOREAN = {"locale": "ko-KR"}


def log_in(page, base_url: str, email: str) -> None:
    """Log in through the login page, in Korean."""
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("이메일", exact=True).fill(email)
    page.get_by_label("비밀번호").fill(factories.PASSWORD)
    page.get_by_role("button", name="로그인", exact=True).click()


def test_customer_sees_the_quantity_the_vendor_saves(
    live_server, new_page, shot, assert_accessible
):
    # Given an approved vendor with 12 Yakult Light and no cold brew on the cart, and a customer
    vendor = factories.VendorFactory(
        name="프레시 카트 망원", bio="망원시장 앞에서 아침 7시부터 돌아요."
    )
    factories.CustomerProfileFactory(user=vendor.user)
    yakult = factories.ProductFactory(
        sku="yakult-light", name_ko="야쿠르트 라이트", name_en="Yakult Light", price=1500
    )
    brew = factories.ProductFactory(
        sku="cold-brew", name_ko="콜드브루 커피", name_en="Cold brew coffee", price=2500
    )
    factories.StockFactory(vendor=vendor, product=yakult, quantity=12)
    factories.StockFactory(vendor=vendor, product=brew, quantity=0)
    customer = factories.CustomerProfileFactory().user
    base = live_server.url

    # When the customer logs in on a phone; the UI is Korean by default
    page = new_page(**PHONE, **KOREAN)
    page.goto(f"{base}/accounts/login/")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.get_by_role("heading", level=1)).to_have_text("로그인")
    assert_accessible(page)
    shot(page, "01-customer-login-ko")
    log_in(page, base, customer.email)
    expect(page.get_by_role("button", name="로그아웃")).to_be_visible()

    # ... opens the list of carts from the main menu
    page.get_by_role("navigation", name="주 메뉴").get_by_role(
        "link", name="카트", exact=True
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("내 주변 카트")
    card = page.get_by_role("link", name=re.compile("프레시 카트 망원"))
    expect(card).to_contain_text("상품 1종 판매 중")
    assert_accessible(page)
    shot(page, "02-customer-vendor-list")

    # ... and opens the vendor: 12 Yakult Light left, the cold brew sold out
    card.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("프레시 카트 망원")
    expect(page.get_by_test_id("qty-yakult-light")).to_have_text("12개 남음")
    expect(page.get_by_test_id("qty-cold-brew")).to_have_text("품절")
    expect(page.locator("[data-sku=yakult-light] .price")).to_have_text("₩1,500")
    assert_accessible(page)
    shot(page, "03-customer-vendor-detail")

    # Meanwhile the vendor, in another browser, logs in and opens the stock page
    vpage = new_page(**DESKTOP, **KOREAN)
    log_in(vpage, base, vendor.user.email)
    vpage.goto(f"{base}/vendors/me/stock/")
    expect(vpage.get_by_role("heading", level=1)).to_have_text("내 카트 재고")
    quantity = vpage.get_by_label("야쿠르트 라이트")
    expect(quantity).to_have_value("12")
    assert_accessible(vpage)
    shot(vpage, "04-vendor-stock")

    # ... a typo is refused with a clear message next to the field, nothing is saved
    quantity.fill("-3")
    vpage.get_by_role("button", name="재고 저장").click()
    expect(vpage.get_by_role("alert").filter(has_text="고쳐야 할 수량이 있어요")).to_be_visible()
    expect(quantity).to_have_attribute("aria-invalid", "true")
    expect(quantity).to_have_accessible_description("수량은 0보다 작을 수 없어요.")
    assert_accessible(vpage)
    shot(vpage, "05-vendor-stock-error")

    # ... then sets 7 and saves
    quantity.fill("7")
    vpage.get_by_role("button", name="재고 저장").click()
    expect(vpage.get_by_role("status")).to_contain_text("카트 변경 사항 1건을 저장했어요.")
    expect(vpage.get_by_label("야쿠르트 라이트")).to_have_value("7")
    assert_accessible(vpage)
    shot(vpage, "06-vendor-stock-saved")

    # Then the customer reloads and sees 7 left
    page.reload()
    expect(page.get_by_test_id("qty-yakult-light")).to_have_text("7개 남음")
    shot(page, "07-customer-sees-new-quantity")

    # ... and switching the language to English keeps them on the page, now in English
    page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("프레시 카트 망원")
    expect(page.get_by_role("heading", level=2)).to_have_text("On the cart now")
    expect(page.get_by_test_id("qty-yakult-light")).to_have_text("7 left")
    expect(page.get_by_test_id("qty-cold-brew")).to_have_text("Sold out")
    expect(page.locator("[data-sku=yakult-light] .product-name")).to_have_text("Yakult Light")
    expect(
        page.get_by_role("group", name="Language").get_by_role("button", name="English")
    ).to_have_attribute("aria-current", "true")
    assert_accessible(page)
    shot(page, "08-customer-english")


def test_wrong_password_and_no_carts_are_explained(live_server, new_page, shot, assert_accessible):
    # Given a customer and no vendor selling
    customer = factories.CustomerProfileFactory().user
    page = new_page(**PHONE, **KOREAN)

    # When they get the password wrong, the form says so and keeps the address they typed
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("이메일", exact=True).fill(customer.email)
    page.get_by_label("비밀번호").fill("not-the-password")
    page.get_by_role("button", name="로그인", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("비밀번호")
    expect(page.get_by_label("이메일", exact=True)).to_have_value(customer.email)
    assert_accessible(page)
    shot(page, "09-login-error")

    # Then the list of carts tells them nobody is selling yet, instead of showing nothing
    page.goto(f"{live_server.url}/vendors/")
    expect(page.locator(".empty-state")).to_contain_text("지금 판매 중인 카트가 없어요")
    assert_accessible(page)
    shot(page, "10-empty-vendor-list")
