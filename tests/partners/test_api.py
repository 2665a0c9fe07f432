"""The partner API: a partner's owner manages its own endpoints only (anyone else's is a 404), sees
a secret once, reads its delivery log; a pickup-point partner lists what waits at its point and
hands an order over with the customer's code, through the same guarded hand-over as the vendor."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from o2o.models import Effect
from orders.models import Order, Status
from orders.services import Receive, order_accept, order_ready
from partners.models import Endpoint
from tests.factories import CustomerProfileFactory
from tests.orders.factories import always_open_point, place_paid, stock_up, vendor_on_shift
from tests.partners.factories import (
    DeliveryAttemptFactory,
    DeliveryFactory,
    EndpointFactory,
    PartnerFactory,
)

pytestmark = pytest.mark.django_db

ENDPOINTS = reverse("api-partner-endpoints")
DELIVERIES = reverse("api-partner-deliveries")
ORDERS = reverse("api-partner-orders")


def endpoint_url(endpoint_id: int, action: str = "") -> str:
    if action:
        return reverse("api-partner-endpoint-rotate-secret", args=[endpoint_id])
    return reverse("api-partner-endpoint", args=[endpoint_id])


def collect_url(order_id: int) -> str:
    return reverse("api-partner-order-collect", args=[order_id])


def as_user(user) -> APIClient:
    client = APIClient(headers={"accept-language": "en"})
    client.force_authenticate(user)
    return client


@pytest.fixture
def partner():
    return PartnerFactory()


@pytest.fixture
def owner(partner) -> APIClient:
    return as_user(partner.owner)


def all_keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in all_keys(v)}
    return set()


# --- endpoints ----------------------------------------------------------------------------------


def test_the_secret_is_shown_once_on_create_and_never_again(partner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=partner.owner).key}")

    created = client.post(
        ENDPOINTS,
        {"url": "https://books.example.test/o2o", "event_types": ["order.placed", "payout.paid"]},
        format="json",
    )

    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    endpoint = Endpoint.objects.get(pk=created.json()["id"])
    assert endpoint.partner == partner and endpoint.secret == secret
    assert endpoint.event_types == ["order.placed", "payout.paid"]
    listed = client.get(ENDPOINTS).json()
    detail = client.get(endpoint_url(endpoint.pk)).json()
    for answer in (listed, detail):
        assert "secret" not in all_keys(answer)
        assert secret not in str(answer)


def test_an_owner_updates_and_deletes_their_endpoint(owner, partner):
    endpoint = EndpointFactory(partner=partner, event_types=["order.placed"])

    changed = owner.patch(
        endpoint_url(endpoint.pk),
        {"event_types": ["order.ready", "order.handed_over"], "description": "till 2"},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["event_types"] == ["order.ready", "order.handed_over"]
    assert changed.json()["description"] == "till 2"

    assert owner.delete(endpoint_url(endpoint.pk)).status_code == 204
    assert not Endpoint.objects.filter(pk=endpoint.pk).exists()


def test_another_partners_endpoint_is_not_found(owner):
    theirs = EndpointFactory(event_types=["order.placed"])
    url = theirs.url

    assert owner.get(endpoint_url(theirs.pk)).status_code == 404
    assert (
        owner.patch(endpoint_url(theirs.pk), {"url": "https://evil.example.test/"}).status_code
        == 404
    )
    assert owner.post(endpoint_url(theirs.pk, "rotate")).status_code == 404
    assert owner.delete(endpoint_url(theirs.pk)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.url == url and theirs.previous_secret == ""
    assert owner.get(ENDPOINTS).json()["results"] == []
    # Nor can an endpoint be created for someone else's partner.
    answer = owner.post(
        ENDPOINTS,
        {
            "partner": theirs.partner_id,
            "url": "https://x.example.test/",
            "event_types": ["order.placed"],
        },
        format="json",
    )
    assert answer.status_code == 400 and "partner" in answer.json()["error"]["fields"]


def test_only_partners_may_use_the_partner_api():
    customer = CustomerProfileFactory().user
    assert APIClient().get(ENDPOINTS).status_code == 401
    assert as_user(customer).get(ENDPOINTS).status_code == 403
    assert as_user(customer).get(ORDERS).status_code == 403
    assert as_user(PartnerFactory(is_active=False).owner).get(ENDPOINTS).status_code == 403


def test_unknown_event_types_and_private_urls_are_refused(owner, settings):
    settings.PARTNER_ALLOW_PRIVATE_URLS = False
    unknown = owner.post(
        ENDPOINTS,
        {"url": "https://8.8.8.8/hooks", "event_types": ["order.teleported"]},
        format="json",
    )
    assert unknown.status_code == 400 and "event_types" in unknown.json()["error"]["fields"]

    for url in ("http://127.0.0.1:9000/hooks", "http://10.0.0.7/hooks", "ftp://8.8.8.8/x"):
        inside = owner.post(ENDPOINTS, {"url": url, "event_types": ["order.placed"]}, format="json")
        assert inside.status_code == 400, url
        assert "url" in inside.json()["error"]["fields"]
    assert not Endpoint.objects.exists()


def test_rotating_the_secret_keeps_the_old_one_for_a_while(owner, partner):
    endpoint = EndpointFactory(partner=partner)
    old = endpoint.secret

    answer = owner.post(endpoint_url(endpoint.pk, "rotate"))

    assert answer.status_code == 200
    new = answer.json()["secret"]
    endpoint.refresh_from_db()
    assert (endpoint.secret, endpoint.previous_secret) == (new, old)
    assert endpoint.previous_secret_until > timezone.now() + timedelta(hours=23)


def test_an_owner_turns_a_disabled_endpoint_on_again(owner, partner):
    endpoint = EndpointFactory(
        partner=partner, is_active=False, disabled_at=timezone.now(), failing_since=timezone.now()
    )
    answer = owner.patch(endpoint_url(endpoint.pk), {"is_active": True}, format="json")
    assert answer.status_code == 200
    assert answer.json()["is_active"] is True and answer.json()["failing_since"] is None


# --- the delivery log ---------------------------------------------------------------------------


def test_the_delivery_log_shows_own_deliveries_with_every_try(
    owner, partner, django_assert_num_queries
):
    mine = EndpointFactory(partner=partner)
    for _ in range(3):
        delivery = DeliveryFactory(endpoint=mine)
        DeliveryAttemptFactory(delivery=delivery, status_code=500, ok=False)
        DeliveryAttemptFactory(delivery=delivery, status_code=200)
    DeliveryFactory()  # someone else's

    # partner check, count, page, the tries of the page
    with django_assert_num_queries(4):
        answer = owner.get(DELIVERIES)

    rows = answer.json()["results"]
    assert answer.json()["count"] == 3
    assert {row["endpoint"] for row in rows} == {mine.pk}
    assert [t["status_code"] for t in rows[0]["attempt_log"]] == [500, 200]
    assert set(rows[0]["attempt_log"][0]) == {
        "started_at",
        "duration_ms",
        "status_code",
        "response_excerpt",
        "error",
        "ok",
    }
    assert owner.get(DELIVERIES, {"endpoint": mine.pk, "status": "failed"}).json()["count"] == 0


# --- a pickup-point partner -----------------------------------------------------------------------


def ready_pickup_order(point) -> Order:
    vendor = vendor_on_shift()
    [product] = stock_up(vendor, 10)
    start = timezone.now() + timedelta(minutes=30)
    order = place_paid(
        customer=CustomerProfileFactory(),
        vendor=vendor,
        items=[(product, 2)],
        receive=Receive(
            fulfilment="pickup",
            pickup_point_id=point.pk,
            window_start=start,
            window_end=start + timedelta(hours=1),
        ),
    )
    order_accept(order_id=order.pk, vendor=vendor, eta_minutes=20)
    return order_ready(order_id=order.pk, vendor=vendor)


@pytest.fixture
def point():
    return always_open_point()


@pytest.fixture
def shopkeeper(point) -> APIClient:
    return as_user(PartnerFactory(pickup_point=point).owner)


def test_a_point_sees_what_waits_there_and_nothing_about_who_ordered(
    shopkeeper, point, django_assert_num_queries
):
    waiting = [ready_pickup_order(point), ready_pickup_order(point)]
    ready_pickup_order(always_open_point())  # at another point

    # partner check, its points, count, page, the lines of the page
    with django_assert_num_queries(5):
        answer = shopkeeper.get(ORDERS)

    assert answer.status_code == 200
    rows = answer.json()["results"]
    assert sorted(row["id"] for row in rows) == sorted(o.pk for o in waiting)
    row = rows[0]
    assert row["number"] == f"#{row['id']}" and row["status"] == "ready"
    assert row["lines"][0]["quantity"] == 2
    assert all_keys(row) == {
        "id",
        "number",
        "status",
        "vendor_name",
        "pickup_point",
        "hold_until",
        "lines",
        "name_ko",
        "name_en",
        "quantity",
    }
    order = waiting[0]
    for secret in (order.handover_code, order.customer.user.email, order.customer.phone):
        assert secret not in answer.content.decode()


def test_the_right_code_hands_the_order_over_and_the_capture_follows(shopkeeper, point):
    order = ready_pickup_order(point)

    answer = shopkeeper.post(collect_url(order.pk), {"code": order.handover_code}, format="json")

    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "handed_over"
    order.refresh_from_db()
    assert order.status == Status.HANDED_OVER and order.handed_over_at is not None
    assert Effect.objects.filter(key=f"order:{order.pk}:capture").exists()
    # Collected once: a second try is a conflict, not a second hand-over.
    again = shopkeeper.post(collect_url(order.pk), {"code": order.handover_code}, format="json")
    assert again.status_code == 409


def test_a_wrong_code_is_refused(shopkeeper, point):
    order = ready_pickup_order(point)
    wrong = "0000" if order.handover_code != "0000" else "1111"

    answer = shopkeeper.post(collect_url(order.pk), {"code": wrong}, format="json")

    assert answer.status_code == 400
    assert "code" in answer.json()["error"]["fields"]
    order.refresh_from_db()
    assert order.status == Status.READY
    assert not Effect.objects.filter(key=f"order:{order.pk}:capture").exists()


def test_another_points_order_is_not_found(shopkeeper):
    elsewhere = ready_pickup_order(always_open_point())

    answer = shopkeeper.post(
        collect_url(elsewhere.pk), {"code": elsewhere.handover_code}, format="json"
    )

    assert answer.status_code == 404
    elsewhere.refresh_from_db()
    assert elsewhere.status == Status.READY


def test_a_partner_without_a_point_has_no_orders(point):
    order = ready_pickup_order(point)
    accountant = as_user(PartnerFactory().owner)

    assert accountant.get(ORDERS).json()["results"] == []
    answer = accountant.post(collect_url(order.pk), {"code": order.handover_code}, format="json")
    assert answer.status_code == 404
