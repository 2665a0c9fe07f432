"""Hand-over by QR (issue 16, items 3 and 5): the signed link the customer's page shows, and the
vendor's scanner (page and API) that sends it back. Forged, expired and replayed QR codes, another
vendor's order and an order in the wrong state each have their own clear outcome; every hand-over
goes through order_hand_over, so a QR with a code that is not right counts as a wrong try."""

import time
from unittest import mock
from urllib.parse import quote

import pytest
from django.core import signing
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import translation
from rest_framework.test import APIClient

from o2o.errors import NotAllowed
from orders.models import Order, OrderEvent, Status
from orders.services import (
    HANDOVER_MAX_TRIES,
    AlreadyHandedOver,
    HandoverTokenInvalid,
    InvalidTransition,
    handover_token_make,
    handover_token_read,
    order_accept,
    order_cancel,
    order_hand_over_by_token,
)
from orders.services.handover_qr import HANDOVER_QR_SALT
from tests.orders.conftest import messages_of, placed
from tests.orders.test_api import error

pytestmark = pytest.mark.django_db
SCAN = "/orders/vendor/scan/"
SCAN_API = "/api/vendor/orders/scan/"


@pytest.fixture(autouse=True)
def english():
    """The services' messages in English (the default language is Korean)."""
    with translation.override("en"):
        yield


def accepted(shop, buyer, **kwargs) -> Order:
    order = placed(shop, buyer, fulfilment="delivery", **kwargs)
    return order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=10)


def link(order: Order) -> str:
    return f"https://o2o.example/o/h/{handover_token_make(order=order)}/"


def signed(value, **kwargs) -> str:
    return signing.dumps(value, salt=HANDOVER_QR_SALT, **kwargs)


def handovers(order: Order) -> int:
    return OrderEvent.objects.filter(order=order, to_status=Status.HANDED_OVER).count()


# --- the token ----------------------------------------------------------------------------------


def test_the_link_carries_the_order_and_its_code_in_any_form_a_scanner_gives(shop, buyer):
    order = accepted(shop, buyer)
    token = handover_token_make(order=order)
    for text in (
        token,
        f"  {token}\n",
        f"/o/h/{token}/",
        f"https://o2o.example/o/h/{token}/",
        f"https://o2o.example/o/h/{quote(token, safe='')}",  # colons percent-encoded
    ):
        claim = handover_token_read(text=text)
        assert (claim.order_id, claim.code) == (order.pk, order.handover_code), text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "https://example.test/menu",
        "x" * 500,
        "token-with:a:bad-signature",
        signing.dumps([1, "1234"]),  # signed by us, but for something else (another salt)
        signing.dumps([1, "1234"], salt=HANDOVER_QR_SALT, key="not-our-secret"),
        signed({"o": 1, "c": "1234"}),  # ours, but not the shape we write
        signed([1, 1234]),
        signed(["1", "1234"]),
    ],
    ids=[
        "empty",
        "a-word",
        "another-link",
        "too-long",
        "bad-signature",
        "another-salt",
        "another-key",
        "a-dict",
        "code-not-text",
        "id-not-number",
    ],
)
def test_anything_we_did_not_sign_as_a_handover_is_forged(text):
    with pytest.raises(HandoverTokenInvalid) as refused:
        handover_token_read(text=text)
    assert refused.value.code == "forged"


def test_a_token_edited_by_one_character_is_forged(shop, buyer):
    order = accepted(shop, buyer)
    token = handover_token_make(order=order)
    payload, stamp, sig = token.split(":")
    edited = f"{payload}:{stamp}:{sig[:-1]}{'A' if sig[-1] != 'A' else 'B'}"
    with pytest.raises(HandoverTokenInvalid) as refused:
        handover_token_read(text=edited)
    assert refused.value.code == "forged"


def test_a_token_older_than_the_setting_has_expired(shop, buyer, settings):
    settings.HANDOVER_QR_MAX_AGE = 24 * 3600
    order = accepted(shop, buyer)
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 25 * 3600):
        old = handover_token_make(order=order)
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 23 * 3600):
        recent = handover_token_make(order=order)
    assert handover_token_read(text=recent).order_id == order.pk
    with pytest.raises(HandoverTokenInvalid) as refused:
        handover_token_read(text=old)
    assert refused.value.code == "expired"
    # ...and nothing was tried: the order is still waiting
    with pytest.raises(HandoverTokenInvalid):
        order_hand_over_by_token(text=old, vendor=shop.vendor)
    order.refresh_from_db()
    assert order.status == Status.ACCEPTED


# --- the hand-over by token ------------------------------------------------------------------------


def test_the_vendor_hands_over_by_the_token_once_and_a_replay_says_so(shop, buyer):
    order = accepted(shop, buyer)
    text = link(order)
    done = order_hand_over_by_token(text=text, vendor=shop.vendor)
    assert done.status == Status.HANDED_OVER
    event = OrderEvent.objects.get(order=order, to_status=Status.HANDED_OVER)
    assert event.actor == shop.vendor.user
    # the same QR again (a second scan, a photo of it): a clear answer, never a second hand-over
    with pytest.raises(AlreadyHandedOver) as again:
        order_hand_over_by_token(text=text, vendor=shop.vendor)
    assert again.value.code == "already_handed_over"
    assert f"#{order.pk}" in again.value.messages[0]
    assert handovers(order) == 1


def test_another_vendors_qr_is_no_such_order_and_costs_the_order_nothing(
    shop, other_shop, buyer, settings
):
    order = accepted(shop, buyer)
    for _ in range(HANDOVER_MAX_TRIES + 2):
        with pytest.raises(NotAllowed) as refused:
            order_hand_over_by_token(text=link(order), vendor=other_shop.vendor)
        assert refused.value.messages == ["No such order."]
    # the right vendor's scan still works: the other's scans were no tries at its code
    assert order_hand_over_by_token(text=link(order), vendor=shop.vendor).status == (
        Status.HANDED_OVER
    )


def test_an_order_not_accepted_yet_or_ended_is_not_handed_over(shop, buyer):
    waiting = placed(shop, buyer, fulfilment="delivery")
    with pytest.raises(InvalidTransition) as refused:
        order_hand_over_by_token(text=link(waiting), vendor=shop.vendor)
    assert refused.value.code == "not_accepted"
    ended = placed(shop, buyer, fulfilment="delivery")
    order_cancel(order_id=ended.pk, customer=ended.customer)
    with pytest.raises(InvalidTransition) as refused:
        order_hand_over_by_token(text=link(ended), vendor=shop.vendor)
    assert refused.value.code == "not_open"
    assert Order.objects.get(pk=waiting.pk).status == Status.PLACED
    assert Order.objects.get(pk=ended.pk).status == Status.CANCELLED


def test_a_qr_whose_code_is_not_right_counts_as_a_wrong_try(shop, buyer):
    # given a token we signed but with a code that isn't the order's (as if it had changed)
    order = accepted(shop, buyer)
    wrong = "0000" if order.handover_code != "0000" else "1111"
    stale = signed([order.pk, wrong])
    for _ in range(HANDOVER_MAX_TRIES):
        with pytest.raises(ValidationError) as refused:
            order_hand_over_by_token(text=stale, vendor=shop.vendor)
        assert "code" in refused.value.message_dict
    # then the limit is the typed code's: even the right QR waits now
    with pytest.raises(ValidationError) as locked:
        order_hand_over_by_token(text=link(order), vendor=shop.vendor)
    assert "Too many" in locked.value.message_dict["code"][0]
    assert Order.objects.get(pk=order.pk).status == Status.ACCEPTED


# --- the customer's page ---------------------------------------------------------------------------


def test_the_order_page_shows_the_qr_beside_the_code_while_the_vendor_can_hand_over(shop, buyer):
    client = Client(headers={"accept-language": "en"})
    client.force_login(buyer)
    order = placed(shop, buyer, fulfilment="delivery")
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert 'data-testid="handover-code"' in page
    assert 'data-testid="handover-qr"' not in page  # placed: nothing to hand over yet
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=10)
    for url in (f"/orders/{order.pk}/", f"/orders/{order.pk}/status/"):  # and live updates
        page = client.get(url).content.decode()
        assert 'data-testid="handover-qr"' in page
        assert '<svg role="img" aria-label="QR code for the vendor to scan' in page
        assert f"hands over order #{order.pk}" in page
    order_hand_over_by_token(text=link(order), vendor=shop.vendor)
    assert 'data-testid="handover-qr"' not in client.get(f"/orders/{order.pk}/").content.decode()


def test_a_pickup_order_shows_no_qr_its_point_types_the_code(shop, buyer):
    client = Client(headers={"accept-language": "en"})
    client.force_login(buyer)
    order = placed(shop, buyer, fulfilment="pickup")
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=10)
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert 'data-testid="handover-code"' in page
    assert 'data-testid="handover-qr"' not in page


def test_the_customer_api_gives_the_qr_link_only_while_it_is_shown(shop, buyer):
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.force_authenticate(buyer)
    order = placed(shop, buyer, fulfilment="delivery")
    assert api.get(f"/api/orders/{order.pk}/").json()["handover_qr_url"] is None
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=10)
    url = api.get(f"/api/orders/{order.pk}/").json()["handover_qr_url"]
    assert url.startswith("http://testserver/o/h/")
    assert handover_token_read(text=url).order_id == order.pk


# --- the link opened in a browser --------------------------------------------------------------


def _as(user=None) -> Client:
    client = Client(headers={"accept-language": "en"})
    if user is not None:
        client.force_login(user)
    return client


def test_the_vendor_opening_the_link_gets_one_tap_to_hand_over_and_the_get_changes_nothing(
    shop, buyer
):
    order = accepted(shop, buyer)
    token = handover_token_make(order=order)
    vendor = _as(shop.vendor.user)
    page = vendor.get(f"/o/h/{token}/")
    assert page.status_code == 200
    assert f"Hand over order #{order.pk}" in page.content.decode()
    assert Order.objects.get(pk=order.pk).status == Status.ACCEPTED
    done = vendor.post(SCAN, {"text": token})
    assert done.status_code == 200
    assert f"Order #{order.pk} handed over" in done.content.decode()
    assert Order.objects.get(pk=order.pk).status == Status.HANDED_OVER
    assert "Already handed over" in vendor.get(f"/o/h/{token}/").content.decode()


def test_the_customer_or_anyone_else_opening_the_link_is_told_to_show_it(
    shop, other_shop, buyer, stranger
):
    order = accepted(shop, buyer)
    token = handover_token_make(order=order)
    own = _as(buyer).get(f"/o/h/{token}/")
    assert own.status_code == 200
    assert "Show this to your vendor" in own.content.decode()
    assert f"/orders/{order.pk}/" in own.content.decode()
    anyone = _as().get(f"/o/h/{token}/")
    assert "Show this to your vendor" in anyone.content.decode()
    assert "Sign in to hand over" in anyone.content.decode()
    for client in (_as(stranger), _as()):
        text = client.get(f"/o/h/{token}/").content.decode()
        assert f"#{order.pk}" not in text and shop.yakult.name_en not in text
    other = _as(other_shop.vendor.user).get(f"/o/h/{token}/")
    assert other.status_code == 404
    assert f"#{order.pk}" not in other.content.decode()
    assert "one of your orders" in other.content.decode()
    assert _as(shop.vendor.user).get("/o/h/not-a-token/").status_code == 400
    assert Order.objects.get(pk=order.pk).status == Status.ACCEPTED


# --- the scanner page --------------------------------------------------------------------------


def test_the_scanner_page_is_the_vendors_and_reached_from_the_inbox(shop, buyer):
    vendor = _as(shop.vendor.user)
    assert 'href="/orders/vendor/scan/"' in vendor.get("/orders/vendor/").content.decode()
    page = vendor.get(SCAN)
    assert page.status_code == 200
    text = page.content.decode()
    assert "js/scan.js" in text and "vendor/jsqr/jsQR.js" in text
    assert _as(buyer).get(SCAN).status_code == 302  # not a vendor: apply first


@pytest.mark.parametrize("fetch", [False, True])
def test_the_scanner_shows_each_outcome_with_its_status(shop, other_shop, buyer, fetch):
    headers = {"X-Requested-With": "fetch"} if fetch else {}
    vendor = _as(shop.vendor.user)
    order = accepted(shop, buyer)
    wrong = "0000" if order.handover_code != "0000" else "1111"
    expect = [
        ({"text": "hello"}, 400, "not a hand-over code"),
        ({}, 400, "or type the order number and the code"),
        ({"order": order.pk, "code": wrong}, 400, "That code is not right"),
        ({"text": link(accepted(other_shop, buyer))}, 404, "No such order."),
        ({"text": link(order)}, 200, f"Order #{order.pk} handed over"),
        ({"text": link(order)}, 409, "was already handed over"),
        ({"order": order.pk, "code": order.handover_code}, 409, "was already handed over"),
    ]
    for data, status, says in expect:
        answer = vendor.post(SCAN, data, headers=headers)
        text = answer.content.decode()
        assert answer.status_code == status, (data, text)
        assert says in text, (data, text)
        assert ("<html" in text) is not fetch  # the script gets the outcome alone
    assert handovers(order) == 1


def test_the_typed_fallback_hands_over_by_number_and_code(shop, buyer):
    order = accepted(shop, buyer)
    answer = _as(shop.vendor.user).post(SCAN, {"order": order.pk, "code": order.handover_code})
    assert answer.status_code == 200
    assert Order.objects.get(pk=order.pk).status == Status.HANDED_OVER
    assert not messages_of(answer)


# --- the API -------------------------------------------------------------------------------------


def test_the_api_hands_over_by_qr_with_the_same_outcomes(shop, other_shop, buyer):
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.force_authenticate(shop.vendor.user)
    order = accepted(shop, buyer)
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 90_000):
        old = link(order)
    error(api.post(SCAN_API, {"text": "garbage"}, format="json"), 400, "forged")
    error(api.post(SCAN_API, {"text": old}, format="json"), 400, "expired")
    error(api.post(SCAN_API, {}, format="json"), 400, "invalid")
    theirs = link(accepted(other_shop, buyer))
    error(api.post(SCAN_API, {"text": theirs}, format="json"), 404)
    done = api.post(SCAN_API, {"text": link(order)}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["id"] == order.pk and done.json()["status"] == Status.HANDED_OVER
    assert "handover_code" not in done.json()
    error(api.post(SCAN_API, {"text": link(order)}, format="json"), 409, "already_handed_over")
    typed = api.post(SCAN_API, {"order": order.pk, "code": order.handover_code}, format="json")
    error(typed, 409, "already_handed_over")
    assert handovers(order) == 1
    api.force_authenticate(buyer)  # a customer is no vendor
    assert api.post(SCAN_API, {"text": link(order)}, format="json").status_code == 403
