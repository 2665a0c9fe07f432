"""Every page carries a Content-Security-Policy, and every inline <script> and <style> on it the
nonce that policy names (so the browser runs it); no page has a style="" or on*="" attribute,
which the policy would block. (That the pages also *work* under it is shown in Chromium:
tests/browser/test_csp.py and every other browser test, which fail on any violation.)"""

import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from tests import factories
from tests.orders.factories import OrderFactory
from tests.payments.factories import SandboxIntentFactory

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)([^>]*)>", re.I)
INLINE_STYLE = re.compile(r"<style([^>]*)>", re.I)
NONCE_ATTR = re.compile(r'\bnonce="([^"]*)"')
# An inline style attribute or event handler on an element (not text inside a <script>).
BLOCKED_ATTR = re.compile(r"<[a-z][^<>]*\s(style|on[a-z]+)=[\"']", re.I)


def policy_of(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


def assert_under_policy(response, path: str) -> None:
    assert response.status_code in (200, 429), (path, response.status_code)
    policy = policy_of(response)
    assert policy["default-src"] == ["'self'"], path
    assert policy["frame-ancestors"] == ["'none'"], path
    assert policy["object-src"] == ["'none'"], path
    assert "'unsafe-inline'" not in policy["script-src"] + policy["style-src"], path
    html = response.content.decode()
    nonces = {v[len("'nonce-") : -1] for v in policy["script-src"] if v.startswith("'nonce-")}
    inline = [
        attrs
        for attrs in INLINE_SCRIPT.findall(html)
        if "application/json" not in attrs  # data (json_script), never run
    ] + INLINE_STYLE.findall(html)
    for attrs in inline:
        nonce = NONCE_ATTR.search(attrs)
        assert nonce and nonce.group(1) in nonces, (path, attrs, nonces)
    if inline:
        assert len(nonces) == 1 and "'nonce-" in " ".join(policy["style-src"]), path
    assert not BLOCKED_ATTR.search(html), (path, BLOCKED_ATTR.search(html).group(0))


def _get(client: Client, path: str):
    response = client.get(path)
    assert_under_policy(response, path)
    return response


def test_public_and_sign_in_pages():
    vendor = factories.VendorFactory()
    client = Client()
    for path in (
        "/map/",
        "/vendors/",
        f"/vendors/{vendor.slug}/",
        "/accounts/login/",
        "/accounts/signup/",
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
        "/api/docs/",
    ):
        _get(client, path)


def test_two_responses_get_two_nonces():
    first = policy_of(Client().get("/api/docs/"))["script-src"]
    second = policy_of(Client().get("/api/docs/"))["script-src"]
    assert first != second


def test_customer_and_vendor_pages():
    vendor = factories.VendorFactory()
    factories.VendorPositionFactory(vendor=vendor)
    order = OrderFactory(vendor=vendor)
    customer = Client()
    customer.force_login(order.customer.user)
    for path in (
        "/orders/",
        "/orders/cart/",
        f"/orders/{order.pk}/",
        f"/orders/{order.pk}/receipt/",
        "/accounts/password_change/",
    ):
        _get(customer, path)
    seller = Client()
    seller.force_login(vendor.user)
    for path in ("/shift/", "/vendors/me/", "/vendors/me/stock/", "/orders/vendor/"):
        _get(seller, path)
    for path in ("/payments/earnings/", "/payments/statements/", "/orders/vendor/history/"):
        _get(seller, path)


def test_staff_pages_and_every_admin_list_and_form():
    staff = factories.StaffFactory(is_superuser=True)
    client = Client()
    client.force_login(staff)
    _get(client, "/admin/")
    _get(client, "/payments/staff/money/")
    _get(client, "/payments/staff/adjustments/new/")
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        _get(client, reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        if model_admin.has_add_permission(type("R", (), {"user": staff})()):
            _get(client, reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))


def test_the_sandbox_card_page_allows_its_shop_as_a_form_target():
    intent = SandboxIntentFactory(return_url="https://shop.example/orders/7/paid/?x=1")
    response = _get(Client(), f"/sandbox/pay/{intent.id}/")
    assert policy_of(response)["form-action"] == ["'self'", "https://shop.example"]


def test_the_lockout_page_too():
    # The lockout answer is rendered outside the view (django-axes' middleware)
    from django.test import override_settings

    user = factories.UserFactory()
    client = Client()
    with override_settings(AXES_FAILURE_LIMIT=1):
        client.post("/accounts/login/", {"username": user.email, "password": "wrong"})
        response = client.post(
            "/accounts/login/", {"username": user.email, "password": factories.PASSWORD}
        )
    assert response.status_code == 429
    assert_under_policy(response, "lockout")
