"""A wellbeing check asked for by a family member or the district office (subscriptions.wellbeing):
only the subscriber's yes turns it on; the asker never learns from us whether an address is a
subscriber's; bounded; answered once, also when two answers race on real PostgreSQL connections."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from o2o.effects import effects_run
from subscriptions.models import Subscription, WellbeingRequest
from subscriptions.wellbeing import wellbeing_request_answer, wellbeing_request_make
from tests.factories import CustomerProfileFactory
from tests.subscriptions.factories import SubscriptionFactory, WellbeingRequestFactory
from tests.subscriptions.test_races_and_admin import race

R = WellbeingRequest.Status
ASK = {
    "requester_name": "Kim Minji",
    "requester_email": "minji@example.test",
    "relation": "family",
    "message": "Mum lives alone.",
}


def subscriber():
    sub = SubscriptionFactory()
    return sub, sub.customer


def sent_to(address):
    return [m for m in mail.outbox if address in m.to]


@pytest.mark.django_db
def test_asking_for_a_subscriber_sends_them_a_link_and_changes_nothing_yet():
    sub, customer = subscriber()
    ask = wellbeing_request_make(subscriber_email=customer.user.email.upper(), **ASK)
    assert ask is not None and ask.status == R.PENDING and ask.customer == customer
    effects_run(kinds=["subscription.wellbeing_request_email"])
    [email] = sent_to(customer.user.email)
    assert "Kim Minji" in email.subject and f"/subscriptions/wellbeing/{ask.token}/" in email.body
    sub.refresh_from_db()
    assert not sub.wellbeing_check and sub.wellbeing_consent_at is None


@pytest.mark.django_db
def test_the_asker_gets_the_same_answer_whether_or_not_the_address_is_a_subscribers():
    _sub, customer = subscriber()
    no_subscription = CustomerProfileFactory()
    client = Client()
    answers = []
    for address in (customer.user.email, "nobody@example.test", no_subscription.user.email):
        response = client.post("/api/wellbeing/requests/", {"subscriber_email": address, **ASK})
        answers.append((response.status_code, response.json()))
        page = client.post("/subscriptions/wellbeing/ask/", {"subscriber_email": address, **ASK})
        assert page.status_code == 302 and page["Location"].endswith("/wellbeing/ask/sent/")
        sent = client.get(page["Location"]).content.decode()
        assert "we have asked them" in sent and address in sent
    assert answers[0] == answers[1] == answers[2] and answers[0][0] == 202
    # Only the subscriber with a live subscription was asked (twice: page and API)
    assert WellbeingRequest.objects.filter(customer=customer).count() == 2
    assert WellbeingRequest.objects.count() == 2


@pytest.mark.django_db
def test_requests_are_bounded_per_subscriber_and_per_asker(settings):
    settings.WELLBEING_REQUESTS_PER_DAY = 2
    _sub, customer = subscriber()
    made = [wellbeing_request_make(subscriber_email=customer.user.email, **ASK) for _ in range(4)]
    assert [m is not None for m in made] == [True, True, False, False]
    # A day later, one more may come
    WellbeingRequest.objects.update(created_at=timezone.now() - timedelta(days=1, minutes=1))
    assert wellbeing_request_make(subscriber_email=customer.user.email, **ASK) is not None


@pytest.mark.django_db
def test_bad_input_is_refused_with_a_message():
    _sub, customer = subscriber()
    email = customer.user.email
    with pytest.raises(ValidationError, match="valid e-mail"):
        wellbeing_request_make(subscriber_email="not an address", **ASK)
    with pytest.raises(ValidationError, match="how you know them"):
        wellbeing_request_make(subscriber_email=email, **{**ASK, "relation": "boss"})
    with pytest.raises(ValidationError, match="themselves"):
        wellbeing_request_make(subscriber_email=email, **{**ASK, "requester_email": email})
    response = Client().post("/api/wellbeing/requests/", {"subscriber_email": "x", **ASK})
    assert response.status_code == 400
    assert "subscriber_email" in response.json()["error"]["fields"]
    page = Client().post("/subscriptions/wellbeing/ask/", {"subscriber_email": email})
    assert page.status_code == 200 and "This field is required" in page.content.decode()


@pytest.mark.django_db
def test_the_subscribers_yes_turns_the_check_on_with_the_asker_as_contact():
    sub, customer = subscriber()
    ask = WellbeingRequestFactory(customer=customer, relation="district")
    client = Client()
    client.force_login(customer.user)
    page = client.get(f"/subscriptions/wellbeing/{ask.token}/")
    assert page.status_code == 200 and "Kim Minji" in page.content.decode()
    done = client.post(
        f"/subscriptions/wellbeing/{ask.token}/", {"answer": "agree", "subscription": sub.pk}
    )
    assert done.status_code == 302 and done["Location"].endswith(f"/subscriptions/{sub.pk}/")
    sub.refresh_from_db()
    assert sub.wellbeing_check and sub.wellbeing_contact_email == ask.requester_email
    assert sub.wellbeing_contact_name == "Kim Minji" and sub.wellbeing_consent_at is not None
    ask.refresh_from_db()
    assert (ask.status, ask.subscription_id) == (R.ACCEPTED, sub.pk)
    effects_run(kinds=["subscription.wellbeing_request_email"])
    [told] = sent_to(ask.requester_email)
    assert "agreed" in told.body and sub.address.line1 not in told.body
    # Once: a second answer is refused with why, on the API too
    again = client.post(
        f"/api/wellbeing/requests/{ask.token}/", {"agree": False}, content_type="application/json"
    )
    assert again.status_code == 400 and "answered" in again.json()["error"]["message"]


@pytest.mark.django_db
def test_a_no_changes_nothing_and_the_asker_is_not_told():
    sub, customer = subscriber()
    ask = WellbeingRequestFactory(customer=customer)
    client = Client()
    client.force_login(customer.user)
    response = client.post(
        f"/api/wellbeing/requests/{ask.token}/", {"agree": False}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["status"] == "declined"
    sub.refresh_from_db()
    assert not sub.wellbeing_check
    effects_run(kinds=["subscription.wellbeing_request_email"])
    assert sent_to(ask.requester_email) == []


@pytest.mark.django_db
def test_only_the_subscriber_answers_for_their_own_subscription_within_the_time():
    sub, customer = subscriber()
    other_sub, other = subscriber()
    ask = WellbeingRequestFactory(customer=customer)
    # Someone else's request is not found (page and API)
    client = Client()
    client.force_login(other.user)
    assert client.get(f"/subscriptions/wellbeing/{ask.token}/").status_code == 404
    assert client.get(f"/api/wellbeing/requests/{ask.token}/").status_code == 404
    # Agreeing for a subscription that is not theirs, or none, is refused
    for subscription_id in (other_sub.pk, None):
        with pytest.raises(ValidationError, match="Choose one of your subscriptions"):
            wellbeing_request_answer(
                token=ask.token, customer=customer, agree=True, subscription_id=subscription_id
            )
    other_sub.refresh_from_db()
    assert not other_sub.wellbeing_check
    # Too late
    WellbeingRequest.objects.filter(pk=ask.pk).update(
        created_at=timezone.now() - timedelta(days=15)
    )
    with pytest.raises(ValidationError, match="expired"):
        wellbeing_request_answer(
            token=ask.token, customer=customer, agree=True, subscription_id=sub.pk
        )
    # Signed out: to the login page
    assert Client().get(f"/subscriptions/wellbeing/{ask.token}/").status_code == 302


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_yes_and_a_no_at_once_have_one_outcome():
    sub, customer = subscriber()
    ask = WellbeingRequestFactory(customer=customer)
    outcomes = race(
        lambda: wellbeing_request_answer(
            token=ask.token, customer=customer, agree=True, subscription_id=sub.pk
        ),
        lambda: wellbeing_request_answer(token=ask.token, customer=customer, agree=False),
    )
    refused = [o for o in outcomes if isinstance(o, ValidationError)]
    assert len(refused) == 1
    ask.refresh_from_db()
    sub.refresh_from_db()
    # The check is on exactly when the yes won
    assert sub.wellbeing_check == (ask.status == R.ACCEPTED)
    assert Subscription.objects.filter(wellbeing_check=True).count() == int(
        ask.status == R.ACCEPTED
    )
