"""Accounts: people log in with an e-mail address (any case), sign up as customers, and manage
their password through Django's auth pages."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client

from customers.models import CustomerProfile
from tests.factories import PASSWORD, UserFactory

User = get_user_model()
NEW_PASSWORD = "plum-lantern-orbit-42"


@pytest.fixture
def client():
    return Client(headers={"accept-language": "en"})


def _session_user_id(client) -> str | None:
    return client.session.get("_auth_user_id")


# --- The user model -------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_user_stores_the_email_lower_case():
    # When a user is created with a mixed-case address
    user = User.objects.create_user(email="Kim.MinJi@Example.TEST", password=PASSWORD)
    # Then it is stored lower-case, and the user has no username
    assert user.email == "kim.minji@example.test"
    assert User.USERNAME_FIELD == "email"


@pytest.mark.django_db
def test_duplicate_email_is_refused_whatever_its_case():
    # Given a user
    User.objects.create_user(email="dup@example.test", password=PASSWORD)
    # When someone creates another with the same address in another case
    # Then the manager refuses it
    with pytest.raises(ValidationError):
        User.objects.create_user(email="DUP@example.test", password=PASSWORD)
    # And so does the database, even when the model's cleaning is bypassed
    with pytest.raises(IntegrityError), transaction.atomic():
        User(email="Dup@Example.test").save()
    assert User.objects.filter(email__iexact="dup@example.test").count() == 1


@pytest.mark.django_db
def test_email_login_is_case_insensitive(client):
    # Given a user signed up as lower case
    user = UserFactory(email="login@example.test")
    # When they log in typing capitals
    response = client.post(
        "/accounts/login/", {"username": "LOGIN@Example.Test", "password": PASSWORD}
    )
    # Then they are logged in
    assert response.status_code == 302
    assert _session_user_id(client) == str(user.pk)


@pytest.mark.django_db
def test_login_with_a_wrong_password_fails(client):
    # Given a user
    UserFactory(email="login@example.test")
    # When the password is wrong
    response = client.post("/accounts/login/", {"username": "login@example.test", "password": "x"})
    # Then the form comes back with an error and nobody is logged in
    assert response.status_code == 200
    assert response.context["form"].errors
    assert _session_user_id(client) is None


@pytest.mark.django_db
def test_an_inactive_user_cannot_log_in(client):
    UserFactory(email="gone@example.test", is_active=False)
    response = client.post(
        "/accounts/login/", {"username": "gone@example.test", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert _session_user_id(client) is None


@pytest.mark.django_db
def test_logout_is_a_post_and_ends_the_session(client, customer):
    # Given a logged-in customer
    client.force_login(customer)
    # When they log out with GET nothing happens (logout must be a POST)
    assert client.get("/accounts/logout/").status_code == 405
    assert _session_user_id(client) == str(customer.pk)
    # When they POST
    response = client.post("/accounts/logout/")
    # Then they are logged out and sent home
    assert response.status_code == 302
    assert _session_user_id(client) is None


# --- Signup -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_signup_page_creates_a_customer_and_logs_them_in(client):
    # Given the signup page
    assert client.get("/accounts/signup/").status_code == 200
    # When a person fills it in
    response = client.post(
        "/accounts/signup/",
        {
            "name": "김민지",
            "email": "MinJi@Example.test",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    # Then a user with a customer profile exists, and they are logged in
    assert response.status_code == 302
    user = User.objects.get()
    assert user.email == "minji@example.test"
    assert user.name == "김민지"
    assert user.check_password(NEW_PASSWORD)
    assert CustomerProfile.objects.filter(user=user).exists()
    assert _session_user_id(client) == str(user.pk)


@pytest.mark.django_db
def test_signup_follows_a_safe_next_but_not_an_external_one(client):
    data = {"email": "a@example.test", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    response = client.post("/accounts/signup/?next=/vendors/apply/", data)
    assert response["Location"] == "/vendors/apply/"

    other = Client()
    data["email"] = "b@example.test"
    response = other.post("/accounts/signup/?next=https://evil.example/", data)
    assert response.status_code == 302
    assert "evil.example" not in response["Location"]


@pytest.mark.parametrize(
    "data, field",
    [
        pytest.param({"email": "not-an-email"}, "email", id="bad-email"),
        pytest.param({"email": ""}, "email", id="no-email"),
        pytest.param({"password2": "something-else-entirely"}, "password2", id="mismatch"),
        pytest.param({"password1": "12345678", "password2": "12345678"}, "password1", id="numeric"),
        pytest.param({"password1": "password", "password2": "password"}, "password1", id="common"),
        pytest.param({"password1": "x7!", "password2": "x7!"}, "password1", id="short"),
        pytest.param({"email": "taken@example.test"}, "email", id="duplicate"),
        pytest.param({"email": "TAKEN@example.TEST"}, "email", id="duplicate-other-case"),
    ],
)
@pytest.mark.django_db
def test_bad_signup_input_shows_a_form_error_and_saves_nothing(client, data, field):
    # Given an existing account
    UserFactory(email="taken@example.test")
    users_before = User.objects.count()
    # When someone signs up with one bad value
    form = {"email": "new@example.test", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    response = client.post("/accounts/signup/", {**form, **data})
    # Then the page comes back (200) with an error on that field
    assert response.status_code == 200
    assert field in response.context["form"].errors
    # And nothing was saved, nobody logged in
    assert User.objects.count() == users_before
    assert CustomerProfile.objects.count() == 0
    assert _session_user_id(client) is None


@pytest.mark.django_db
def test_a_logged_in_person_is_sent_away_from_signup(client, customer):
    client.force_login(customer)
    assert client.get("/accounts/signup/").status_code == 302


# --- Password change and reset ----------------------------------------------------------------


@pytest.mark.django_db
def test_password_change_needs_login(client):
    response = client.get("/accounts/password_change/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_password_change_page_changes_the_password(client, customer):
    # Given a logged-in customer on the change page
    client.force_login(customer)
    assert client.get("/accounts/password_change/").status_code == 200
    # When they give the old password and a new one twice
    response = client.post(
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    # Then the password is changed and they stay logged in
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_change/done/"
    customer.refresh_from_db()
    assert customer.check_password(NEW_PASSWORD)
    assert client.get("/accounts/password_change/done/").status_code == 200


@pytest.mark.django_db
def test_password_change_with_a_wrong_old_password_changes_nothing(client, customer):
    client.force_login(customer)
    response = client.post(
        "/accounts/password_change/",
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert "old_password" in response.context["form"].errors
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)


@pytest.mark.django_db
def test_password_reset_mails_a_link_that_sets_a_new_password(client):
    # Given a user who forgot their password
    user = UserFactory(email="forgot@example.test")
    assert client.get("/accounts/password_reset/").status_code == 200
    # When they ask for a reset, typing their address in capitals
    response = client.post("/accounts/password_reset/", {"email": "FORGOT@example.test"})
    # Then one e-mail goes to them with a reset link
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["forgot@example.test"]
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/\S+/)", mail.outbox[0].body)
    assert link, mail.outbox[0].body
    # When they follow it (Django swaps the token for a session value and redirects)
    response = client.get(link.group(1))
    assert response.status_code == 302
    set_password_url = response["Location"]
    assert client.get(set_password_url).status_code == 200
    response = client.post(
        set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    # Then the new password works and the old one doesn't
    assert response.status_code == 302
    assert response["Location"] == "/accounts/reset/done/"
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert not user.check_password(PASSWORD)
    # And the link can't be used twice
    response = client.get(link.group(1), follow=True)
    assert response.context["validlink"] is False


@pytest.mark.django_db
def test_password_reset_for_an_unknown_address_sends_nothing_and_reveals_nothing(client):
    response = client.post("/accounts/password_reset/", {"email": "nobody@example.test"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_reset/done/"
    assert mail.outbox == []
