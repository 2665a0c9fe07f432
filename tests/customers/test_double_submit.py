"""A double tap on "sign up" or "apply to sell": two requests side by side. Each checks "already
exists?" before the other has committed, so the slower one's INSERT waits on the unique index and
then fails. The second must end as a clean answer, never a 500: signing up again is the form's
"already exists" error; applying again lands where the first application went (the dashboard).

Simulated deterministically: another connection (the first tap) writes the row in a transaction
and commits a moment after the second request has passed its checks."""

import threading
import time

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test import Client

from customers.models import CustomerProfile
from customers.services import customer_signup
from tests.factories import PASSWORD, CustomerProfileFactory, UserFactory
from vendors.models import ServiceCell, Vendor
from vendors.services import vendor_apply

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

User = get_user_model()
EMAIL = "double@example.test"
TAKEN = "An account with this e-mail address already exists."
APPLIED = "You have already applied to sell."
HOME = (37.556, 126.906)


def first_tap_in_flight(work, hold: float = 1.0) -> threading.Thread:
    """Run `work` in a transaction on another connection, and commit `hold` seconds after it is
    done (the caller joins the thread)."""
    started, failed = threading.Event(), []

    def run():
        try:
            with transaction.atomic():
                work()
                started.set()
                time.sleep(hold)
        except Exception as exc:  # noqa: BLE001 - reported to the test below
            failed.append(exc)
            started.set()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(10)
    assert not failed, failed
    return thread


def client() -> Client:
    return Client(headers={"accept-language": "en"})


# --- sign up -------------------------------------------------------------------------------------


def test_signing_up_twice_at_once_is_the_forms_already_exists_error():
    # Given the first tap's sign-up, written but not yet committed
    thread = first_tap_in_flight(lambda: customer_signup(email=EMAIL, password=PASSWORD))
    try:
        # When the second tap sends the same form
        second = client()
        response = second.post(
            "/accounts/signup/",
            {"email": EMAIL, "password1": PASSWORD, "password2": PASSWORD, "name": "Kim"},
        )
    finally:
        thread.join()
    # Then it is the sign-up page again with the e-mail's error, not logged in; one account
    assert response.status_code == 200
    assert response.context["form"].errors == {"email": [TAKEN]}
    assert SESSION_KEY not in second.session
    assert User.objects.filter(email=EMAIL).count() == 1
    assert CustomerProfile.objects.filter(user__email=EMAIL).count() == 1


def test_the_signup_service_turns_the_lost_race_into_the_email_error():
    # Given the first tap's sign-up in flight
    thread = first_tap_in_flight(lambda: customer_signup(email=EMAIL, password=PASSWORD))
    try:
        # When the same e-mail signs up meanwhile
        with pytest.raises(ValidationError) as exc:
            customer_signup(email=EMAIL.upper(), password=PASSWORD)
    finally:
        thread.join()
    # Then the unique index's refusal is the e-mail's "already exists"
    assert exc.value.message_dict == {"email": [TAKEN]}
    assert User.objects.count() == 1


# --- apply to sell -------------------------------------------------------------------------------


def _apply_first(user):
    return first_tap_in_flight(
        lambda: vendor_apply(user=user, name="Cart", home_lat=HOME[0], home_lng=HOME[1])
    )


@pytest.mark.parametrize(
    "make_user",
    [
        # no customer profile yet: both taps create it, so the second waits there and then
        # sees the first one's vendor in the model's unique checks
        UserFactory,
        # a customer already: the second gets to the INSERT, which fails on the unique index
        lambda: CustomerProfileFactory().user,
    ],
    ids=["new-user", "customer"],
)
def test_applying_twice_at_once_lands_on_the_dashboard_of_the_one_application(make_user):
    # Given the first tap's application, written but not yet committed
    user = make_user()
    thread = _apply_first(user)
    try:
        # When the second tap sends the form again (another name, as if edited in between)
        second = client()
        second.force_login(user)
        response = second.post(
            "/vendors/apply/",
            {"name": "Second cart", "home_lat": str(HOME[0]), "home_lng": str(HOME[1])},
        )
    finally:
        thread.join()
    # Then it goes where the first went, the dashboard, and there is the one application
    assert response.status_code == 302
    assert response["Location"] == "/vendors/me/"
    vendor = Vendor.objects.get(user=user)
    assert vendor.name == "Cart"
    assert vendor.status == Vendor.Status.PENDING
    assert ServiceCell.objects.filter(vendor=vendor).count() == 7
    assert second.get("/vendors/me/").status_code == 200


def test_the_apply_service_turns_the_lost_race_into_already_applied():
    # Given a customer whose first application is in flight
    user = CustomerProfileFactory().user
    thread = _apply_first(user)
    try:
        # When they apply again meanwhile
        with pytest.raises(ValidationError) as exc:
            vendor_apply(user=user, name="Cart", home_lat=HOME[0], home_lng=HOME[1])
    finally:
        thread.join()
    # Then the unique index's refusal is "already applied", not an IntegrityError
    assert exc.value.messages == [APPLIED]
    assert Vendor.objects.filter(user=user).count() == 1
