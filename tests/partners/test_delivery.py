"""Delivering partner events to a real HTTP server on 127.0.0.1: signatures the Standard Webhooks
reference code verifies (also across a secret rotation), Svix's retry schedule, ordering per
aggregate, replays, disabling an endpoint that keeps failing, and what is read of an answer."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from o2o.effects import EVENT_KIND, effects_run
from o2o.models import Effect
from partners import services
from partners.effects import SCHEDULE
from partners.models import Delivery, Endpoint, PartnerEvent
from partners.services import DELIVER_KIND
from tests.partners.conftest import Answer, deliver, emit, publish, send_emails
from tests.partners.factories import EndpointFactory

pytestmark = pytest.mark.django_db


def delivery_of(event_id: str, endpoint: Endpoint | None = None) -> Delivery:
    deliveries = Delivery.objects.filter(event__event_id=event_id)
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint=endpoint)
    return deliveries.get()


def effect_of(delivery: Delivery) -> Effect:
    delivery.refresh_from_db()
    return Effect.objects.get(key=delivery.effect_key)


# --- signatures -----------------------------------------------------------------------------------


def test_the_reference_code_verifies_what_is_sent(receiver):
    endpoint = EndpointFactory(url=receiver.url)
    event_id = emit(type="order.ready", aggregate_id=42_001, data={"order_id": 42_001})
    publish()
    deliver()

    [got] = receiver.requests
    assert got.headers["webhook-id"] == event_id
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-signature"].startswith("v1,")
    body = Webhook(endpoint.secret).verify(got.body, got.headers)
    assert body == {
        "id": event_id,
        "type": "order.ready",
        "timestamp": PartnerEvent.objects.get(event_id=event_id).occurred_at.isoformat(),
        "sequence": 1,
        "aggregate": {"type": "order", "id": 42_001},
        "data": {"order_id": 42_001},
    }
    # A changed body, or another secret, does not verify.
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(got.body.replace(b"42001", b"42002"), got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(EndpointFactory().secret).verify(got.body, got.headers)
    assert delivery_of(event_id).status == Delivery.Status.DELIVERED


def test_during_a_rotation_both_secrets_sign_and_either_verifies(receiver):
    endpoint = EndpointFactory(url=receiver.url)
    old = endpoint.secret
    new = services.endpoint_rotate_secret(endpoint_id=endpoint.pk)
    assert new != old and new.startswith("whsec_")

    emit()
    publish()
    deliver()

    [got] = receiver.requests
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(got.body, got.headers)
    assert Webhook(new).verify(got.body, got.headers)

    # Once the overlap is over, only the new secret signs.
    Endpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_until=timezone.now() - timedelta(seconds=1)
    )
    emit()
    publish()
    deliver()
    latest = receiver.requests[-1]
    assert len(latest.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(new).verify(latest.body, latest.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(latest.body, latest.headers)


# --- fan-out ---------------------------------------------------------------------------------------


def test_an_event_goes_to_the_active_endpoints_subscribed_to_its_type_once(receiver):
    wants = EndpointFactory(url=receiver.url + "/a", event_types=["order.ready"])
    EndpointFactory(url=receiver.url + "/b", event_types=["order.placed"])
    EndpointFactory(url=receiver.url + "/c", is_active=False)
    EndpointFactory(url=receiver.url + "/d", partner__is_active=False)

    event_id = emit(type="order.ready")
    publish()
    # The publish effect running again (at least once) adds nothing.
    services.event_publish(event=Effect.objects.get(key=event_id).payload)
    deliver()

    assert [r.path for r in receiver.requests] == ["/hooks/a"]
    assert list(Delivery.objects.values_list("endpoint", flat=True)) == [wants.pk]
    assert PartnerEvent.objects.filter(event_id=event_id).count() == 1


# --- the retry schedule ------------------------------------------------------------------------


def test_retries_follow_svix_schedule_and_give_up_after_the_last(receiver):
    receiver.default = Answer(status=500, body=b"boom")
    EndpointFactory(url=receiver.url)
    event_id = emit()
    publish()
    deliver()  # the first try, at once
    delivery = delivery_of(event_id)

    gaps = []
    for _ in range(len(SCHEDULE)):
        effect = effect_of(delivery)
        tried = effect.tries.order_by("-number").first()
        gaps.append((effect.next_attempt_at - tried.finished_at).total_seconds())
        # Not a moment early ...
        assert deliver(now=effect.next_attempt_at - timedelta(seconds=1))["retry"] == 0
        # ... and then it runs.
        deliver(now=effect.next_attempt_at)

    assert gaps == [5, 300, 1800, 7200, 18000, 36000, 36000]
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.attempts == 8 == len(receiver.requests)
    assert {a.status_code for a in delivery.attempt_log.all()} == {500}
    assert delivery.attempt_log.first().response_excerpt == "boom"
    # Given up: recorded in the delivery log, the effect is finished, nothing more is sent.
    assert effect_of(delivery).status == Effect.Status.DONE
    deliver(now=timezone.now() + timedelta(days=30))
    assert len(receiver.requests) == 8


def test_a_success_on_a_retry_ends_the_delivery_and_clears_the_failure(receiver):
    receiver.answers = [Answer(status=503), Answer(status=204, body=b"")]
    endpoint = EndpointFactory(url=receiver.url)
    event_id = emit()
    publish()
    deliver()
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None

    deliver(now=effect_of(delivery_of(event_id)).next_attempt_at)

    delivery = delivery_of(event_id)
    assert delivery.status == Delivery.Status.DELIVERED
    assert [a.status_code for a in delivery.attempt_log.all()] == [503, 204]
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.last_success_at is not None


# --- ordering per aggregate ---------------------------------------------------------------------


def test_event_2_waits_for_event_1_of_the_same_order_even_when_1_fails_first(receiver):
    receiver.answers = [Answer(status=500)]  # the first request fails, then all succeed
    EndpointFactory(url=receiver.url)
    first = emit(aggregate_id=5001)
    second = emit(aggregate_id=5001)
    publish()

    deliver()
    assert receiver.ids() == [first]
    assert delivery_of(second).status == Delivery.Status.PENDING
    assert delivery_of(second).attempts == 0  # waiting is not a try

    deliver(now=effect_of(delivery_of(first)).next_attempt_at)

    assert receiver.ids() == [first, first, second]
    assert [r.json["sequence"] for r in receiver.requests] == [1, 1, 2]
    assert delivery_of(second).status == Delivery.Status.DELIVERED


def test_a_delivery_waits_for_an_earlier_event_not_yet_published(receiver):
    EndpointFactory(url=receiver.url)
    first = emit(aggregate_id=5002)
    second = emit(aggregate_id=5002)
    effects_run(keys=[second])  # the later event's publish happens to run first

    deliver()
    assert receiver.ids() == []

    publish()
    deliver()
    assert receiver.ids() == [first, second]


def test_other_aggregates_and_other_endpoints_do_not_wait(receiver):
    receiver.respond = lambda got: 500 if got.path == "/hooks/down" else 200
    down = EndpointFactory(url=receiver.url + "/down")
    up = EndpointFactory(url=receiver.url + "/up")
    a1 = emit(aggregate_id=6001)
    b1 = emit(aggregate_id=6002)
    a2 = emit(aggregate_id=6001)
    publish()

    deliver()

    sent_up = [r.id for r in receiver.requests if r.path == "/hooks/up"]
    sent_down = [r.id for r in receiver.requests if r.path == "/hooks/down"]
    # Each aggregate in order (a2 may go right after a1: the next one waiting runs at once)
    assert sorted(sent_up) == sorted([a1, b1, a2])
    assert sent_up.index(a1) < sent_up.index(a2)
    assert sorted(sent_down) == sorted([a1, b1])  # a2 waits for a1 on the failing endpoint
    assert delivery_of(a2, down).attempts == 0
    assert delivery_of(a2, up).status == Delivery.Status.DELIVERED


def test_a_given_up_delivery_lets_the_next_one_go(receiver):
    receiver.respond = lambda got: 500 if got.json["sequence"] == 1 else 200
    EndpointFactory(url=receiver.url)
    first = emit(aggregate_id=6101)
    second = emit(aggregate_id=6101)
    publish()
    deliver()
    for _ in SCHEDULE:
        deliver(now=effect_of(delivery_of(first)).next_attempt_at)

    assert delivery_of(first).status == Delivery.Status.FAILED
    assert delivery_of(second).status == Delivery.Status.DELIVERED
    assert receiver.ids() == [first] * 8 + [second]


# --- replay ---------------------------------------------------------------------------------------


def test_replaying_a_delivery_sends_the_same_event_again(receiver):
    endpoint = EndpointFactory(url=receiver.url)
    event_id = emit()
    publish()
    deliver()
    delivery = delivery_of(event_id)

    services.delivery_replay(delivery_id=delivery.pk)
    deliver()

    assert receiver.ids() == [event_id, event_id]
    assert Webhook(endpoint.secret).verify(receiver.requests[1].body, receiver.requests[1].headers)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.round, delivery.attempts) == (Delivery.Status.DELIVERED, 1, 2)
    assert [a.round for a in delivery.attempt_log.all()] == [0, 1]


def test_a_replay_supersedes_the_round_still_retrying(receiver):
    receiver.answers = [Answer(status=500)]
    EndpointFactory(url=receiver.url)
    event_id = emit()
    publish()
    deliver()
    old_round = effect_of(delivery_of(event_id))

    services.delivery_replay(delivery_id=delivery_of(event_id).pk)
    deliver(now=old_round.next_attempt_at)  # both rounds' effects are due

    assert receiver.ids() == [event_id, event_id]  # sent once more, not twice
    assert delivery_of(event_id).status == Delivery.Status.DELIVERED


def test_replaying_an_event_reaches_every_subscribed_endpoint_even_new_ones(receiver):
    first = EndpointFactory(url=receiver.url + "/first")
    event_id = emit(type="order.ready")
    publish()
    deliver()
    later = EndpointFactory(url=receiver.url + "/later", event_types=["order.ready"])
    EndpointFactory(url=receiver.url + "/other", event_types=["order.placed"])

    count = services.event_replay(event_id=PartnerEvent.objects.get(event_id=event_id).pk)
    deliver()

    assert count == 2
    assert [r.path for r in receiver.requests] == ["/hooks/first", "/hooks/first", "/hooks/later"]
    assert delivery_of(event_id, first).round == 1
    assert delivery_of(event_id, later).status == Delivery.Status.DELIVERED


def test_a_delivery_of_a_disabled_endpoint_is_not_replayed(receiver):
    endpoint = EndpointFactory(url=receiver.url)
    event_id = emit()
    publish()
    Endpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    deliver()
    assert receiver.requests == []
    assert delivery_of(event_id).status == Delivery.Status.FAILED

    with pytest.raises(services.ValidationError):
        services.delivery_replay(delivery_id=delivery_of(event_id).pk)


# --- disabling an endpoint that keeps failing ----------------------------------------------------


def test_an_endpoint_failing_for_days_is_disabled_and_its_owner_told_once(receiver):
    receiver.default = Answer(status=503)
    endpoint = EndpointFactory(
        url=receiver.url, failing_since=timezone.now() - timedelta(days=5, minutes=1)
    )
    first = emit(aggregate_id=7001)
    emit(aggregate_id=7001)
    publish()

    deliver()

    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_at is not None
    # Its pending deliveries are given up; nothing more goes out.
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.FAILED}
    assert receiver.ids() == [first]
    send_emails()
    [message] = mail.outbox
    assert message.to == [endpoint.partner.owner.email]
    assert endpoint.url in message.body

    emit()
    publish()
    deliver(now=timezone.now() + timedelta(days=1))
    send_emails()
    assert receiver.ids() == [first]
    assert not Delivery.objects.filter(status=Delivery.Status.PENDING).exists()
    assert len(mail.outbox) == 1


def test_an_endpoint_failing_for_less_than_the_setting_stays_on(receiver, settings):
    settings.PARTNER_DISABLE_AFTER_DAYS = 5
    receiver.default = Answer(status=503)
    endpoint = EndpointFactory(url=receiver.url, failing_since=timezone.now() - timedelta(days=4))
    emit()
    publish()
    deliver()

    endpoint.refresh_from_db()
    assert endpoint.is_active
    send_emails()
    assert mail.outbox == []


def test_turning_a_disabled_endpoint_on_again_clears_its_failure(receiver):
    endpoint = EndpointFactory(
        url=receiver.url,
        is_active=False,
        disabled_at=timezone.now(),
        failing_since=timezone.now() - timedelta(days=6),
    )
    services.endpoint_update(endpoint_id=endpoint.pk, is_active=True)
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.failing_since is None and endpoint.disabled_at is None


# --- what is read of an answer, and where requests may go ----------------------------------------


def test_only_the_start_of_a_long_answer_is_kept(receiver):
    receiver.default = Answer(status=200, body=b"x" * 50_000)
    EndpointFactory(url=receiver.url)
    event_id = emit()
    publish()
    deliver()
    [attempt] = delivery_of(event_id).attempt_log.all()
    assert len(attempt.response_excerpt) == 2048
    assert attempt.status_code == 200 and attempt.ok


def test_a_redirect_is_not_followed_and_counts_as_a_failure(receiver):
    receiver.answers = [Answer(status=302, headers={"location": receiver.url + "/elsewhere"})]
    EndpointFactory(url=receiver.url)
    event_id = emit()
    publish()
    deliver()

    assert [r.path for r in receiver.requests] == ["/hooks"]
    delivery = delivery_of(event_id)
    assert delivery.status == Delivery.Status.PENDING and delivery.last_status_code == 302


def test_a_slow_endpoint_times_out(receiver, settings):
    settings.PARTNER_HTTP_TIMEOUT = 0.5
    receiver.answers = [Answer(status=200, delay=2.0)]
    EndpointFactory(url=receiver.url)
    event_id = emit()
    publish()
    deliver()

    [attempt] = delivery_of(event_id).attempt_log.all()
    assert attempt.status_code is None and attempt.error.startswith("timeout")
    assert attempt.duration_ms < 1500
    assert delivery_of(event_id).status == Delivery.Status.PENDING


def test_private_addresses_are_refused_unless_allowed(receiver, settings):
    settings.PARTNER_ALLOW_PRIVATE_URLS = False
    EndpointFactory(url=receiver.url)  # stored while it was allowed, say
    event_id = emit()
    publish()
    deliver()

    assert receiver.requests == []
    [attempt] = delivery_of(event_id).attempt_log.all()
    assert attempt.error.startswith("refused")


def test_the_request_goes_to_the_address_that_was_checked(receiver, settings, monkeypatch):
    """No second DNS lookup between the check and the connection (rebinding): the checked address
    is connected to, and the host is named in the Host header."""
    settings.PARTNER_ALLOW_PRIVATE_URLS = False
    port = receiver.server.server_address[1]
    looked_up = []

    def getaddrinfo(host, *args, **kwargs):
        looked_up.append(host)
        return [(2, 1, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(services.outbound.socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(services.outbound, "_public", lambda address: True)
    EndpointFactory(url=f"http://partner.example.test:{port}/hooks")
    event_id = emit()
    publish()
    deliver()

    [got] = receiver.requests
    assert got.headers["host"] == f"partner.example.test:{port}"
    assert looked_up.count("partner.example.test") == 1  # the check's lookup only
    assert delivery_of(event_id).status == Delivery.Status.DELIVERED


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "ftp://partner.example.test/hook",
        "file:///etc/passwd",
        "https://user:pw@partner.example.test/hook",
    ],
)
def test_the_url_check_refuses(url, settings):
    settings.PARTNER_ALLOW_PRIVATE_URLS = False
    with pytest.raises(services.outbound.UnsafeURL):
        services.outbound.url_check(url)


def test_the_url_check_passes_a_public_address(settings):
    settings.PARTNER_ALLOW_PRIVATE_URLS = False
    assert services.outbound.url_check("https://8.8.8.8/hooks") == ["8.8.8.8"]


def test_event_kinds_are_registered():
    from o2o.effects import handler_for

    assert handler_for(EVENT_KIND).atomic
    deliver_handler = handler_for(DELIVER_KIND)
    assert deliver_handler.schedule == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert deliver_handler.max_attempts == 8 and deliver_handler.queue == "notifications"
