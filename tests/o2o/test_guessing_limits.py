"""Guessing is limited: sign-in (login page, token API) per account and per address through
django-axes; password reset and signup per address and per e-mail address through the cache.
A lockout says so in the visitor's language and ends after the cool-off."""

import itertools
import time
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core import mail
from django.db.models import F
from django.test import Client, override_settings
from rest_framework.test import APIClient

from tests.factories import PASSWORD, UserFactory

LIMIT = 5
COOL_OFF = timedelta(minutes=15)
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


def _client(lang: str = "en", address: str | None = None) -> Client:
    return Client(headers={"accept-language": lang}, REMOTE_ADDR=address or next(_addresses))


def _api(address: str | None = None) -> APIClient:
    return APIClient(REMOTE_ADDR=address or next(_addresses), HTTP_ACCEPT_LANGUAGE="en")


def _page_login(client: Client, email: str, password: str):
    return client.post("/accounts/login/", {"username": email, "password": password})


def _token(api: APIClient, email: str, password: str):
    return api.post("/api/auth/token/", {"email": email, "password": password}, format="json")


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("axes_limits"),
]


@pytest.fixture
def axes_limits(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = COOL_OFF


# --- Sign-in: the login page ------------------------------------------------------------------


def test_forty_wrong_passwords_then_the_right_one_is_refused_on_the_login_page():
    # Given an account, and someone who tried 40 wrong passwords on it
    user = UserFactory()
    client = _client()
    for n in range(40):
        _page_login(client, user.email, f"wrong-{n}")
    # When they then send the right password
    response = _page_login(client, user.email, PASSWORD)
    # Then they are not logged in, and the page says why and for how long
    assert response.status_code == 429
    assert not _logged_in(client)
    assert "Too many failed sign-in attempts" in response.text
    assert "15 minutes" in response.text
    assert response["Retry-After"] == str(15 * 60)
    # And the page is still the login page (its form, a way to reset the password)
    assert 'name="username"' in response.text
    assert "/accounts/password_reset/" in response.text


def test_the_lockout_message_is_korean_for_a_korean_visitor():
    user = UserFactory()
    client = _client(lang="ko")
    for n in range(LIMIT):
        _page_login(client, user.email, f"wrong-{n}")
    response = _page_login(client, user.email, PASSWORD)
    assert response.status_code == 429
    assert "로그인 시도가 너무 많습니다" in response.text
    assert "15분" in response.text


def test_the_account_stays_locked_from_another_address_and_in_another_case():
    # Given an account locked by failures from one address
    user = UserFactory()
    attacker = _client()
    for n in range(LIMIT):
        _page_login(attacker, user.email, f"wrong-{n}")
    # When the right password comes from another address, the e-mail typed in capitals
    other = _client()
    response = _page_login(other, user.email.upper(), PASSWORD)
    # Then it is refused too: the limit is per account
    assert response.status_code == 429
    assert not _logged_in(other)
    # And so is the token API for that account
    assert _token(_api(), user.email, PASSWORD).status_code == 429


def test_one_address_is_locked_across_accounts():
    # Given one address that tried wrong passwords on many different accounts, once each
    address = next(_addresses)
    for n in range(LIMIT):
        _page_login(_client(address=address), UserFactory().email, f"wrong-{n}")
    # When an account it never tried logs in from there with the right password
    fresh = UserFactory()
    client = _client(address=address)
    response = _page_login(client, fresh.email, PASSWORD)
    # Then it is refused: the limit is per address too
    assert response.status_code == 429
    assert not _logged_in(client)
    # While the same account logs in from elsewhere
    elsewhere = _client()
    assert _page_login(elsewhere, fresh.email, PASSWORD).status_code == 302
    assert _logged_in(elsewhere)


def test_a_few_mistakes_do_not_lock_anyone_out():
    user = UserFactory()
    client = _client()
    for n in range(LIMIT - 1):
        response = _page_login(client, user.email, f"wrong-{n}")
        assert response.status_code == 200
        assert "Check them and try again" in response.text
    assert _page_login(client, user.email, PASSWORD).status_code == 302
    assert _logged_in(client)


def test_a_lockout_ends_after_the_cool_off():
    # Given a locked account
    user = UserFactory()
    for n in range(LIMIT):
        _page_login(_client(), user.email, f"wrong-{n}")
    assert _page_login(_client(), user.email, PASSWORD).status_code == 429
    # When the cool-off has passed since the last failure (the records travel back in time)
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - COOL_OFF - timedelta(seconds=1))
    # Then the right password logs in again
    client = _client()
    assert _page_login(client, user.email, PASSWORD).status_code == 302
    assert _logged_in(client)


def test_a_guess_during_the_lockout_restarts_the_wait():
    # Given an account locked by one address, the cool-off nearly over
    user = UserFactory()
    attacker = _client()
    for n in range(LIMIT):
        _page_login(attacker, user.email, f"wrong-{n}")
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - COOL_OFF + timedelta(minutes=1))
    # When that address guesses once more, and the cool-off's end then passes
    assert _page_login(attacker, user.email, "one-more-guess").status_code == 429
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=2))
    # Then the account is still locked: the wait counts from the last guess
    assert _page_login(_client(), user.email, PASSWORD).status_code == 429


# --- Sign-in: the token API -------------------------------------------------------------------


def test_forty_wrong_passwords_then_the_right_one_is_refused_by_the_token_api():
    # Given an account, and 40 wrong passwords sent to the token API
    user = UserFactory()
    api = _api()
    for n in range(40):
        assert _token(api, user.email, f"wrong-{n}").status_code in (400, 429)
    # When the right password comes, from this address or another
    for client in (api, _api()):
        response = _token(client, user.email, PASSWORD)
        # Then no token is given, in the API's error shape
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "locked_out"
        assert "Too many failed sign-in attempts" in response.json()["error"]["message"]
        assert response["Retry-After"] == str(15 * 60)
        assert "token" not in response.json()
    # And the login page is locked for that account as well
    assert _page_login(_client(), user.email, PASSWORD).status_code == 429


def test_the_token_api_locks_one_address_across_accounts():
    address = next(_addresses)
    for n in range(LIMIT):
        _token(_api(address), UserFactory().email, f"wrong-{n}")
    response = _token(_api(address), UserFactory().email, PASSWORD)
    assert response.status_code == 429
    assert "token" not in response.json()


def test_the_token_api_gives_a_token_below_the_limit():
    user = UserFactory()
    api = _api()
    for n in range(LIMIT - 1):
        assert _token(api, user.email, f"wrong-{n}").status_code == 400
    assert _token(api, user.email, PASSWORD).json()["token"]


# --- Password reset and signup ----------------------------------------------------------------

FORM_LIMITS = {
    "password_reset": {"address": 3, "account": 2},
    "signup": {"address": 3, "account": 2},
}
limits = override_settings(FORM_LIMITS=FORM_LIMITS)
_emails = (f"limited{n}-{{}}@example.test" for n in itertools.count())


def _unique_email() -> str:
    return next(_emails).format(uuid.uuid4().hex[:8])


def _reset(client: Client, email: str):
    return client.post("/accounts/password_reset/", {"email": email})


def _signup(client: Client, email: str):
    return client.post(
        "/accounts/signup/",
        {
            "email": email,
            "password1": "plum-lantern-orbit-42",
            "password2": "plum-lantern-orbit-42",
        },
    )


@limits
def test_password_reset_is_limited_per_account():
    # Given an account whose reset was asked for twice, from two addresses
    user = UserFactory(email=_unique_email())
    for _ in range(2):
        assert _reset(_client(), user.email).status_code == 302
    # When a third address asks again
    response = _reset(_client(), user.email)
    # Then it is refused, saying why, and no third e-mail goes out
    assert response.status_code == 429
    assert "Too many attempts" in response.text
    assert len(mail.outbox) == 2


@limits
def test_password_reset_is_limited_per_address():
    address = next(_addresses)
    for _ in range(3):
        assert _reset(_client(address=address), _unique_email()).status_code == 302
    response = _reset(_client(lang="ko", address=address), _unique_email())
    assert response.status_code == 429
    assert "시도가 너무 많습니다" in response.text


@limits
def test_signup_is_limited_per_address():
    # Given three accounts created from one address
    address = next(_addresses)
    for _ in range(3):
        assert _signup(_client(address=address), _unique_email()).status_code == 302
    # When a fourth is tried from there
    email = _unique_email()
    response = _signup(_client(address=address), email)
    # Then it is refused, and no account is made
    assert response.status_code == 429
    assert "Too many attempts" in response.text
    assert not get_user_model().objects.filter(email=email).exists()


@limits
def test_signup_is_limited_per_email_address():
    # Given an address tried twice (the second says it exists: that tells who has an account)
    email = _unique_email()
    assert _signup(_client(), email).status_code == 302
    assert "already exists" in _signup(_client(), email).text
    # When it is tried again from a third address
    response = _signup(_client(), email)
    # Then the answer no longer says whether the account exists
    assert response.status_code == 429
    assert "already exists" not in response.text


@override_settings(FORM_LIMITS=FORM_LIMITS, FORM_LIMIT_WINDOW_S=1)
def test_the_form_limit_ends_with_its_window():
    address = next(_addresses)
    for _ in range(3):
        _reset(_client(address=address), _unique_email())
    assert _reset(_client(address=address), _unique_email()).status_code == 429
    time.sleep(1.2)
    assert _reset(_client(address=address), _unique_email()).status_code == 302


@override_settings(
    FORM_LIMITS=FORM_LIMITS,
    CACHES={
        "default": {
            "BACKEND": "o2o.cache.ResilientRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.1, "socket_timeout": 0.1},
        }
    },
)
def test_a_cache_that_does_not_answer_limits_nobody():
    # Given the cache is down
    address = next(_addresses)
    # When one address asks for more resets and signups than the limit
    # Then they all go through: a broken counter must not lock everyone out
    for _ in range(5):
        assert _reset(_client(address=address), _unique_email()).status_code == 302
        assert _signup(_client(address=address), _unique_email()).status_code == 302


def test_the_lockout_answers_the_same_under_asgi(async_client):
    # Under ASGI, django-axes runs its async middleware (which passes its arguments differently)
    user = UserFactory()
    for n in range(LIMIT):
        _page_login(_client(), user.email, f"wrong-{n}")

    async def attempts():
        page = await async_client.post(
            "/accounts/login/",
            {"username": user.email, "password": PASSWORD},
            headers={"accept-language": "en"},
        )
        token = await async_client.post(
            "/api/auth/token/",
            {"email": user.email, "password": PASSWORD},
            content_type="application/json",
        )
        return page, token

    page, token = async_to_sync(attempts)()
    assert page.status_code == 429
    assert "Too many failed sign-in attempts" in page.text
    assert token.status_code == 429
    assert token.json()["error"]["code"] == "locked_out"
