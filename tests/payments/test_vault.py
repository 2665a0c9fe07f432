"""The customer vault: saving a card on the sandbox's setup page, off-session charges of a saved
card (approved, hard and soft declines, a card that needs the customer back), idempotency,
removing a card, the retry schedule, and the customer's cards page and API (own cards only).

Everything that reaches the sandbox goes over real HTTP to the live server, as in production."""

import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from payments import services, vault
from payments.errors import InvalidTransition
from payments.models import CardCharge, Payment, SavedCard
from payments.sandbox.models import SandboxIntent, SandboxPaymentMethod, SandboxSetupSession
from tests.factories import CustomerProfileFactory
from tests.payments.conftest import APPROVE, DECLINE, INSUFFICIENT, card

AUTH_LATER = "4000 0025 0000 3155"  # approved on-session; off-session it needs the card holder
TRY_LATER = "4000 0000 0000 0119"
SHOP = "https://shop.example/cards/"
live = pytest.mark.django_db(transaction=True)
O = CardCharge.Outcome  # noqa: E741
P = Payment.Status


def save_card(customer, number: str = APPROVE, client: Client | None = None) -> SavedCard:
    """The customer opens a setup page, enters the card, comes back; the platform keeps it."""
    url = vault.card_setup_start(customer=customer, return_url=SHOP)
    response = (client or Client()).post(urlsplit(url).path, card(number))
    assert response.status_code == 302, response.content[:300]
    ref = parse_qs(urlsplit(response["Location"]).query)["setup_session"][0]
    return vault.card_setup_complete(customer=customer, setup_ref=ref)


def charge(
    card_: SavedCard, key: str, order_id: int = 7, amount: int = 4800, currency="KRW", **kw
) -> Payment:
    return vault.payment_charge_off_session(
        order_id=order_id,
        card_id=card_.pk,
        idempotency_key=key,
        amount=amount,
        currency=currency,
        **kw,
    )


def outcome(key: str) -> CardCharge:
    found = vault.card_charge_get(idempotency_key=key)
    assert found is not None
    return found


# --- saving a card ---------------------------------------------------------------------------------


@live
def test_a_card_saved_on_the_setup_page_is_kept_with_what_the_provider_says(sandbox):
    # Given a customer
    customer = CustomerProfileFactory()
    # When they save a card on the setup page, then a second one
    first = save_card(customer)
    second = save_card(customer, INSUFFICIENT)
    # Then both are kept by token, the first is the default, nothing was charged
    assert (first.brand, first.last4, first.exp_month, first.exp_year) == ("visa", "4242", 12, 2039)
    assert first.is_default and not second.is_default
    assert first.status == second.status == SavedCard.Status.ACTIVE
    assert (
        SandboxPaymentMethod.objects.get(pk=first.payment_method_ref).number == "4242424242424242"
    )
    assert first.provider_customer_ref == second.provider_customer_ref
    assert not SandboxIntent.objects.exists()


@live
def test_completing_a_setup_is_only_for_its_customer_and_only_once_finished(sandbox):
    owner, other = CustomerProfileFactory(), CustomerProfileFactory()
    url = vault.card_setup_start(customer=owner, return_url=SHOP)
    ref = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    # Not finished on the page yet: nothing to keep (the provider is asked, not the browser)
    with pytest.raises(ValidationError) as not_saved:
        vault.card_setup_complete(customer=owner, setup_ref=ref)
    assert not_saved.value.code == "not_saved"
    Client().post(urlsplit(url).path, card(APPROVE))
    # Another customer can't take it
    with pytest.raises(ValidationError) as theirs:
        vault.card_setup_complete(customer=other, setup_ref=ref)
    assert theirs.value.code == "not_found"
    # Its customer gets the card, once however often they come back
    saved = vault.card_setup_complete(customer=owner, setup_ref=ref)
    assert vault.card_setup_complete(customer=owner, setup_ref=ref).pk == saved.pk
    assert SavedCard.objects.count() == 1
    # And the page, already used, sends the browser straight back
    again = Client().post(urlsplit(url).path, card(DECLINE))
    assert again.status_code == 302 and SandboxPaymentMethod.objects.count() == 1


# --- off-session charges ---------------------------------------------------------------------------


@live
def test_an_approved_off_session_charge_authorises_the_orders_payment(sandbox, status_signals):
    saved = save_card(CustomerProfileFactory())
    payment = charge(saved, "sub-1-day-1", vendor_id=3, commission=480)
    assert payment.status == P.AUTHORISED
    assert (payment.card_last4, payment.commission, payment.vendor_id) == ("4242", 480, 3)
    assert outcome("sub-1-day-1").outcome == O.AUTHORISED
    intent = SandboxIntent.objects.get(pk=payment.provider_ref)
    assert intent.off_session and intent.payment_method_id == saved.payment_method_ref
    assert [s["status"] for s in status_signals] == ["authorised"]


@live
def test_capture_true_takes_the_money_at_once(sandbox):
    saved = save_card(CustomerProfileFactory())
    payment = charge(saved, "k-capture", capture=True)
    assert payment.status == P.CAPTURED and payment.amount_captured == 4800
    assert outcome("k-capture").outcome == O.CAPTURED


@live
def test_a_hard_decline_leaves_the_payment_pending_and_the_card_needing_attention(
    sandbox, status_signals
):
    saved = save_card(CustomerProfileFactory(), DECLINE)
    payment = charge(saved, "k-hard")
    attempt = outcome("k-hard")
    # The order is not ended by it: the payment waits, nothing told to the order
    assert payment.status == P.PENDING and payment.failure_code == "card_declined"
    assert (attempt.outcome, attempt.decline_kind) == (O.DECLINED, "hard")
    assert list(status_signals) == []
    saved.refresh_from_db()
    assert saved.status == SavedCard.Status.NEEDS_ATTENTION
    # ...and it is never retried
    assert vault.charge_retry_at(attempt=1, decline_kind="hard", now=datetime.now(UTC)) is None
    with pytest.raises(InvalidTransition):
        charge(saved, "k-hard-again")


@pytest.mark.parametrize(
    "number,code", [(INSUFFICIENT, "insufficient_funds"), (TRY_LATER, "try_again_later")]
)
@live
def test_a_soft_decline_is_retried_on_the_same_payment_and_can_succeed(sandbox, number, code):
    customer = CustomerProfileFactory()
    short = save_card(customer, number)
    payment = charge(short, "k-soft-1")
    attempt = outcome("k-soft-1")
    assert (attempt.outcome, attempt.decline_kind, attempt.failure_code) == (
        O.DECLINED,
        "soft",
        code,
    )
    short.refresh_from_db()
    assert short.status == SavedCard.Status.ACTIVE and payment.status == P.PENDING
    # The retry (a new key) confirms the same intent again, here with another card of theirs
    good = save_card(customer)
    retried = charge(good, "k-soft-2")
    assert retried.pk == payment.pk and retried.provider_ref == payment.provider_ref
    assert retried.status == P.AUTHORISED
    assert SandboxIntent.objects.get(pk=payment.provider_ref).declines == 1


@live
def test_a_card_that_needs_the_customer_back_waits_for_their_confirmation(sandbox):
    saved = save_card(CustomerProfileFactory(), AUTH_LATER)  # saving it needed no confirmation
    payment = charge(saved, "k-auth")
    attempt = outcome("k-auth")
    assert attempt.outcome == O.AUTHENTICATION_REQUIRED
    assert attempt.decline_kind == "authentication_required"
    assert attempt.action_url and payment.checkout_url == attempt.action_url
    assert payment.status == P.PENDING
    # The customer opens the link, confirms the payment, and the platform learns it
    browser = Client()
    opened = browser.get(urlsplit(attempt.action_url).path)
    assert opened.status_code == 302 and "/challenge/" in opened["Location"]
    confirmed = browser.post(opened["Location"], {"decision": "approve"})
    assert confirmed.status_code == 302
    # ...through the provider's webhook, with nobody asking
    sandbox.deliver()
    payment.refresh_from_db()
    assert payment.status == P.AUTHORISED
    assert services.payment_sync(payment_id=payment.pk).status == P.AUTHORISED


@live
def test_the_same_key_charges_once(sandbox):
    saved = save_card(CustomerProfileFactory(), INSUFFICIENT)
    first = charge(saved, "k-once")
    again = charge(saved, "k-once")
    assert first.pk == again.pk
    assert CardCharge.objects.count() == 1
    assert SandboxIntent.objects.get().declines == 1
    # A key used for another order is refused
    with pytest.raises(ValidationError) as reused:
        charge(saved, "k-once", order_id=8)
    assert reused.value.code == "key_reused"


@live
def test_the_sandbox_api_replays_an_off_session_decline_and_refuses_bad_input(sandbox):
    customer = CustomerProfileFactory()
    saved = save_card(customer, DECLINE)
    other = save_card(CustomerProfileFactory())
    body = {
        "amount": 1000,
        "currency": "KRW",
        "return_url": SHOP,
        "customer": saved.provider_customer_ref,
        "payment_method": saved.payment_method_ref,
        "off_session": True,
    }
    with sandbox.api() as api:
        first = api.post("intents", json=body, headers={"Idempotency-Key": "raw-1"})
        second = api.post("intents", json=body, headers={"Idempotency-Key": "raw-1"})
        assert first.status_code == second.status_code == 201
        assert first.json()["decline_kind"] == "hard"
        assert first.json()["failure_code"] == "card_declined"
        assert second.headers["Idempotent-Replayed"] == "true"
        assert second.json()["id"] == first.json()["id"]
        # off_session is required, the card must be the customer's, and must exist
        assert api.post("intents", json={**body, "off_session": None}).status_code == 400
        theirs = {**body, "payment_method": other.payment_method_ref}
        assert api.post("intents", json=theirs).status_code == 400
        assert api.post("intents", json={**body, "payment_method": "pm_nope"}).status_code == 404
        listed = api.get(f"customers/{saved.provider_customer_ref}/payment_methods").json()
        assert [pm["id"] for pm in listed["data"]] == [saved.payment_method_ref]
        assert "number" not in str(listed)
    assert SandboxIntent.objects.count() == 1


# --- removing a card -------------------------------------------------------------------------------


@live
def test_removing_the_default_card_detaches_it_and_moves_the_default(sandbox):
    customer = CustomerProfileFactory()
    first, second = save_card(customer), save_card(customer)
    removed = vault.card_detach(customer=customer, card_id=first.pk)
    assert removed.status == SavedCard.Status.DETACHED and not removed.is_default
    assert SandboxPaymentMethod.objects.get(pk=first.payment_method_ref).detached_at is not None
    second.refresh_from_db()
    assert second.is_default
    assert list(vault.cards_of(customer=customer)) == [second]
    with pytest.raises(InvalidTransition):
        vault.card_detach(customer=customer, card_id=first.pk)
    with pytest.raises(InvalidTransition):
        charge(removed, "k-removed")
    # Another customer's card is as unknown as a missing one
    with pytest.raises(ValidationError) as theirs:
        vault.card_detach(customer=CustomerProfileFactory(), card_id=second.pk)
    assert theirs.value.code == "not_found"


# --- the retry schedule ----------------------------------------------------------------------------


NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def test_the_retry_schedule_follows_the_setting(settings):
    settings.OFF_SESSION_RETRY_HOURS = [1, 6, 24]
    soft = [vault.charge_retry_at(attempt=n, decline_kind="soft", now=NOW) for n in (1, 2, 3, 4)]
    assert soft == [
        NOW + timedelta(hours=1),
        NOW + timedelta(hours=6),
        NOW + timedelta(hours=24),
        None,
    ]
    assert vault.charge_retry_at(attempt=1, decline_kind="authentication_required", now=NOW) is None
    with pytest.raises(ValueError):
        vault.charge_retry_at(attempt=0, decline_kind="soft", now=NOW)


@given(
    hours=st.lists(st.integers(min_value=1, max_value=200), max_size=6),
    attempt=st.integers(min_value=1, max_value=10),
    kind=st.sampled_from(["hard", "soft", "authentication_required", ""]),
)
def test_retries_only_soft_declines_within_the_schedule(hours, attempt, kind):
    from django.test import override_settings

    with override_settings(OFF_SESSION_RETRY_HOURS=hours):
        at = vault.charge_retry_at(attempt=attempt, decline_kind=kind, now=NOW)
    if kind == "soft" and attempt <= len(hours):
        assert at == NOW + timedelta(hours=hours[attempt - 1]) and at > NOW
    else:
        assert at is None


# --- the page and the API: own cards only ----------------------------------------------------------


def _logged_in(customer) -> Client:
    client = Client()
    client.force_login(customer.user)
    return client


@live
def test_the_cards_page_adds_lists_and_removes_only_own_cards(sandbox):
    owner, other = CustomerProfileFactory(), CustomerProfileFactory()
    theirs = save_card(other)
    browser = _logged_in(owner)
    page = reverse("payments:cards")
    # Add: the page sends the browser to the setup page, which sends it back here
    added = browser.post(page, {"action": "add"})
    assert added.status_code == 302 and "/sandbox/setup/" in added["Location"]
    back = Client().post(urlsplit(added["Location"]).path, card(APPROVE))
    kept = browser.get(urlsplit(back["Location"]).path + "?" + urlsplit(back["Location"]).query)
    assert kept.status_code == 302
    mine = SavedCard.objects.get(customer=owner)
    html = browser.get(page).content.decode()
    assert "4242" in html and f'value="{theirs.pk}"' not in html
    # Someone else's card: 404, untouched
    assert browser.post(page, {"action": "remove", "card": theirs.pk}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == SavedCard.Status.ACTIVE
    assert browser.post(page, {"action": "remove", "card": mine.pk}).status_code == 302
    mine.refresh_from_db()
    assert mine.status == SavedCard.Status.DETACHED
    # Not logged in: to the login page
    assert Client().get(page).status_code == 302


@live
def test_the_cards_api_lists_saves_and_deletes_only_own_cards(sandbox):
    owner, other = CustomerProfileFactory(), CustomerProfileFactory()
    theirs = save_card(other)
    api = APIClient()
    api.force_authenticate(owner.user)
    started = api.post("/api/me/cards/", {"return_url": SHOP}, format="json")
    assert started.status_code == 201
    back = Client().post(urlsplit(started.json()["setup_url"]).path, card(APPROVE))
    ref = parse_qs(urlsplit(back["Location"]).query)["setup_session"][0]
    saved = api.post("/api/me/cards/", {"setup_session": ref}, format="json")
    assert saved.status_code == 201 and saved.json()["last4"] == "4242"
    assert [c["id"] for c in api.get("/api/me/cards/").json()] == [saved.json()["id"]]
    # Another's setup or card: 404
    other_api = APIClient()
    other_api.force_authenticate(other.user)
    assert (
        other_api.post("/api/me/cards/", {"setup_session": ref}, format="json").status_code == 404
    )
    assert api.delete(f"/api/me/cards/{theirs.pk}/").status_code == 404
    assert api.post("/api/me/cards/", {}, format="json").status_code == 400
    assert api.delete(f"/api/me/cards/{saved.json()['id']}/").status_code == 204
    assert api.get("/api/me/cards/").json() == []
    assert APIClient().get("/api/me/cards/").status_code in (401, 403)
    assert SandboxSetupSession.objects.count() == 2


# --- races (real PostgreSQL connections, real threads) ---------------------------------------------


def _race(*calls) -> list:
    """Run the calls at once, each in its own thread (and database connection)."""
    from django.db import connection

    results: list = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i, call) -> None:
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test reads
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@live
def test_two_charges_of_one_order_at_once_open_one_intent_and_charge_once(sandbox):
    # Given a saved card and an order not paid yet
    saved = save_card(CustomerProfileFactory())
    # When two retries with different keys race for the order
    results = _race(lambda: charge(saved, "race-a"), lambda: charge(saved, "race-b"))
    # Then one intent exists at the provider, authorised once; the loser was told or saw it paid
    assert SandboxIntent.objects.count() == 1
    assert Payment.objects.get().status == P.AUTHORISED
    for r in results:
        assert isinstance(r, (Payment, InvalidTransition)), r
    assert CardCharge.objects.filter(outcome=O.AUTHORISED).count() == 1


@live
def test_the_same_key_twice_at_once_charges_once(sandbox):
    saved = save_card(CustomerProfileFactory())
    results = _race(lambda: charge(saved, "same"), lambda: charge(saved, "same"))
    assert all(isinstance(r, Payment) and r.status == P.AUTHORISED for r in results), results
    assert SandboxIntent.objects.count() == 1 and CardCharge.objects.count() == 1


# --- bad input: a clear refusal, never a 500 ---------------------------------------------------------


@live
def test_the_vault_api_of_the_sandbox_refuses_bad_input_clearly(sandbox):
    with sandbox.api() as api:
        customer = api.post("customers", json={"reference": "customer-1"}).json()["id"]
        cases = [
            ("POST", "customers", {"email": 5}, 400),
            ("GET", "customers/cus_nope", None, 404),
            ("GET", "customers/cus_%00/payment_methods", None, 404),
            ("POST", "payment_methods/pm_nope/detach", {}, 404),
            ("POST", "setup_sessions", {"customer": customer, "return_url": "ftp://x"}, 400),
            ("POST", "setup_sessions", {"customer": None, "return_url": SHOP}, 404),
            ("GET", "setup_sessions/seti_nope", None, 404),
            ("POST", "intents/pi_nope/confirm", {}, 404),
        ]
        for method, path, body, expected in cases:
            response = api.request(method, path, json=body)
            assert response.status_code == expected, (path, response.text)
            assert response.json()["error"]["message"]
        setup = api.post("setup_sessions", json={"customer": customer, "return_url": SHOP}).json()
        assert setup["status"] == "open" and setup["payment_method"] is None
        # An intent paid on the card page is no saved card's: it can't be confirmed off-session
        plain = api.post("intents", json={"amount": 100, "currency": "KRW", "return_url": SHOP})
        refused = api.post(f"intents/{plain.json()['id']}/confirm", json={})
        assert refused.status_code == 400


@live
def test_off_session_charges_refuse_bad_arguments(sandbox):
    saved = save_card(CustomerProfileFactory())
    for kwargs in ({"amount": 0}, {"amount": True}, {"currency": "XXX"}, {"commission": 99_999}):
        with pytest.raises(ValidationError):
            charge(saved, "k-bad", **kwargs)
    for key in ("", "x" * 101, "a\x00b"):
        with pytest.raises(ValidationError):
            charge(saved, key)
    with pytest.raises(ValidationError) as missing:
        vault.payment_charge_off_session(
            order_id=7, card_id=10**9, idempotency_key="k", amount=100, currency="KRW"
        )
    assert missing.value.code == "not_found"
    assert not SandboxIntent.objects.exists() and not CardCharge.objects.exists()


@pytest.mark.django_db
def test_the_cards_list_costs_a_fixed_number_of_queries(django_assert_max_num_queries):
    from tests.payments.factories import SavedCardFactory

    customer = CustomerProfileFactory()
    SavedCardFactory.create_batch(5, customer=customer)
    api = APIClient()
    api.force_authenticate(customer.user)
    with django_assert_max_num_queries(3):
        response = api.get("/api/me/cards/")
    assert len(response.json()) == 5
