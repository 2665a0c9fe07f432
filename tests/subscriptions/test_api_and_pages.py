"""The API and the pages: a customer sees and changes only their own subscriptions."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from subscriptions.models import Subscription
from tests.factories import AddressFactory, CustomerProfileFactory
from tests.subscriptions.factories import (
    SavedCardFactory,
    SubscriptionFactory,
    SubscriptionItemFactory,
    stocked,
    working_vendor,
)

pytestmark = pytest.mark.django_db


def next_monday():
    day = timezone.localdate() + timedelta(days=1)
    while day.weekday() != 0:
        day += timedelta(days=1)
    return day


@pytest.fixture
def mine():
    sub = SubscriptionFactory(starts_on=next_monday(), weekdays=0b1, plan="commit_3m")
    SubscriptionItemFactory(subscription=sub, quantity=2, unit_price=1200)
    return sub


def test_api_create_list_and_detail(api):
    vendor = working_vendor()
    product = stocked(vendor, price=1500)
    customer = CustomerProfileFactory()
    address = AddressFactory(customer=customer)
    SavedCardFactory(customer=customer)  # the default card, charged for each delivery
    api.force_authenticate(customer.user)
    body = {
        "vendor": vendor.slug,
        "address_id": address.pk,
        "plan": "commit_6m",
        "items": [{"product_id": product.pk, "quantity": 2}],
        "starts_on": next_monday().isoformat(),
        "weekdays": [0, 3],
    }
    created = api.post("/api/subscriptions/", body, format="json")
    assert created.status_code == 201, created.content
    data = created.json()
    # 2 × 1500 = 3000; 10% = 300; + delivery fee 1000
    assert data["upcoming"][0] == {
        "date": next_monday().isoformat(),
        "items": 3000,
        "discount": 300,
        "delivery_fee": 1000,
        "total": 3700,
    }
    assert data["weekdays"] == [0, 3]
    assert data["cancellation_fee_quote"] > 0
    listed = api.get("/api/subscriptions/").json()
    assert [s["id"] for s in listed] == [data["id"]]


def test_api_bad_input_is_a_400_with_a_message(api):
    vendor = working_vendor()
    product = stocked(vendor)
    customer = CustomerProfileFactory()
    address = AddressFactory(customer=customer)
    SavedCardFactory(customer=customer)  # the default card, charged for each delivery
    api.force_authenticate(customer.user)
    body = {
        "vendor": vendor.slug,
        "address_id": address.pk,
        "plan": "anytime",
        "items": [{"product_id": product.pk, "quantity": 1}],
        "starts_on": next_monday().isoformat(),
        "weekdays": [6],
    }
    response = api.post("/api/subscriptions/", body, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "does not work" in response.content.decode(), response.content.decode()


def test_api_actions_on_own(api, mine):
    api.force_authenticate(mine.customer.user)
    url = f"/api/subscriptions/{mine.pk}/"
    assert api.post(url + "skip/", {"date": mine.starts_on.isoformat()}).status_code == 200
    assert api.post(url + "skip/", {"date": mine.starts_on.isoformat()}).status_code == 200
    paused = api.post(url + "pause/", {"until": (mine.starts_on + timedelta(days=14)).isoformat()})
    assert paused.json()["status"] == "paused"
    assert api.post(url + "pause/", {}).status_code == 400
    assert api.post(url + "resume/").json()["status"] == "active"
    quote = api.get(url).json()["cancellation_fee_quote"]
    cancelled = api.post(url + "cancel/").json()
    assert (cancelled["status"], cancelled["cancellation_fee"]) == ("cancelled", quote)


@pytest.mark.parametrize("action", ["", "pause/", "resume/", "skip/", "cancel/"])
def test_api_someone_elses_is_a_404(api, mine, action):
    api.force_authenticate(CustomerProfileFactory().user)
    url = f"/api/subscriptions/{mine.pk}/{action}"
    response = api.get(url) if not action else api.post(url, {"date": "2030-01-07"})
    assert response.status_code == 404
    mine.refresh_from_db()
    assert mine.status == Subscription.Status.ACTIVE


def test_api_needs_a_login(api, mine):
    assert api.get("/api/subscriptions/").status_code in (401, 403)


def test_pages_show_own_and_404_otherwise(client, mine):
    client.force_login(mine.customer.user)
    listing = client.get(reverse("subscriptions:list"))
    assert listing.status_code == 200
    assert mine.vendor.name in listing.content.decode()
    detail = client.get(reverse("subscriptions:detail", args=[mine.pk]))
    assert detail.status_code == 200
    assert detail.context["fee"] > 0
    client.force_login(CustomerProfileFactory().user)
    assert client.get(reverse("subscriptions:detail", args=[mine.pk])).status_code == 404
    cancel = reverse("subscriptions:action", args=[mine.pk, "cancel"])
    assert client.post(cancel).status_code == 404
    mine.refresh_from_db()
    assert mine.status == Subscription.Status.ACTIVE


def test_page_actions_go_through_the_services(client, mine):
    client.force_login(mine.customer.user)
    url = lambda action: reverse("subscriptions:action", args=[mine.pk, action])  # noqa: E731
    client.post(url("skip"), {"date": mine.starts_on.isoformat()})
    assert mine.skips.filter(date=mine.starts_on).exists()
    client.post(url("pause"), {"until": ""})
    mine.refresh_from_db()
    assert mine.status == "paused" and mine.paused_until is None
    client.post(url("resume"))
    response = client.post(url("cancel"), follow=True)
    mine.refresh_from_db()
    assert mine.status == "cancelled"
    assert response.status_code == 200


def test_new_page_subscribes(client):
    vendor = working_vendor()
    product = stocked(vendor)
    customer = CustomerProfileFactory()
    address = AddressFactory(customer=customer)
    SavedCardFactory(customer=customer)  # the default card, charged for each delivery
    client.force_login(customer.user)
    url = reverse("subscriptions:new") + f"?vendor={vendor.slug}"
    assert client.get(url).status_code == 200
    bad = client.post(
        url,
        {
            "address": address.pk,
            "plan": "anytime",
            "starts_on": "2020-01-01",
            "weekdays": ["0"],
            f"qty_{product.pk}": "1",
            "shortage_policy": "skip",
            "not_at_home_policy": "door",
        },
    )
    assert bad.status_code == 200 and not Subscription.objects.exists()
    good = client.post(
        url,
        {
            "address": address.pk,
            "plan": "anytime",
            "starts_on": next_monday().isoformat(),
            "weekdays": ["0", "2"],
            f"qty_{product.pk}": "2",
            "shortage_policy": "skip",
            "not_at_home_policy": "door",
        },
    )
    sub = Subscription.objects.get()
    assert good.status_code == 302 and sub.weekday_list == [0, 2]
    assert client.get(reverse("subscriptions:new")).status_code == 200  # choose a cart


def test_the_list_costs_the_same_queries_for_one_or_many(api, mine, django_assert_num_queries):
    # Given a customer with five subscriptions at five vendors
    for _ in range(4):
        sub = SubscriptionFactory(customer=mine.customer, starts_on=mine.starts_on)
        SubscriptionItemFactory(subscription=sub)
    api.force_authenticate(mine.customer.user)
    # Then the list reads them in five queries, however many: the subscriptions (with vendor and
    # address), their items, their skips, the vendors' hours and which were delivered today
    with django_assert_num_queries(5):
        rows = api.get("/api/subscriptions/").json()
    assert len(rows) == 5 and all(len(r["upcoming"]) == 6 for r in rows)


def test_api_change_says_which_deliveries_it_affects(api, mine):
    api.force_authenticate(mine.customer.user)
    response = api.patch(f"/api/subscriptions/{mine.pk}/", {"weekdays": [2]}, format="json")
    assert response.status_code == 200, response.content
    change = response.json()["change"]
    assert change["effective_from"] == mine.starts_on.isoformat()
    assert change["removed"][0] == mine.starts_on.isoformat()
    assert change["added"][0] == (mine.starts_on + timedelta(days=2)).isoformat()
    assert response.json()["weekdays"] == [2]
    other = CustomerProfileFactory().user
    api.force_authenticate(other)
    assert (
        api.patch(f"/api/subscriptions/{mine.pk}/", {"weekdays": [1]}, format="json").status_code
        == 404
    )
