"""A pickup point's clerk on a phone: the orders waiting at the point, a wrong code refused, the
right one hands the order over (it moves to the collections); the customer's order page says to
show the code at that point. In Korean and in English; screenshots in
test-artifacts/screenshots/point-*."""

import pytest
from playwright.sync_api import expect

from orders.models import Order, Status
from tests.browser import conftest as browser_fixtures
from tests.browser.conftest import PHONE
from tests.browser.test_live_map import log_in
from tests.orders.factories import always_open_point
from tests.partners.factories import PointStaffFactory
from tests.partners.test_api import ready_pickup_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
KOREAN = {"locale": "ko-KR"}
browser = browser_fixtures.browser
new_page = browser_fixtures.new_page
shot = browser_fixtures.shot
assert_accessible = browser_fixtures.assert_accessible
axe = browser_fixtures.axe


def use_language(page, base: str, language: str) -> None:
    page.goto(f"{base}/vendors/")
    if language == "en":
        page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", language)


@pytest.mark.parametrize("language", ["ko", "en"])
def test_the_clerk_hands_an_order_over_with_the_customers_code(
    live_server, new_page, shot, assert_accessible, axe, language
):
    base = live_server.url
    point = always_open_point(name="합정역 7번 출구 편의점")
    first, second = ready_pickup_order(point), ready_pickup_order(point)
    customer = first.customer.user
    customer.name = "김민지"
    customer.save()
    clerk = PointStaffFactory(pickup_point=point).user

    # The customer's order page says where to show the code, with the point's hours
    mine = new_page(**PHONE, **KOREAN)
    log_in(mine, base, customer.email)
    use_language(mine, base, language)
    mine.goto(f"{base}/orders/{first.pk}/")
    expect(mine.locator(".handover")).to_contain_text(point.name)
    expect(mine.get_by_test_id("pickup-point")).to_contain_text("00:00–23:59")
    assert_accessible(mine)
    shot(mine, f"point-01-customer-order-{language}")

    # The clerk opens the point's page on the phone: both orders wait there
    page = new_page(**PHONE, **KOREAN)
    log_in(page, base, clerk.email)
    use_language(page, base, language)
    page.goto(f"{base}/partner/point/")
    expect(page.get_by_role("heading", level=1)).to_have_text(point.name)
    expect(page.get_by_test_id("waiting-count")).to_have_text("2")
    card = page.get_by_test_id(f"waiting-{first.pk}")
    expect(card).to_contain_text("민지")
    expect(card).to_contain_text("× 2")
    assert_accessible(page)
    assert axe(page) == []
    shot(page, f"point-02-waiting-{language}")

    # A wrong code is refused, clearly, and the order still waits
    wrong = "0000" if first.handover_code != "0000" else "1111"
    card.locator("input[name=code]").fill(wrong)
    card.get_by_role("button").click()
    expect(page.locator(".msg-error")).to_contain_text(f"#{first.pk}")
    assert Order.objects.get(pk=first.pk).status == Status.READY
    shot(page, f"point-03-wrong-code-{language}")

    # The right code hands it over: it leaves the waiting list for the collections
    card = page.get_by_test_id(f"waiting-{first.pk}")
    card.locator("input[name=code]").fill(first.handover_code)
    card.get_by_role("button").click()
    expect(page.locator(".msg-success")).to_contain_text(f"#{first.pk}")
    expect(page.get_by_test_id(f"waiting-{first.pk}")).to_have_count(0)
    expect(page.get_by_test_id(f"collected-{first.pk}")).to_be_visible()
    expect(page.get_by_test_id("waiting-count")).to_have_text("1")
    expect(page.get_by_test_id(f"waiting-{second.pk}")).to_be_visible()
    assert Order.objects.get(pk=first.pk).status in (Status.HANDED_OVER, Status.COMPLETED)
    assert_accessible(page)
    assert axe(page) == []
    shot(page, f"point-04-handed-over-{language}")
