"""Webhook signatures: the sandbox signs, the platform verifies; forged, tampered, too old, too new
and malformed signatures are refused, at the function and at the endpoint (400, never 500)."""

import json
import time

import pytest
from django.conf import settings
from django.test import Client

from payments.models import WebhookEvent
from payments.sandbox import signing

pytestmark = pytest.mark.django_db
SECRET = "whsec_test"
BODY = b'{"id":"evt_1","type":"intent.authorised"}'
URL = "/payments/webhooks/sandbox/"


def test_a_fresh_signature_of_the_body_verifies():
    header = signing.header_value(secret=SECRET, body=BODY)
    assert signing.verify(secret=SECRET, header=header, body=BODY, tolerance=300) > 0


def test_any_of_several_signatures_may_match_while_a_secret_is_rotated():
    t = int(time.time())
    good = signing.compute(secret=SECRET, timestamp=t, body=BODY)
    header = f"t={t},v1={'0' * 64},v1={good}"
    assert signing.verify(secret=SECRET, header=header, body=BODY, tolerance=300) == t


@pytest.mark.parametrize(
    "header, body, message",
    [
        (lambda: signing.header_value(secret="whsec_other", body=BODY), BODY, "does not match"),
        (lambda: signing.header_value(secret=SECRET, body=BODY), BODY + b" ", "does not match"),
        (
            lambda: signing.header_value(
                secret=SECRET, body=BODY, timestamp=int(time.time()) - 301
            ),
            BODY,
            "tolerance",
        ),
        (
            lambda: signing.header_value(
                secret=SECRET, body=BODY, timestamp=int(time.time()) + 301
            ),
            BODY,
            "tolerance",
        ),
        (lambda: None, BODY, "missing"),
        (lambda: "v1=abc", BODY, "malformed"),
        (lambda: f"t={int(time.time())}", BODY, "malformed"),
        (lambda: "t=soon,v1=abc", BODY, "malformed"),
    ],
    ids=["forged", "tampered-body", "too-old", "too-new", "missing", "no-t", "no-v1", "bad-t"],
)
def test_bad_signatures_are_refused(header, body, message):
    with pytest.raises(signing.SignatureError, match=message):
        signing.verify(secret=SECRET, header=header(), body=body, tolerance=300)


def test_no_configured_secret_verifies_nothing():
    header = signing.header_value(secret="", body=BODY)
    with pytest.raises(signing.SignatureError):
        signing.verify(secret="", header=header, body=BODY, tolerance=300)


def _event(intent_id: str = "pi_not_ours", event_id: str = "evt_test_1") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "type": "intent.authorised",
            "data": {"object": {"id": intent_id, "object": "intent"}},
        }
    ).encode()


def _post(body: bytes, header: str | None):
    headers = {signing.HEADER: header} if header is not None else {}
    return Client().post(URL, body, content_type="application/json", headers=headers)


def _signed(body: bytes, **kwargs) -> str:
    return signing.header_value(secret=settings.SANDBOX_WEBHOOK_SECRET, body=body, **kwargs)


@pytest.mark.parametrize(
    "make_header",
    [
        lambda body: signing.header_value(secret="whsec_forged", body=body),
        lambda body: _signed(body, timestamp=int(time.time()) - 301),
        lambda body: None,
        lambda body: "garbage",
    ],
    ids=["forged", "replayed-too-old", "missing", "garbage"],
)
def test_endpoint_refuses_bad_signatures_with_400_and_records_nothing(make_header):
    body = _event()
    response = _post(body, make_header(body))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"id": "evt_1"}', b'{"data": 1}'])
def test_endpoint_refuses_a_signed_body_that_is_not_an_event(body):
    response = _post(body, _signed(body))
    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


def test_endpoint_records_an_event_about_an_intent_not_ours_once():
    # Given a well-signed event about an intent the platform does not know
    body = _event()
    # When it is delivered twice
    first = _post(body, _signed(body))
    second = _post(body, _signed(body))
    # Then both are answered 200, the second as a duplicate, and the event is recorded once
    assert first.status_code == second.status_code == 200
    assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, True)
    event = WebhookEvent.objects.get()
    assert (event.event_id, event.type, event.object_ref) == (
        "evt_test_1",
        "intent.authorised",
        "pi_not_ours",
    )
    assert event.processed_at is not None and event.payment is None


def test_endpoint_knows_only_configured_providers_and_only_post():
    body = _event()
    assert _post(body, _signed(body)).status_code == 200
    response = Client().post("/payments/webhooks/stripe/", body, content_type="application/json")
    assert response.status_code == 404
    assert Client().get(URL).status_code == 405


def test_endpoint_answers_503_not_500_when_something_unexpected_breaks(monkeypatch):
    from payments import services

    def broken(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services, "webhook_receive", broken)
    body = _event()
    response = _post(body, _signed(body))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "error"
