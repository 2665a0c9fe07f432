"""POST /api/auth/signup/ (the signup page's service, with its limit on attempts) and
POST /api/auth/token/revoke/ (log out)."""

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from customers.models import CustomerProfile
from tests.factories import UserFactory

SIGNUP = "/api/auth/signup/"
REVOKE = "/api/auth/token/revoke/"
PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    cache.clear()  # the signup limit counts in the cache
    yield APIClient(HTTP_ACCEPT_LANGUAGE="en")
    cache.clear()


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def test_sign_up_and_use_the_token_then_log_out(api):
    sent = api.post(
        SIGNUP, {"email": " New@Example.com ", "password": PASSWORD, "name": "Kim"}, format="json"
    )
    assert sent.status_code == 201, sent.content
    token = sent.json()["token"]
    profile = CustomerProfile.objects.get(user__email="new@example.com")
    assert sent.json()["email"] == "new@example.com"
    assert Token.objects.get(user=profile.user).key == token
    # The token works
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/me/addresses/").status_code == 200
    # Log out: the token is gone and no longer works
    assert client.post(REVOKE).status_code == 204
    assert not Token.objects.filter(user=profile.user).exists()
    assert error(client.get("/api/me/addresses/"), 401)


@pytest.mark.parametrize(
    "data,field",
    [
        ({"email": "not an address", "password": PASSWORD}, "email"),
        ({"email": "a@example.com"}, "password"),
        ({"email": "a@example.com", "password": "123"}, "password"),
        ({"email": "taken@example.com", "password": PASSWORD}, "email"),
    ],
)
def test_bad_signups_are_400_with_the_field(api, data, field):
    UserFactory(email="taken@example.com")
    refused = error(api.post(SIGNUP, data, format="json"), 400)
    assert field in refused["fields"], refused
    assert not CustomerProfile.objects.exists()


def test_too_many_signups_are_refused_like_on_the_page(api, settings):
    settings.FORM_LIMITS = {**settings.FORM_LIMITS, "signup": {"address": 2, "account": 2}}
    for n in range(2):
        data = {"email": f"u{n}@example.com", "password": PASSWORD}
        assert api.post(SIGNUP, data, format="json").status_code == 201
    refused = api.post(SIGNUP, {"email": "u9@example.com", "password": PASSWORD}, format="json")
    assert error(refused, 429)["code"] == "throttled"
    assert refused["Retry-After"]
    assert CustomerProfile.objects.count() == 2


def test_log_out_needs_a_login(api):
    assert error(api.post(REVOKE), 401)
