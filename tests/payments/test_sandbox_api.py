"""The sandbox gateway's API contract, as a merchant sees it: secret-key authentication, idempotency
keys, and which intents may be captured, voided and refunded (and by how much)."""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from payments.sandbox.models import SandboxEvent, SandboxIntent, SandboxRefund

from .conftest import APPROVE, RETURN_URL, pay
from .factories import SandboxIntentFactory

pytestmark = pytest.mark.django_db
API = "/sandbox/api/v1"
S = SandboxIntent.Status


class Merchant:
    """The Django test client speaking to the sandbox API with the secret key."""

    def __init__(self, key: str | None = None) -> None:
        self.client = Client()
        self.key = settings.SANDBOX_SECRET_KEY if key is None else key

    def _headers(self, idempotency_key: str | None) -> dict:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def post(self, path: str, body: dict | str | None = None, key: str | None = None):
        data = body if isinstance(body, str) else json.dumps(body or {})
        return self.client.post(
            API + path, data, content_type="application/json", headers=self._headers(key)
        )

    def get(self, path: str, **params):
        return self.client.get(API + path, params, headers=self._headers(None))

    def create(self, key: str | None = None, **overrides):
        body = {"amount": 4800, "currency": "KRW", "reference": "order-1", "return_url": RETURN_URL}
        return self.post("/intents", {**body, **overrides}, key=key)


@pytest.fixture
def merchant() -> Merchant:
    return Merchant()


def authorised_intent(amount: int = 4800) -> SandboxIntent:
    return SandboxIntentFactory(amount=amount, status=S.AUTHORISED, card_last4="4242")


def captured_intent(amount: int = 4800, captured: int | None = None) -> SandboxIntent:
    return SandboxIntentFactory(
        amount=amount, status=S.CAPTURED, amount_captured=amount if captured is None else captured
    )


# --- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "sk_sandbox_wrong"], ids=["no-key", "wrong-key"])
@pytest.mark.parametrize(
    "method, path",
    [("post", "/intents"), ("get", "/intents"), ("get", "/intents/pi_x"), ("post", "/refunds")],
)
def test_every_call_needs_the_secret_key(key, method, path):
    # Given a caller without the right secret key
    caller = Merchant(key=key)
    # When it calls the API
    response = getattr(caller, method)(path)
    # Then it gets a 401 in the error format, and nothing was created
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert SandboxIntent.objects.count() == 0


def test_no_secret_key_configured_refuses_everyone(settings, merchant):
    # Given a sandbox whose secret key was never set (production without SANDBOX_SECRET_KEY)
    settings.SANDBOX_SECRET_KEY = ""
    # When anyone calls it, even with an empty bearer
    response = Merchant(key="").client.get(f"{API}/intents", headers={"Authorization": "Bearer "})
    # Then nobody gets in
    assert response.status_code == 401


# --- creating and reading intents ---------------------------------------------------------------


def test_create_intent_answers_with_its_checkout_page(merchant):
    # When a merchant creates an intent
    response = merchant.create(webhook_url="https://shop.example/hooks/")
    # Then it waits for a card, with a checkout page on the sandbox, nothing captured or refunded
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("pi_")
    assert body["status"] == "requires_payment_method"
    assert body["checkout_url"] == f"http://testserver/sandbox/pay/{body['id']}/"
    assert (body["amount"], body["currency"]) == (4800, "KRW")
    assert (body["amount_captured"], body["amount_refunded"]) == (0, 0)
    # And reading it back gives the same object
    assert merchant.get(f"/intents/{body['id']}").json() == body


def test_checkout_url_uses_the_public_address_when_one_is_set(settings, merchant):
    settings.SANDBOX_PUBLIC_URL = "https://pay.o2o.example/"
    body = merchant.create().json()
    assert body["checkout_url"] == f"https://pay.o2o.example/sandbox/pay/{body['id']}/"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": "4800"}, "amount"),
        ({"amount": 48.5}, "amount"),
        ({"amount": True}, "amount"),
        ({"currency": "XXX"}, "currency"),
        ({"return_url": "javascript:alert(1)"}, "return_url"),
        ({"return_url": None}, "return_url"),
        ({"webhook_url": "ftp://shop.example/"}, "webhook_url"),
        ({"reference": "r" * 101}, "reference"),
    ],
)
def test_create_intent_refuses_bad_input(merchant, overrides, field):
    response = merchant.create(**overrides)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert field in response.json()["error"]["message"]
    assert SandboxIntent.objects.count() == 0


@pytest.mark.parametrize("body", ["not json", "[1, 2]"])
def test_a_body_that_is_not_a_json_object_is_refused(merchant, body):
    response = merchant.post("/intents", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_unknown_intent_is_404_and_wrong_method_405(merchant):
    assert merchant.get("/intents/pi_nope").status_code == 404
    assert merchant.get("/intents/pi_nope").json()["error"]["code"] == "not_found"
    response = merchant.get("/refunds")
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_list_filters_by_reference_and_time(merchant):
    # Given intents of two orders, one of them created long ago
    old = SandboxIntentFactory(reference="order-1")
    SandboxIntent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    new = SandboxIntentFactory(reference="order-1")
    SandboxIntentFactory(reference="order-2")
    # When the merchant lists one order's intents, and then only those since yesterday
    by_reference = merchant.get("/intents", reference="order-1").json()
    since = int((timezone.now() - timedelta(days=1)).timestamp())
    recent = merchant.get("/intents", reference="order-1", since=str(since)).json()
    iso = merchant.get("/intents", since=(timezone.now() - timedelta(days=1)).isoformat()).json()
    # Then each list holds exactly those
    assert [i["id"] for i in by_reference["data"]] == [old.id, new.id]
    assert [i["id"] for i in recent["data"]] == [new.id]
    assert len(iso["data"]) == 2
    assert merchant.get("/intents", since="yesterday").status_code == 400
    page = merchant.get("/intents", limit="1").json()
    assert len(page["data"]) == 1 and page["has_more"] is True


# --- idempotency ---------------------------------------------------------------------------------


def test_same_key_and_body_gets_the_same_stored_answer(merchant):
    # Given an intent created with an idempotency key
    first = merchant.create(key="order-1-start")
    # When the same request is sent again with the same key
    again = merchant.create(key="order-1-start")
    # Then the stored answer comes back and no second intent exists
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert SandboxIntent.objects.count() == 1


def test_same_key_with_another_body_is_a_conflict(merchant):
    merchant.create(key="order-1-start")
    response = merchant.create(key="order-1-start", amount=9999)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert SandboxIntent.objects.count() == 1


def test_same_key_on_another_endpoint_is_a_conflict(merchant):
    intent = authorised_intent()
    merchant.post(f"/intents/{intent.id}/capture", {}, key="k1")
    response = merchant.post(f"/intents/{intent.id}/void", {}, key="k1")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"


def test_a_refused_request_is_not_remembered(merchant):
    # Given a capture refused because the intent is not authorised yet
    intent = SandboxIntentFactory()
    refused = merchant.post(f"/intents/{intent.id}/capture", {}, key="payment-1-capture")
    assert refused.status_code == 409
    # When the card is authorised and the capture is sent again with the same key
    SandboxIntent.objects.filter(pk=intent.pk).update(status=S.AUTHORISED)
    response = merchant.post(f"/intents/{intent.id}/capture", {}, key="payment-1-capture")
    # Then it goes through
    assert response.status_code == 200
    assert response.json()["status"] == "captured"


def test_a_capture_sent_twice_with_its_key_captures_once(merchant):
    intent = authorised_intent()
    first = merchant.post(f"/intents/{intent.id}/capture", {"amount": 3000}, key="cap")
    second = merchant.post(f"/intents/{intent.id}/capture", {"amount": 3000}, key="cap")
    assert first.json() == second.json()
    assert first.json()["amount_captured"] == 3000
    assert SandboxEvent.objects.filter(intent=intent, type="intent.captured").count() == 1


# --- capture, void, refund -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "status", [S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_ACTION, S.FAILED, S.VOIDED, S.CAPTURED]
)
def test_only_an_authorised_intent_can_be_captured_or_voided(merchant, status):
    intent = SandboxIntentFactory(status=status)
    for action in ("capture", "void"):
        response = merchant.post(f"/intents/{intent.id}/{action}", {})
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "invalid_state"
    intent.refresh_from_db()
    assert intent.status == status


def test_partial_capture_is_allowed_once(merchant):
    # Given an authorised intent of 4800
    intent = authorised_intent(4800)
    # When 3000 of it is captured
    response = merchant.post(f"/intents/{intent.id}/capture", {"amount": 3000})
    # Then 3000 is captured and the rest released: no second capture
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["amount_captured"]) == ("captured", 3000)
    assert merchant.post(f"/intents/{intent.id}/capture", {"amount": 1800}).status_code == 409


@pytest.mark.parametrize("amount", [0, -1, 4801, "100"])
def test_capture_amount_must_fit_the_authorisation(merchant, amount):
    intent = authorised_intent(4800)
    response = merchant.post(f"/intents/{intent.id}/capture", {"amount": amount})
    assert response.status_code == 400
    intent.refresh_from_db()
    assert intent.status == S.AUTHORISED


def test_void_releases_an_authorisation(merchant):
    intent = authorised_intent()
    response = merchant.post(f"/intents/{intent.id}/void", {})
    assert response.status_code == 200
    assert response.json()["status"] == "voided"
    assert list(SandboxEvent.objects.values_list("type", flat=True)) == ["intent.voided"]


def test_refunds_only_what_was_captured_and_not_yet_refunded(merchant):
    # Given an intent of 4800 of which 4000 was captured
    intent = captured_intent(4800, captured=4000)
    # When 1500 is refunded, then 2500, then 1 more
    first = merchant.post("/refunds", {"intent": intent.id, "amount": 1500, "reference": "r1"})
    second = merchant.post("/refunds", {"intent": intent.id, "amount": 2500})
    third = merchant.post("/refunds", {"intent": intent.id, "amount": 1})
    # Then the first two succeed and the last finds nothing left
    assert first.status_code == second.status_code == 201
    assert first.json()["status"] == "succeeded"
    assert first.json()["reference"] == "r1"
    assert third.status_code == 409
    assert third.json()["error"]["code"] == "amount_too_large"
    intent.refresh_from_db()
    assert intent.amount_refunded == 4000
    body = merchant.get(f"/intents/{intent.id}").json()
    assert [r["amount"] for r in body["refunds"]] == [1500, 2500]


def test_refund_of_more_than_captured_at_once_is_refused(merchant):
    intent = captured_intent(4800)
    response = merchant.post("/refunds", {"intent": intent.id, "amount": 4801})
    assert response.status_code == 409
    assert SandboxRefund.objects.count() == 0


@pytest.mark.parametrize("status", [S.REQUIRES_PAYMENT_METHOD, S.AUTHORISED, S.VOIDED, S.FAILED])
def test_only_a_captured_intent_can_be_refunded(merchant, status):
    intent = SandboxIntentFactory(status=status)
    response = merchant.post("/refunds", {"intent": intent.id, "amount": 100})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_state"


@pytest.mark.parametrize(
    "body, status", [({"amount": 100}, 400), ({"intent": "pi_nope", "amount": 100}, 404)]
)
def test_refund_needs_a_known_intent(merchant, body, status):
    assert merchant.post("/refunds", body).status_code == status


def test_every_state_change_queues_one_webhook(merchant):
    # Given an intent with a webhook URL, paid, captured and refunded
    created = merchant.create(webhook_url="https://shop.example/hooks/").json()
    pay(created["checkout_url"], APPROVE)
    merchant.post(f"/intents/{created['id']}/capture", {})
    merchant.post("/refunds", {"intent": created["id"], "amount": 800})
    # Then one event per change, in order, each queued for delivery once
    events = list(SandboxEvent.objects.order_by("created_at", "id"))
    assert [e.type for e in events] == ["intent.authorised", "intent.captured", "refund.succeeded"]
    assert all(e.deliveries.count() == 1 for e in events)
    refund_event = json.loads(events[-1].body)
    assert refund_event["data"]["object"]["object"] == "refund"
    assert refund_event["data"]["object"]["intent"] == created["id"]
