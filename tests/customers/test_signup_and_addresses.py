"""Customer signup (the service) and the address book."""

import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from customers.models import Address, CustomerProfile
from customers.services import address_create, customer_profile_get_or_create, customer_signup
from o2o.geo import cell_of
from tests.factories import MAPO, AddressFactory, CustomerProfileFactory, UserFactory

User = get_user_model()
PASSWORD = "plum-lantern-orbit-42"


# --- customer_signup --------------------------------------------------------------------------


@pytest.mark.django_db
def test_signup_creates_a_user_and_a_customer_profile():
    # When a person signs up
    profile = customer_signup(
        email="  Lee@Example.TEST ", password=PASSWORD, name=" 이서연 ", phone=" 010-1 "
    )
    # Then the user logs in by their lower-cased e-mail and has a customer profile
    user = User.objects.get()
    assert profile.user == user
    assert user.email == "lee@example.test"
    assert user.name == "이서연"
    assert profile.phone == "010-1"
    assert user.check_password(PASSWORD)
    assert not user.is_staff


@pytest.mark.django_db
def test_signup_refuses_a_taken_email_in_any_case():
    UserFactory(email="taken@example.test")
    with pytest.raises(ValidationError) as exc:
        customer_signup(email="Taken@Example.test", password=PASSWORD)
    assert "email" in exc.value.message_dict
    assert User.objects.count() == 1
    assert CustomerProfile.objects.count() == 0


@pytest.mark.parametrize("password", ["12345678", "password", "abc", "lee@example.test"])
@pytest.mark.django_db
def test_signup_refuses_a_weak_password_and_saves_nothing(password):
    with pytest.raises(ValidationError):
        customer_signup(email="lee@example.test", password=password)
    assert User.objects.count() == 0
    assert CustomerProfile.objects.count() == 0


@pytest.mark.django_db
def test_customer_profile_get_or_create_is_idempotent():
    user = UserFactory()
    first = customer_profile_get_or_create(user=user)
    assert customer_profile_get_or_create(user=user) == first
    assert CustomerProfile.objects.filter(user=user).count() == 1


# --- Addresses --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_first_address_becomes_the_default_and_gets_its_cell():
    # Given a customer without addresses
    customer = CustomerProfileFactory()
    # When they add one (not asking for default)
    address = address_create(
        customer=customer, label=" ", line1=" 망원로 50 ", lat=MAPO[0], lng=MAPO[1]
    )
    # Then it is the default, cleaned, and indexed by its H3 cell at the public resolution
    assert address.is_default
    assert address.line1 == "망원로 50"
    assert address.label  # a blank label gets a name
    assert address.cell == cell_of(*MAPO)
    assert len(address.cell) == 15


@pytest.mark.django_db
def test_a_new_default_address_replaces_the_old_default():
    customer = CustomerProfileFactory()
    home = address_create(customer=customer, label="집", line1="a", lat=MAPO[0], lng=MAPO[1])
    office = address_create(customer=customer, label="회사", line1="b", lat=37.55, lng=126.92)
    # A second address without asking stays non-default
    office.refresh_from_db()
    assert not office.is_default
    # Asking for default moves it
    gym = address_create(
        customer=customer, label="헬스장", line1="c", lat=37.56, lng=126.93, is_default=True
    )
    home.refresh_from_db()
    assert gym.is_default and not home.is_default
    assert customer.addresses.filter(is_default=True).count() == 1


@pytest.mark.parametrize(
    "lat, lng, line1",
    [
        (91.0, 126.9, "a"),
        (-91.0, 126.9, "a"),
        (37.5, 181.0, "a"),
        (37.5, -181.0, "a"),
        (37.5, 126.9, "  "),
    ],
)
@pytest.mark.django_db
def test_bad_addresses_are_refused(lat, lng, line1):
    customer = CustomerProfileFactory()
    with pytest.raises(ValidationError):
        address_create(customer=customer, label="집", line1=line1, lat=lat, lng=lng)
    assert Address.objects.count() == 0


@pytest.mark.django_db
def test_the_database_allows_only_one_default_address_per_customer():
    address = AddressFactory(is_default=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        AddressFactory(customer=address.customer, is_default=True)


@pytest.mark.django_db
def test_the_database_refuses_coordinates_out_of_range():
    address = AddressFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Address.objects.filter(pk=address.pk).update(lat=95.0)


# --- Two addresses at once --------------------------------------------------------------------


def _first_in_flight(work, hold: float = 1.0) -> threading.Thread:
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


def _add(customer, label: str) -> Address:
    return address_create(
        customer=customer, label=label, line1="서울 마포구 망원로 50", lat=MAPO[0], lng=MAPO[1]
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_first_addresses_saved_at_once_give_one_default():
    # Given a customer with no address, whose first address is being saved (not yet committed)
    customer = CustomerProfileFactory()
    thread = _first_in_flight(lambda: _add(customer, "Home"))
    try:
        # When a second address is saved meanwhile (a double tap, two tabs)
        office = _add(customer, "Office")
    finally:
        thread.join()
    # Then it waited for the first and was saved after it, not as the default
    assert office.is_default is False
    addresses = Address.objects.filter(customer=customer).order_by("pk")
    assert [(a.label, a.is_default) for a in addresses] == [("Home", True), ("Office", False)]
