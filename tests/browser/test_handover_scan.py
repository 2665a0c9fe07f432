"""Hand-over by QR in Chromium on phones (issue 16, items 3 and 5): the customer's order page shows
the QR beside the code; the vendor's scanner reads it through the phone's camera, which here is
Chromium's fake camera playing a picture of the QR exactly as the customer's page drew it; the
order is handed over once, a second scan of the same QR says it already was, and the typed
fallback hands over another order. Screenshots scan-<lang>-01 (the customer's QR), -02 (the
scanner, camera on), -03 (handed over), -04 (the replay refused), -05 (typed fallback).
"""

import io
import shutil
from pathlib import Path

import pytest
from django.db import connections
from django.test import Client
from django.utils import translation
from django.utils.translation import gettext
from PIL import Image
from playwright.sync_api import expect

from orders.models import Order, OrderEvent, Status
from orders.services import order_accept
from tests import factories
from tests.browser.conftest import CHROMIUM_ARGS, PHONE
from tests.orders.conftest import open_shop, placed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FRAME = (640, 480)


def write_y4m(path: Path, picture: Image.Image) -> None:
    """One 4:2:0 frame of `picture` (centred on white) as a Y4M file, which Chromium's fake camera
    plays in a loop."""
    frame = Image.new("RGB", FRAME, "white")
    picture = picture.convert("RGB")
    picture.thumbnail((FRAME[1] - 40, FRAME[1] - 40))
    frame.paste(picture, ((FRAME[0] - picture.width) // 2, (FRAME[1] - picture.height) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    half = (FRAME[0] // 2, FRAME[1] // 2)
    header = f"YUV4MPEG2 W{FRAME[0]} H{FRAME[1]} F10:1 Ip A1:1 C420jpeg\n".encode()
    planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    path.write_bytes(header + b"FRAME\n" + planes)


@pytest.fixture
def camera(tmp_path) -> Path:
    """The file the fake camera plays: a blank frame until the test puts the QR in it."""
    path = tmp_path / "camera.y4m"
    write_y4m(path, Image.new("RGB", (10, 10), "white"))
    return path


@pytest.fixture
def browser(monkeypatch, camera):
    """Chromium with a fake camera (the file above) that every page may use without asking."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
    ]
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=shutil.which("chromium"), args=args)
        try:
            yield chromium
        finally:
            chromium.close()
            connections.close_all()


def signed_in(page, user, base_url: str, language: str) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {"name": "django_language", "value": language, "url": base_url},
            {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base_url},
        ]
    )


def _expected_refusal(new_page) -> None:
    """The replayed scan answers 409, as it should (the response, and Chromium's console line
    about it): not a fault of the page. Anything else stays a problem."""
    refused = [
        p for p in new_page.problems if "409" in p and p.rstrip(")").endswith("/vendor/scan/")
    ]
    assert len(refused) == 2, new_page.problems
    for problem in refused:
        new_page.problems.remove(problem)


@pytest.mark.parametrize("language", ["ko", "en"])
def test_the_vendor_scans_the_customers_qr_and_hands_over_once(
    live_server, new_page, shot, assert_accessible, camera, language
):
    # Given a vendor's accepted delivery order, and another one to hand over by typing
    vendor = factories.VendorFactory(name="프레시 카트 망원")
    factories.CustomerProfileFactory(user=vendor.user)
    shop = open_shop(vendor)
    buyer = factories.CustomerProfileFactory(user__name="김하늘")
    factories.AddressFactory(customer=buyer, is_default=True)
    orders = [placed(shop, buyer.user, fulfilment="delivery") for _ in range(2)]
    for order in orders:
        order_accept(order_id=order.pk, vendor=vendor, eta_minutes=10)
    scanned, typed = orders
    base = live_server.url
    with translation.override(language):
        done_text = gettext("Order #%(n)s handed over") % {"n": scanned.pk}
        typed_text = gettext("Order #%(n)s handed over") % {"n": typed.pk}
        again_text = gettext("Order #%(n)s was already handed over. Nothing was done again.") % {
            "n": scanned.pk
        }
        scan_tab = gettext("Scan QR")
        hand_over = gettext("Hand over")

    # When the customer opens the order on their phone: the QR beside the code
    customer_page = new_page(**PHONE, locale=f"{language}-KR")
    signed_in(customer_page, buyer.user, base, language)
    customer_page.goto(f"{base}/orders/{scanned.pk}/")
    qr = customer_page.get_by_test_id("handover-qr").locator("svg")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] >= 240  # big enough to scan at arm's length
    expect(customer_page.get_by_test_id("handover-code")).to_have_text(scanned.handover_code)
    assert_accessible(customer_page)
    shot(customer_page, f"scan-{language}-01-customer-qr")
    # ...and the vendor's camera sees that QR as the customer's screen shows it
    write_y4m(camera, Image.open(io.BytesIO(qr.screenshot())))

    # Then the vendor opens the scanner from the inbox, and the camera reads the QR
    page = new_page(**PHONE, locale=f"{language}-KR", permissions=["camera"])
    signed_in(page, vendor.user, base, language)
    page.goto(f"{base}/orders/vendor/")
    page.get_by_role("link", name=scan_tab).click()
    expect(page).to_have_url(f"{base}/orders/vendor/scan/")
    outcome = page.get_by_test_id("scan-outcome")
    expect(outcome).to_have_attribute("data-outcome", "ok", timeout=20_000)
    expect(outcome).to_contain_text(done_text)
    expect(outcome).to_contain_text(
        shop.yakult.name_ko if language == "ko" else shop.yakult.name_en
    )
    assert Order.objects.get(pk=scanned.pk).status == Status.HANDED_OVER
    assert_accessible(page)
    shot(page, f"scan-{language}-03-handed-over")

    # When the vendor scans the same QR again: it says so, and nothing happens twice
    page.locator("#scan-start").click()
    expect(page.locator("#scan-view")).to_be_visible()
    shot(page, f"scan-{language}-02-scanner")
    expect(outcome).to_have_attribute("data-outcome", "error", timeout=20_000)
    expect(outcome).to_contain_text(again_text)
    _expected_refusal(new_page)
    assert OrderEvent.objects.filter(order=scanned, to_status=Status.HANDED_OVER).count() == 1
    shot(page, f"scan-{language}-04-replay-refused")

    # And the typed fallback hands over the other order
    page.locator("#scan-order").fill(str(typed.pk))
    page.locator("#scan-code").fill(typed.handover_code)
    page.locator("form[data-scan-form]").first.get_by_role("button", name=hand_over).click()
    expect(outcome).to_have_attribute("data-outcome", "ok")
    expect(outcome).to_contain_text(typed_text)
    assert Order.objects.get(pk=typed.pk).status == Status.HANDED_OVER
    assert_accessible(page)
    shot(page, f"scan-{language}-05-typed")
