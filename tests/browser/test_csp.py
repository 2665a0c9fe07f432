"""Pages work under the Content-Security-Policy in Chromium: the pages no other browser test opens
(sign-in forms, the API docs' Swagger UI, Django admin, the sandbox card page, the staff money
dashboard) load and run with no violation; and a violation does fail a browser test (the watch in
tests/browser/conftest.py's `new_page`, which every browser test uses)."""

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import DESKTOP, PHONE
from tests.payments.factories import SandboxIntentFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_violation_is_caught(live_server, new_page):
    # Given a page under the policy
    page = new_page(**PHONE)
    page.goto(f"{live_server.url}/accounts/login/")
    # When something on it tries an inline style attribute, an inline script and an outside image
    page.evaluate(
        """() => {
      document.body.insertAdjacentHTML("beforeend", '<p style="color: red">x</p>');
      const s = document.createElement("script"); s.textContent = "window.ran = 1";
      document.body.append(s);
      const i = new Image(); i.src = "https://example.com/pixel.png"; document.body.append(i);
    }"""
    )
    page.wait_for_timeout(300)
    # Then each is reported as a problem of the test (cleared here, else the test would fail)
    found = "\n".join(new_page.problems)
    assert "style-src-attr" in found
    assert "script-src-elem" in found
    assert "img-src" in found and "example.com" in found
    assert page.evaluate("() => window.ran") is None
    new_page.problems.clear()


def test_the_sign_in_pages_work_under_the_policy(live_server, new_page, shot):
    base = live_server.url
    user = factories.UserFactory()
    page = new_page(**PHONE)
    for path in ("/accounts/signup/", "/accounts/password_reset/", "/accounts/login/"):
        response = page.goto(f"{base}{path}")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    page.locator("#id_username").fill(user.email)
    page.locator("#id_password").fill(factories.PASSWORD)
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    shot(page, "csp-after-login")


def test_the_api_docs_render_under_the_policy(live_server, new_page, shot):
    page = new_page(**DESKTOP)
    page.goto(f"{live_server.url}/api/docs/")
    # Swagger UI (drf-spectacular-sidecar) builds the page from the schema it fetches
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("O2O", timeout=15_000)
    expect(page.locator(".opblock").first).to_be_visible()
    shot(page, "csp-api-docs")


def test_django_admin_works_under_the_policy(live_server, new_page, shot):
    staff = factories.StaffFactory(is_superuser=True)
    vendor = factories.VendorFactory()
    page = new_page(**DESKTOP)
    page.goto(f"{live_server.url}/admin/login/")
    page.locator("#id_username").fill(staff.email)
    page.locator("#id_password").fill(factories.PASSWORD)
    page.locator("input[type=submit]").click()
    expect(page.locator("#site-name")).to_be_visible()
    # A change form (its JavaScript: calendars, related-object popups, collapsible fieldsets)
    page.goto(f"{live_server.url}/admin/vendors/vendor/{vendor.pk}/change/")
    expect(page.locator("#content-main form")).to_be_visible()
    # django-celery-beat's task form (its own inline script, given the nonce by our template)
    page.goto(f"{live_server.url}/admin/django_celery_beat/periodictask/add/")
    expect(page.locator("#periodictask_form")).to_be_visible()
    expect(page.locator(".field-crontab_translation")).to_be_hidden()
    # A change list with its actions bar
    page.goto(f"{live_server.url}/admin/vendors/vendor/")
    expect(page.locator("#changelist")).to_be_visible()
    shot(page, "csp-admin-changelist")
    # The staff money dashboard (its own inline <style>, with the nonce)
    page.goto(f"{live_server.url}/payments/staff/money/")
    expect(page.locator("form.money-range")).to_be_visible()
    assert page.locator("form.money-range").evaluate("el => getComputedStyle(el).display") == "flex"
    shot(page, "csp-money-dashboard")


def test_the_sandbox_card_page_works_under_the_policy(live_server, new_page, shot):
    # Given an intent whose shop is at another origin than the card page
    intent = SandboxIntentFactory(return_url="http://shop.example.test/orders/7/paid/")
    page = new_page(**PHONE)
    response = page.goto(f"{live_server.url}/sandbox/pay/{intent.id}/")
    # The page's form may end at the shop: form-action names its origin, and nothing else
    policy = response.headers["content-security-policy"]
    assert "form-action 'self' http://shop.example.test" in policy
    # Its inline <style> applies (nonce)
    assert page.locator("body").evaluate("el => getComputedStyle(el).margin") == "0px"
    shot(page, "csp-sandbox-card-page")
