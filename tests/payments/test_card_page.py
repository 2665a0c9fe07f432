"""The hosted card page a customer pays on: each test card, the challenge step, bad input (form
errors, never a 500), Korean and English, and the way back to the shop."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from payments.sandbox.forms import luhn_ok
from payments.sandbox.models import SandboxEvent, SandboxIntent
from payments.sandbox.services import TEST_CARDS

from .conftest import APPROVE, CHALLENGE, DECLINE, INSUFFICIENT, SLOW, card
from .factories import SandboxIntentFactory

pytestmark = pytest.mark.django_db
S = SandboxIntent.Status


def page(intent: SandboxIntent) -> str:
    return f"/sandbox/pay/{intent.id}/"


def back_to_shop(response, intent: SandboxIntent) -> bool:
    if response.status_code != 302:
        return False
    location = urlsplit(response["Location"])
    return f"{location.scheme}://{location.netloc}{location.path}" == intent.return_url.split("?")[
        0
    ] and parse_qs(location.query)["intent"] == [intent.id]


def events(intent: SandboxIntent) -> list[str]:
    return list(SandboxEvent.objects.filter(intent=intent).values_list("type", flat=True))


def test_every_test_card_number_is_a_valid_card_number():
    assert all(luhn_ok(number) for number in TEST_CARDS)
    assert not luhn_ok("4242424242424241")


def test_the_page_shows_what_is_paid_and_the_test_cards_in_korean():
    # Given an intent waiting for a card
    intent = SandboxIntentFactory(amount=12300, description="망원시장 순자네 카트")
    # When the customer opens the page on a Korean phone
    response = Client(headers={"accept-language": "ko"}).get(page(intent))
    # Then it shows the amount, the description, a card form and the test cards, in Korean
    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="ko">' in html
    assert "₩12,300" in html and "망원시장 순자네 카트" in html
    assert "카드 번호" in html and "결제하기" in html
    assert "4242 4242 4242 4242" in html and "4000 0000 0000 3220" in html
    assert 'name="viewport"' in html
    assert "//cdn" not in html and "https://" not in html.replace(intent.return_url, "")


def test_the_page_speaks_english_when_asked():
    intent = SandboxIntentFactory()
    html = Client(headers={"accept-language": "en"}).get(page(intent)).content.decode()
    assert '<html lang="en">' in html
    assert "Card number" in html and "Test cards" in html


def test_approved_card_authorises_and_goes_back_to_the_shop():
    intent = SandboxIntentFactory(return_url="https://shop.example/orders/7/paid/?step=2")
    response = Client().post(page(intent), card(APPROVE))
    intent.refresh_from_db()
    assert back_to_shop(response, intent)
    assert parse_qs(urlsplit(response["Location"]).query)["step"] == ["2"]
    assert intent.status == S.AUTHORISED
    assert (intent.card_brand, intent.card_last4) == ("visa", "4242")
    assert events(intent) == ["intent.authorised"]


@pytest.mark.parametrize(
    "number, code, words",
    [
        (DECLINE, "card_declined", "Your card was declined."),
        (INSUFFICIENT, "insufficient_funds", "Your card has insufficient funds."),
    ],
)
def test_a_declined_card_leaves_the_intent_open_for_another_card(number, code, words):
    # Given an intent waiting for a card
    intent = SandboxIntentFactory()
    client = Client(headers={"accept-language": "en"})
    # When a declined card is entered
    response = client.post(page(intent), card(number))
    # Then the page comes back (not the shop) and says why, with the form for another card
    assert response.status_code == 302 and response["Location"] == page(intent)
    intent.refresh_from_db()
    assert intent.status == S.REQUIRES_PAYMENT_METHOD
    assert (intent.failure_code, intent.declines, intent.card_last4) == (code, 1, number[-4:])
    assert events(intent) == ["intent.payment_failed"]
    html = client.get(page(intent)).content.decode()
    assert words in html and "Try another card" in html and 'name="number"' in html
    # When another card is approved
    response = client.post(page(intent), card(APPROVE))
    # Then the intent is authorised, its decline cleared, and the browser goes back to the shop
    intent.refresh_from_db()
    assert back_to_shop(response, intent)
    assert (intent.status, intent.failure_code, intent.card_last4) == (S.AUTHORISED, "", "4242")
    assert events(intent) == ["intent.payment_failed", "intent.authorised"]


@pytest.mark.parametrize(
    "decision, status", [("approve", S.AUTHORISED), ("fail", S.REQUIRES_PAYMENT_METHOD)]
)
def test_challenge_card_asks_the_card_holder_first(decision, status):
    # Given the challenge card entered on the page
    intent = SandboxIntentFactory()
    client = Client(headers={"accept-language": "en"})
    response = client.post(page(intent), card(CHALLENGE))
    # Then the customer is sent to the challenge step, which offers Approve and Fail
    challenge_url = f"/sandbox/pay/{intent.id}/challenge/"
    assert response.status_code == 302 and response["Location"] == challenge_url
    assert client.get(page(intent))["Location"] == challenge_url
    html = client.get(challenge_url).content.decode()
    assert "Approve" in html and "Fail" in html and "3220" in html
    # When the card holder answers
    response = client.post(challenge_url, {"decision": decision})
    # Then the intent follows the answer: back to the shop, or (not confirmed) to the card page
    intent.refresh_from_db()
    assert intent.status == status
    if status == S.AUTHORISED:
        assert back_to_shop(response, intent)
    else:
        assert response["Location"] == page(intent)
        assert intent.failure_code == "authentication_failed"
        html = client.get(page(intent)).content.decode()
        assert "The payment was not confirmed with your bank." in html
    assert events(intent) == [
        "intent.requires_action",
        "intent.authorised" if status == S.AUTHORISED else "intent.payment_failed",
    ]


def test_challenge_without_a_decision_shows_the_step_again():
    intent = SandboxIntentFactory(status=S.REQUIRES_ACTION, card_last4="3220")
    response = Client().post(f"/sandbox/pay/{intent.id}/challenge/", {"decision": "maybe"})
    assert response.status_code == 400
    intent.refresh_from_db()
    assert intent.status == S.REQUIRES_ACTION


def test_slow_card_authorises_and_makes_the_next_fetch_slow():
    intent = SandboxIntentFactory()
    response = Client().post(page(intent), card(SLOW))
    intent.refresh_from_db()
    assert back_to_shop(response, intent)
    assert intent.status == S.AUTHORISED
    assert intent.slow_fetches_left == 1


@pytest.mark.parametrize(
    "data, field, message",
    [
        (card("4242 4242 42"), "number", "12"),
        (card("4242-4242-4242-4241"), "number", "not valid"),
        (card("abcd efgh ijkl mnop"), "number", "12"),
        (card("5555 5555 5555 4444"), "number", "test cards"),
        (card(expiry="13/30"), "expiry", "MM/YY"),
        (card(expiry="1230"), "expiry", "MM/YY"),
        (card(expiry="01/20"), "expiry", "expired"),
        (card(cvc="12"), "cvc", "3 or 4"),
        (card(cvc="12a"), "cvc", "3 or 4"),
        ({}, "number", "required"),
        ({"number": "4" * 5000, "expiry": "x" * 5000, "cvc": "9" * 5000}, "number", "30"),
    ],
)
def test_bad_card_input_is_a_form_error_and_changes_nothing(data, field, message):
    intent = SandboxIntentFactory()
    response = Client(headers={"accept-language": "en"}).post(page(intent), data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert 'aria-invalid="true"' in response.content.decode()
    intent.refresh_from_db()
    assert intent.status == S.REQUIRES_PAYMENT_METHOD
    assert events(intent) == []


def test_a_card_form_error_reads_in_korean_by_default():
    intent = SandboxIntentFactory()
    response = Client(headers={"accept-language": "ko"}).post(page(intent), card(expiry="01/20"))
    assert "만료된 카드입니다" in response.content.decode()


def test_the_security_code_is_never_echoed_back():
    intent = SandboxIntentFactory()
    response = Client().post(page(intent), card(expiry="13/99", cvc="987"))
    # (the intent's random id is in the page's URLs and may hold those digits by chance)
    html = response.content.decode().replace(str(intent.pk), "")
    assert "987" not in html


def test_paying_again_after_paying_is_refused_politely():
    # Given an intent already paid (say, from a second tab)
    intent = SandboxIntentFactory(status=S.AUTHORISED)
    # When the form is posted again, or the page opened again
    post = Client().post(page(intent), card(APPROVE))
    get = Client(headers={"accept-language": "en"}).get(page(intent))
    # Then nothing changes and the page says so, with the way back to the shop
    assert post.status_code == 409
    assert get.status_code == 200 and "can't be paid here any more" in get.content.decode()
    assert events(intent) == []


def test_unknown_intent_page_is_404():
    assert Client().get("/sandbox/pay/pi_nope/").status_code == 404
    assert Client().post("/sandbox/pay/pi_nope/challenge/").status_code == 404
