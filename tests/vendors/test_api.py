"""The vendor API: public reads, a vendor's own stock, token auth, one error format, the schema."""

import re

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import (
    PASSWORD,
    ProductFactory,
    StockFactory,
    VendorFactory,
)
from vendors.models import Stock, Vendor
from vendors.services import MAX_STOCK

User = get_user_model()
STOCK = "/api/vendors/me/stock/"


def _error(response, status: int, code: str | None = None) -> dict:
    """The one error format: {"error": {"code", "message", "fields"?}} and nothing else."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "fields"}
    assert isinstance(error["message"], str) and error["message"]
    if code:
        assert error["code"] == code
    return error


def _quantities(vendor: Vendor) -> dict[int, int]:
    return dict(Stock.objects.filter(vendor=vendor).values_list("product_id", "quantity"))


@pytest.fixture
def carts(vendor):
    """Vendor A (the `vendor` fixture) and vendor B, carrying some of the same products."""
    shared, only_a, only_b = ProductFactory(), ProductFactory(), ProductFactory()
    StockFactory(vendor=vendor, product=shared, quantity=3)
    StockFactory(vendor=vendor, product=only_a, quantity=4)
    b = VendorFactory()
    StockFactory(vendor=b, product=shared, quantity=30)
    StockFactory(vendor=b, product=only_b, quantity=50)
    return vendor, b, shared, only_a, only_b


# --- Public reads -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_can_read_vendors_and_products(api, carts):
    a, b, shared, only_a, only_b = carts
    ProductFactory(is_active=False)
    VendorFactory(status=Vendor.Status.PENDING)
    vendors = api.get("/api/vendors/")
    assert vendors.status_code == 200
    assert vendors.json()["count"] == 2
    rows = {v["slug"]: v for v in vendors.json()["results"]}
    assert rows[a.slug]["items_left"] == 7 and rows[a.slug]["products_left"] == 2
    products = api.get("/api/products/")
    assert products.status_code == 200
    assert {p["id"] for p in products.json()["results"]} == {shared.pk, only_a.pk, only_b.pk}


@pytest.mark.django_db
def test_vendor_detail_api_shows_its_stock(api, carts):
    a, b, shared, only_a, only_b = carts
    StockFactory(vendor=a, product=ProductFactory(is_active=False), quantity=9)
    response = api.get(f"/api/vendors/{a.slug}/")
    assert response.status_code == 200
    stock = {line["product"]["id"]: line["quantity"] for line in response.json()["stock"]}
    assert stock == {shared.pk: 3, only_a.pk: 4}


@pytest.mark.parametrize(
    "status", ["missing", *[s for s in Vendor.Status.values if s != "approved"]]
)
@pytest.mark.django_db
def test_unknown_or_unapproved_vendor_is_404_in_the_error_format(api, status):
    slug = "no-such-cart" if status == "missing" else VendorFactory(status=status).slug
    _error(api.get(f"/api/vendors/{slug}/"), 404, "not_found")


@pytest.mark.django_db
def test_vendor_list_api_query_count_does_not_grow(api, django_assert_num_queries):
    def add_vendors(n):
        for _ in range(n):
            v = VendorFactory()
            StockFactory(vendor=v)
            StockFactory(vendor=v)

    add_vendors(2)
    with django_assert_num_queries(2):  # the page's count and its rows
        assert len(api.get("/api/vendors/").json()["results"]) == 2
    add_vendors(10)
    with django_assert_num_queries(2):
        assert len(api.get("/api/vendors/").json()["results"]) == 12


@pytest.mark.django_db
def test_product_list_api_query_count_does_not_grow(api, django_assert_num_queries):
    ProductFactory.create_batch(2)
    with django_assert_num_queries(2):
        api.get("/api/products/")
    ProductFactory.create_batch(10)
    with django_assert_num_queries(2):
        assert api.get("/api/products/").json()["count"] == 12


# --- Who may touch /api/vendors/me/stock/ -----------------------------------------------------


@pytest.mark.django_db
def test_anonymous_cannot_read_or_change_stock(api, carts):
    a, b, shared, *_ = carts
    response = api.get(STOCK)
    _error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
    response = api.patch(
        STOCK, {"changes": [{"product_id": shared.pk, "quantity": 0}]}, format="json"
    )
    _error(response, 401, "not_authenticated")
    assert _quantities(a)[shared.pk] == 3


@pytest.mark.django_db
def test_a_customer_gets_403_on_stock(api, customer, carts):
    a, b, shared, *_ = carts
    api.force_authenticate(customer)
    _error(api.get(STOCK), 403, "permission_denied")
    response = api.patch(
        STOCK, {"changes": [{"product_id": shared.pk, "quantity": 0}]}, format="json"
    )
    _error(response, 403)
    assert _quantities(a)[shared.pk] == 3 and _quantities(b)[shared.pk] == 30
    assert not Stock.objects.filter(vendor__user=customer).exists()


@pytest.mark.django_db
def test_a_vendor_reads_only_their_own_stock(api, carts):
    a, b, shared, only_a, only_b = carts
    api.force_authenticate(a.user)
    response = api.get(STOCK)
    assert response.status_code == 200
    assert {r["product_id"]: r["quantity"] for r in response.json()} == {shared.pk: 3, only_a.pk: 4}


@pytest.mark.django_db
def test_a_vendors_patch_only_ever_changes_their_own_stock(api, carts):
    # Given vendor A, and vendor B carrying a product A has and one A doesn't
    a, b, shared, only_a, only_b = carts
    api.force_authenticate(a.user)
    # When A sends changes naming B's products (the only thing a request can name)
    response = api.patch(
        STOCK,
        {
            "changes": [
                {"product_id": shared.pk, "quantity": 1},
                {"product_id": only_b.pk, "quantity": 2},
            ]
        },
        format="json",
    )
    # Then A's cart changed and B's did not
    assert response.status_code == 200
    assert {r["product_id"]: r["quantity"] for r in response.json()} == {shared.pk: 1, only_b.pk: 2}
    assert _quantities(a) == {shared.pk: 1, only_a.pk: 4, only_b.pk: 2}
    assert _quantities(b) == {shared.pk: 30, only_b.pk: 50}


@pytest.mark.django_db
def test_patch_with_the_expected_quantity_succeeds(api, carts):
    a, b, shared, *_ = carts
    api.force_authenticate(a.user)
    response = api.patch(
        STOCK, {"changes": [{"product_id": shared.pk, "quantity": 9, "expected": 3}]}, format="json"
    )
    assert response.status_code == 200
    assert _quantities(a)[shared.pk] == 9


@pytest.mark.parametrize("status", [Vendor.Status.SUSPENDED, Vendor.Status.REJECTED])
@pytest.mark.django_db
def test_a_suspended_vendor_gets_403_on_patch(api, carts, status):
    a, b, shared, *_ = carts
    Vendor.objects.filter(pk=a.pk).update(status=status)
    api.force_authenticate(User.objects.get(pk=a.user_id))  # as a request would load it
    response = api.patch(
        STOCK, {"changes": [{"product_id": shared.pk, "quantity": 0}]}, format="json"
    )
    _error(response, 403, "forbidden")
    assert _quantities(a)[shared.pk] == 3


@pytest.mark.django_db
def test_session_auth_patch_needs_the_csrf_token(carts):
    # Given a vendor logged in by session (a browser), without the CSRF token
    a, b, shared, *_ = carts
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(a.user)
    # When the page's script PATCHes without the token, it is refused
    response = browser.patch(
        STOCK, {"changes": [{"product_id": shared.pk, "quantity": 0}]}, format="json"
    )
    _error(response, 403)
    assert _quantities(a)[shared.pk] == 3


# --- Bad input --------------------------------------------------------------------------------


def _bad_bodies(shared: int, only_a: int, inactive: int) -> dict[str, tuple[object, int, str]]:
    change = {"product_id": only_a, "quantity": 1}  # a valid change riding along in each batch
    return {
        "no-body": ({}, 400, "invalid"),
        "not-an-object": ([change], 400, "invalid"),
        "changes-not-a-list": ({"changes": change}, 400, "invalid"),
        "empty-changes": ({"changes": []}, 400, "invalid"),
        "negative": ({"changes": [change, {"product_id": shared, "quantity": -1}]}, 400, "invalid"),
        "string": (
            {"changes": [change, {"product_id": shared, "quantity": "many"}]},
            400,
            "invalid",
        ),
        "fraction": (
            {"changes": [change, {"product_id": shared, "quantity": 1.5}]},
            400,
            "invalid",
        ),
        "huge": ({"changes": [change, {"product_id": shared, "quantity": 10**12}]}, 400, "invalid"),
        "missing-quantity": ({"changes": [change, {"product_id": shared}]}, 400, "invalid"),
        "bad-product-id": (
            {"changes": [change, {"product_id": "abc", "quantity": 1}]},
            400,
            "invalid",
        ),
        "duplicate": ({"changes": [change, {**change, "quantity": 2}]}, 400, "invalid"),
        "unknown": (
            {"changes": [change, {"product_id": 987654321, "quantity": 1}]},
            400,
            "invalid",
        ),
        "enormous-id": (
            {"changes": [change, {"product_id": 10**20, "quantity": 1}]},
            400,
            "invalid",
        ),
        "inactive": (
            {"changes": [change, {"product_id": inactive, "quantity": 1}]},
            400,
            "invalid",
        ),
        "negative-expected": (
            {"changes": [change, {"product_id": shared, "quantity": 1, "expected": -1}]},
            400,
            "invalid",
        ),
        "stale-expected": (
            {"changes": [change, {"product_id": shared, "quantity": 1, "expected": 2}]},
            409,
            "conflict",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "no-body",
        "not-an-object",
        "changes-not-a-list",
        "empty-changes",
        "negative",
        "string",
        "fraction",
        "huge",
        "missing-quantity",
        "bad-product-id",
        "duplicate",
        "unknown",
        "enormous-id",
        "inactive",
        "negative-expected",
        "stale-expected",
    ],
)
@pytest.mark.django_db
def test_bad_patch_gives_4xx_in_the_error_format_and_saves_nothing(api, carts, case):
    # Given vendor A with stock
    a, b, shared, only_a, only_b = carts
    inactive = ProductFactory(is_active=False)
    before_a, before_b = _quantities(a), _quantities(b)
    body, status, code = _bad_bodies(shared.pk, only_a.pk, inactive.pk)[case]
    api.force_authenticate(a.user)
    # When A sends a batch with one bad change in it
    response = api.patch(STOCK, body, format="json")
    # Then it is refused in the one error format, and nothing of the batch was saved
    error = _error(response, status, code)
    if status == 400:
        assert isinstance(error["fields"], dict) and error["fields"]
    assert _quantities(a) == before_a
    assert _quantities(b) == before_b


@pytest.mark.django_db
def test_a_stale_expected_says_what_is_there_now(api, carts):
    a, b, shared, *_ = carts
    api.force_authenticate(a.user)
    response = api.patch(
        STOCK,
        {"changes": [{"product_id": shared.pk, "quantity": 1, "expected": 2}]},
        format="json",
        headers={"accept-language": "en"},
    )
    error = _error(response, 409, "conflict")
    assert "3 left" in error["message"]


@pytest.mark.django_db
def test_patch_that_is_not_json_is_refused(api, carts):
    a, *_ = carts
    api.force_authenticate(a.user)
    response = api.generic("PATCH", STOCK, "{not json", content_type="application/json")
    _error(response, 400, "parse_error")


# --- Token auth -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_token_is_obtained_with_email_and_password_and_works(api, carts):
    # Given vendor A
    a, b, shared, *_ = carts
    # When they trade their e-mail (any case) and password for a token
    response = api.post(
        "/api/auth/token/", {"email": a.user.email.upper(), "password": PASSWORD}, format="json"
    )
    # Then they get one, the same one every time
    assert response.status_code == 200
    token = response.json()["token"]
    assert token == Token.objects.get(user=a.user).key
    again = api.post(
        "/api/auth/token/", {"email": a.user.email, "password": PASSWORD}, format="json"
    )
    assert again.json()["token"] == token
    # And with it (no session, no CSRF token) they can read and change their stock
    app = APIClient(enforce_csrf_checks=True)
    app.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert app.get(STOCK).status_code == 200
    response = app.patch(
        STOCK, {"changes": [{"product_id": shared.pk, "quantity": 0}]}, format="json"
    )
    assert response.status_code == 200
    assert _quantities(a)[shared.pk] == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": "EMAIL", "password": "wrong"}, id="wrong-password"),
        pytest.param({"email": "nobody@example.test", "password": PASSWORD}, id="unknown-email"),
        pytest.param({"username": "EMAIL", "password": PASSWORD}, id="username-not-email"),
        pytest.param({"email": "EMAIL"}, id="no-password"),
        pytest.param({"email": "not-an-email", "password": PASSWORD}, id="bad-email"),
    ],
)
@pytest.mark.django_db
def test_bad_token_requests_are_refused_in_the_error_format(api, customer, body):
    body = {k: customer.email if v == "EMAIL" else v for k, v in body.items()}
    error = _error(api.post("/api/auth/token/", body, format="json"), 400, "invalid")
    assert error["fields"]
    assert not Token.objects.exists()


@pytest.mark.django_db
def test_an_inactive_user_gets_no_token(api, customer):
    customer.is_active = False
    customer.save()
    response = api.post(
        "/api/auth/token/", {"email": customer.email, "password": PASSWORD}, format="json"
    )
    _error(response, 400, "invalid")


@pytest.mark.django_db
def test_a_bad_token_is_401(api):
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    _error(api.get(STOCK), 401, "authentication_failed")


@pytest.mark.django_db
def test_a_customer_token_still_gets_403_on_stock(api, customer):
    token = api.post(
        "/api/auth/token/", {"email": customer.email, "password": PASSWORD}, format="json"
    )
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    _error(api.get(STOCK), 403, "permission_denied")


# --- Schema and docs --------------------------------------------------------------------------


@pytest.mark.django_db
def test_schema_is_an_openapi_document_describing_the_api(api):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in (
        "/api/vendors/",
        "/api/vendors/{slug}/",
        "/api/products/",
        STOCK,
        "/api/auth/token/",
    ):
        assert path in schema["paths"], path
    assert set(schema["paths"][STOCK]) >= {"get", "patch"}
    # Token auth is documented as e-mail + password
    ref = schema["paths"]["/api/auth/token/"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]["$ref"]
    token_in = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(token_in["required"]) == {"email", "password"}
    assert "tokenAuth" in schema["components"]["securitySchemes"]


@pytest.mark.django_db
def test_docs_page_loads_without_any_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger" in html.lower()
    external = re.findall(r'(?:src|href)\s*=\s*["\'](?:https?:)?//[^"\']+', html)
    assert external == []
    for cdn in ("cdn.jsdelivr", "unpkg.com", "cdnjs"):
        assert cdn not in html
    # And the assets it does reference are served from here
    assets = re.findall(r'(?:src|href)\s*=\s*["\'](/static/[^"\']+)', html)
    assert assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


# --- Refusals in the client's language ----------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "message"),
    [("ko", "해당 판매자를 찾을 수 없어요."), ("en", "No such vendor.")],
)
@pytest.mark.parametrize("status", ["missing", Vendor.Status.SUSPENDED])
@pytest.mark.django_db
def test_the_unknown_vendor_404_speaks_the_clients_language(api, status, language, message):
    # Given a slug with no vendor, or a suspended vendor's slug
    slug = "no-such-cart" if status == "missing" else VendorFactory(status=status).slug
    # When a client asks for it in Korean or English
    response = api.get(f"/api/vendors/{slug}/", HTTP_ACCEPT_LANGUAGE=language)
    # Then the 404 says so in that language
    assert _error(response, 404, "not_found")["message"] == message


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("ko", "재고 관리는 판매자만 할 수 있어요. 먼저 판매자 신청을 해 주세요."),
        ("en", "Only vendors have a cart to stock. Apply to sell first."),
    ],
)
@pytest.mark.django_db
def test_a_customer_on_the_stock_api_is_refused_in_their_language(api, customer, language, message):
    # Given a signed-in customer who is not a vendor
    api.force_authenticate(customer)
    # When they ask for the stock API in Korean or English
    response = api.get(STOCK, HTTP_ACCEPT_LANGUAGE=language)
    # Then the 403 says so in that language
    assert _error(response, 403, "permission_denied")["message"] == message


@pytest.mark.django_db
def test_patch_can_lower_stock_that_released_units_pushed_above_the_maximum(api, carts):
    # Given a row above MAX_STOCK (a cancelled order's units went back onto a full cart)
    a, b, shared, *_ = carts
    Stock.objects.filter(vendor=a, product=shared).update(quantity=MAX_STOCK + 1)
    api.force_authenticate(a.user)
    # When the vendor lowers it, sending the quantity they saw
    response = api.patch(
        STOCK,
        {"changes": [{"product_id": shared.pk, "quantity": 500, "expected": MAX_STOCK + 1}]},
        format="json",
    )
    # Then it is saved
    assert response.status_code == 200, response.content
    assert _quantities(a)[shared.pk] == 500
