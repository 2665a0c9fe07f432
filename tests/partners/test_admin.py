"""Staff in the admin: add an endpoint with event types picked from the known ones (the secret is
shown once), read the delivery log with every try, and replay a delivery or an event."""

import pytest
from django.urls import reverse

from partners.models import Delivery, Endpoint, PartnerEvent
from tests.partners.conftest import deliver, emit, publish
from tests.partners.factories import (
    DeliveryAttemptFactory,
    DeliveryFactory,
    EndpointFactory,
    PartnerFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_staff_add_an_endpoint_with_event_types_and_see_its_secret_once(staff_client):
    partner = PartnerFactory()
    page = staff_client.get(reverse("admin:partners_endpoint_add"))
    assert page.status_code == 200
    assert b'value="order.handed_over"' in page.content and b'value="payout.paid"' in page.content

    answer = staff_client.post(
        reverse("admin:partners_endpoint_add"),
        {
            "partner": partner.pk,
            "url": "https://shop.example.test/hooks",
            "description": "",
            "event_types": ["order.ready", "vendor.on_shift"],
            "is_active": "on",
        },
        follow=True,
    )

    assert answer.redirect_chain, answer.content
    endpoint = Endpoint.objects.get()
    assert endpoint.event_types == ["order.ready", "vendor.on_shift"]
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret.encode() in answer.content  # the page after saving shows it ...
    change = staff_client.get(reverse("admin:partners_endpoint_change", args=[endpoint.pk]))
    assert endpoint.secret.encode() not in change.content  # ... and no page after that


def test_the_delivery_log_shows_every_try(staff_client):
    delivery = DeliveryFactory()
    DeliveryAttemptFactory(delivery=delivery, status_code=503, ok=False, response_excerpt="down")
    DeliveryAttemptFactory(delivery=delivery, status_code=200, response_excerpt="thanks")

    page = staff_client.get(reverse("admin:partners_delivery_change", args=[delivery.pk]))

    assert page.status_code == 200
    assert b"503" in page.content and b"down" in page.content and b"thanks" in page.content
    assert staff_client.get(reverse("admin:partners_delivery_changelist")).status_code == 200
    assert staff_client.get(reverse("admin:partners_partnerevent_changelist")).status_code == 200


def test_staff_replay_a_delivery(staff_client, receiver):
    EndpointFactory(url=receiver.url)
    event_id = emit()
    publish()
    deliver()
    delivery = Delivery.objects.get()

    staff_client.post(
        reverse("admin:partners_delivery_changelist"),
        {"action": "replay", "_selected_action": [delivery.pk]},
    )
    deliver()

    assert receiver.ids() == [event_id, event_id]
    delivery.refresh_from_db()
    assert delivery.round == 1 and delivery.status == Delivery.Status.DELIVERED


def test_staff_replay_an_event_to_all_subscribed_endpoints(staff_client, receiver):
    event_id = emit(type="order.cancelled")
    publish()  # no endpoint yet: stored, delivered to nobody
    EndpointFactory(url=receiver.url + "/a", event_types=["order.cancelled"])
    EndpointFactory(url=receiver.url + "/b", event_types=["order.cancelled"])
    EndpointFactory(url=receiver.url + "/c", event_types=["order.placed"])

    staff_client.post(
        reverse("admin:partners_partnerevent_changelist"),
        {
            "action": "replay_to_all",
            "_selected_action": [PartnerEvent.objects.get(event_id=event_id).pk],
        },
    )
    deliver()

    assert sorted(r.path for r in receiver.requests) == ["/hooks/a", "/hooks/b"]
