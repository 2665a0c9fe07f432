"""Bad input to the sandbox provider and to the webhook signature check is answered with a 4xx in
the error format of the page or API that got it, never a 500 (or a 503 telling the sender to retry).

The traps: PostgreSQL refuses a NUL character in text, so an id, filter or text with one must be
refused before it reaches a query; `x in dict` raises on a list; and str.isdigit() is true for
characters int() can't read ("²", "①")."""

import json
import time

import pytest
from django.conf import settings
from django.test import Client

from payments.models import WebhookEvent
from payments.sandbox import signing
from payments.sandbox.models import (
    SandboxEvent,
    SandboxIdempotencyKey,
    SandboxIntent,
    SandboxPayout,
)

from .conftest import RETURN_URL, card
from .factories import SandboxIntentFactory

pytestmark = pytest.mark.django_db
API = "/sandbox/api/v1"
S = SandboxIntent.Status
INTENT = {"amount": 100, "currency": "KRW", "return_url": RETURN_URL}
PAYOUT = {"amount": 100, "currency": "KRW", "destination": {"account_number": "110123456789"}}


def merchant(**headers) -> Client:
    """The sandbox API's client, with the secret key."""
    return Client(headers={"Authorization": f"Bearer {settings.SANDBOX_SECRET_KEY}", **headers})


def post(path: str, body: dict, **headers):
    return merchant(**headers).post(API + path, json.dumps(body), content_type="application/json")


def assert_refused(response, status: int, code: str, message: str) -> None:
    """The API's error format: {"error": {"code": ..., "message": ...}}."""
    assert response.status_code == status, response.content
    assert response.json() == {"error": {"code": code, "message": message}}


# --- the hosted card page (public: no key needed) -----------------------------------------------


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("path", ["/sandbox/pay/pi_a%00b/", "/sandbox/pay/pi_a%00b/challenge/"])
def test_card_and_challenge_pages_of_an_id_with_a_nul_are_404(path, method):
    # Given an intent id with a NUL character in the URL (no intent has one)
    # When anyone opens or posts the card page or its challenge step
    response = getattr(Client(), method)(path)
    # Then it is the page's 404, as for any unknown intent
    assert response.status_code == 404


@pytest.mark.parametrize("number", ["4242 4242 4242 424\u00b2", "4242 4242 4242 424\u2460"])
def test_card_number_with_a_digit_int_cant_read_is_a_form_error(number):
    # Given an intent waiting for a card
    intent = SandboxIntentFactory()
    # When the card number ends in "²" or "①" (str.isdigit() says they are digits)
    response = Client(headers={"accept-language": "en"}).post(
        f"/sandbox/pay/{intent.id}/", card(number)
    )
    # Then the page shows the card number's form error, and the intent is untouched
    assert response.status_code == 400
    assert response.context["form"].errors["number"] == ["Enter the card number: 12 to 19 digits."]
    intent.refresh_from_db()
    assert intent.status == S.REQUIRES_PAYMENT_METHOD
    assert not SandboxEvent.objects.exists()


# --- creating intents and payouts ---------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"reference": "order-\u00007"}, "reference must not contain NUL characters."),
        ({"description": "\u0000"}, "description must not contain NUL characters."),
        ({"return_url": "https://shop.example/\u0000"}, "return_url must be an http(s) URL."),
        ({"webhook_url": "https://shop.example/\u0000"}, "webhook_url must be an http(s) URL."),
        ({"currency": ["KRW"]}, "currency must be an ISO 4217 code we know."),
        ({"currency": {"KRW": 1}}, "currency must be an ISO 4217 code we know."),
    ],
    ids=["nul-reference", "nul-description", "nul-return-url", "nul-webhook-url", "list", "dict"],
)
def test_intent_create_with_bad_text_is_400(change, message):
    # When a merchant creates an intent with a NUL in a text or a currency that is not a string
    response = post("/intents", {**INTENT, **change})
    # Then it is a 400 naming the field, and no intent is made
    assert_refused(response, 400, "invalid_request", message)
    assert not SandboxIntent.objects.exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"currency": ["KRW"]}, "currency must be an ISO 4217 code we know."),
        ({"reference": "\u0000"}, "reference must not contain NUL characters."),
        (
            {"destination": {"account_number": "110123456789", "holder": "\u0000"}},
            "destination.holder must not contain NUL characters.",
        ),
    ],
    ids=["list-currency", "nul-reference", "nul-holder"],
)
def test_payout_create_with_bad_text_is_400(change, message):
    response = post("/payouts", {**PAYOUT, **change})
    assert_refused(response, 400, "invalid_request", message)
    assert not SandboxPayout.objects.exists()


# --- reading: ids, cursors, filters and times ---------------------------------------------------


@pytest.mark.parametrize(
    "path, message",
    [("/intents/pi_a%00b", "No such intent."), ("/payouts/po_a%00b", "No such payout.")],
)
def test_fetch_of_an_id_with_a_nul_is_404(path, message):
    response = merchant().get(API + path)
    assert_refused(response, 404, "not_found", message)


@pytest.mark.parametrize("path", ["/intents", "/payouts"])
@pytest.mark.parametrize(
    "query, message",
    [
        ({"cursor": "pi_\u0000"}, "cursor names no object of this list."),
        ({"reference": "\u0000"}, "reference must not contain NUL characters."),
        ({"created_from": "\u00b2"}, "created_from must be unix seconds or an ISO 8601 time."),
        ({"created_to": "9" * 20}, "created_to must be unix seconds or an ISO 8601 time."),
    ],
    ids=["nul-cursor", "nul-reference", "superscript-time", "huge-time"],
)
def test_list_with_a_bad_parameter_is_400(path, query, message):
    # Given one object to list
    SandboxIntentFactory()
    # When a list is asked for with a bad cursor, filter or time
    response = merchant().get(API + path, query)
    # Then it is a 400 naming the parameter
    assert_refused(response, 400, "invalid_request", message)


@pytest.mark.parametrize(
    "since",
    ["\u00b2", "\u2460", "99999999999999999999", "9" * 5000],
    ids=["superscript", "circled", "year-too-far", "too-long"],
)
def test_intents_since_a_time_that_is_not_unix_seconds_is_400(since):
    # When `since` is a "digit" int() can't read, too far in the future for a date, or too long
    response = merchant().get(API + "/intents", {"since": since})
    # Then it is a 400, as for any other unreadable time
    assert_refused(
        response, 400, "invalid_request", "since must be unix seconds or an ISO 8601 time."
    )


def test_intents_since_unix_seconds_still_lists():
    SandboxIntentFactory()
    response = merchant().get(API + "/intents", {"since": "0"})
    assert response.status_code == 200
    assert len(response.json()["data"]) == 1


# --- changing intents --------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["capture", "void"])
@pytest.mark.parametrize("key", [None, "key-1"], ids=["no-key", "idempotency-key"])
def test_capture_or_void_of_an_id_with_a_nul_is_404_with_or_without_an_idempotency_key(action, key):
    # Given a merchant asking to capture or void an intent whose id has a NUL (with an
    # Idempotency-Key, the request's path is stored: PostgreSQL would refuse it)
    headers = {"Idempotency-Key": key} if key else {}
    # When it posts
    response = post(f"/intents/pi_a%00b/{action}", {}, **headers)
    # Then it is the API's 404, and the refused request leaves no idempotency record
    assert_refused(response, 404, "not_found", "No such intent.")
    assert not SandboxIdempotencyKey.objects.exists()


def test_refund_of_an_intent_id_with_a_nul_is_404():
    response = post("/refunds", {"intent": "pi_\u0000", "amount": 1})
    assert_refused(response, 404, "not_found", "No such intent.")


# --- the webhook signature header ---------------------------------------------------------------

WEBHOOK = "/payments/webhooks/sandbox/"
EVENT = b'{"id": "evt_1", "type": "intent.succeeded", "data": {"object": {"id": "pi_1"}}}'


@pytest.mark.parametrize(
    "timestamp", ["\u00b2", "\u2460", "9" * 400], ids=["superscript", "circled", "400-nines"]
)
def test_signature_timestamp_int_cant_read_is_malformed(timestamp):
    # Given a signature header whose t is "²", "①" or too big for a float
    header = f"t={timestamp},v1=abcdef"
    # When it is verified
    # Then it is a SignatureError (what the webhook endpoint answers 400), not a ValueError
    with pytest.raises(signing.SignatureError, match="malformed"):
        signing.verify(secret="whsec_test", header=header, body=EVENT, tolerance=300)


@pytest.mark.parametrize(
    "header, message",
    [
        ("t=\u00b2,v1=abcdef", "the signature header is malformed"),
        ("t=\u2460,v1=abcdef", "the signature header is malformed"),
        (f"t={'9' * 400},v1=abcdef", "the signature header is malformed"),
        (f"t={'9' * 15},v1=abcdef", "the signature timestamp is outside the tolerance"),
        (lambda: f"t={int(time.time())},v1=\u00b2", "the signature does not match"),
    ],
    ids=["superscript-t", "circled-t", "400-nines-t", "far-future-t", "superscript-v1"],
)
def test_webhook_with_an_unreadable_signature_is_400_not_503(header, message):
    # Given a webhook whose signature header has a timestamp or signature int() or
    # hmac.compare_digest can't read
    header = header() if callable(header) else header
    # When it is delivered
    response = Client().post(
        WEBHOOK, EVENT, content_type="application/json", headers={signing.HEADER: header}
    )
    # Then it is refused as a bad signature (400: don't retry), not 503, and nothing is recorded
    assert response.status_code == 400, response.content
    assert response.json() == {"error": {"code": "invalid_signature", "message": message}}
    assert not WebhookEvent.objects.exists()
