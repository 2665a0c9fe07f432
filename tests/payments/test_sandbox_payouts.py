"""The sandbox's payouts and lists, as a merchant sees them: payouts honour idempotency keys, the test
bank accounts pay, fail or stay pending, and lists page by cursor within a creation window."""

from datetime import timedelta

import pytest
from django.utils import timezone

from payments.sandbox import services
from payments.sandbox.models import SandboxIntent, SandboxPayout

from .factories import SandboxIntentFactory, SandboxPayoutFactory
from .test_sandbox_api import Merchant

pytestmark = pytest.mark.django_db
PAYS, FAILS, PENDS = "110-123-456789", "000000000002", "000000000077"


@pytest.fixture
def merchant() -> Merchant:
    return Merchant()


def _payout(merchant: Merchant, account: str = PAYS, key: str | None = "payout-1", **overrides):
    body = {
        "amount": 9_000,
        "currency": "KRW",
        "reference": "payout-1",
        "destination": {"bank": "Sandbox Bank", "account_number": account, "holder": "Kim"},
    }
    return merchant.post("/payouts", {**body, **overrides}, key=key)


def test_a_payout_is_made_once_per_idempotency_key(merchant):
    first = _payout(merchant)
    assert first.status_code == 201, first.content
    again = _payout(merchant)
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert SandboxPayout.objects.count() == 1
    # The same key for another payout is refused
    other = _payout(merchant, amount=1)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_the_test_accounts_pay_fail_or_stay_pending(merchant):
    paid = _payout(merchant, PAYS, key="a").json()
    failed = _payout(merchant, FAILS, key="b").json()
    pending = _payout(merchant, PENDS, key="c").json()
    assert paid["status"] == "paid" and paid["failure_code"] is None
    assert (failed["status"], failed["failure_code"]) == ("failed", "account_closed")
    assert pending["status"] == "pending"
    # The bank answers later for the pending one, fetched by id
    services.payout_finish(payout_id=pending["id"], paid=False)
    fetched = merchant.get(f"/payouts/{pending['id']}").json()
    assert (fetched["status"], fetched["failure_code"]) == ("failed", "bank_rejected")
    with pytest.raises(services.SandboxError):
        services.payout_finish(payout_id=pending["id"], paid=True)
    assert merchant.get("/payouts/po_nope").status_code == 404


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount": 0},
        {"amount": "9000"},
        {"currency": "XXX"},
        {"destination": None},
        {"destination": {"account_number": "12"}},
        {"destination": {"account_number": "12ab5678"}},
    ],
)
def test_bad_payouts_are_refused_with_400(merchant, overrides):
    response = _payout(merchant, key=None, **overrides)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_request"
    assert not SandboxPayout.objects.exists()


def test_lists_page_by_cursor_within_a_creation_window(merchant):
    # Given five payouts today and one three days ago
    today = [SandboxPayoutFactory() for _ in range(5)]
    old = SandboxPayoutFactory()
    SandboxPayout.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    window = {
        "created_from": (timezone.now() - timedelta(days=1)).isoformat(),
        "created_to": str(int((timezone.now() + timedelta(minutes=1)).timestamp())),
    }
    # When the merchant pages through today's, two at a time
    seen, cursor = [], None
    for _ in range(5):
        page = merchant.get(
            "/payouts", limit="2", **window, **({"cursor": cursor} if cursor else {})
        ).json()
        seen += [p["id"] for p in page["data"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            assert cursor is None
            break
    # Then each of today's comes once, in creation order, and the old one not at all
    assert seen == [p.id for p in today]
    assert merchant.get("/payouts", cursor="po_unknown").status_code == 400
    assert merchant.get("/payouts", created_from="yesterday").status_code == 400


def test_intents_list_takes_the_same_window_and_cursor(merchant):
    intents = [SandboxIntentFactory() for _ in range(3)]
    SandboxIntent.objects.filter(pk=intents[0].pk).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    since = (timezone.now() - timedelta(days=1)).isoformat()
    first = merchant.get("/intents", created_from=since, limit="1").json()
    assert [i["id"] for i in first["data"]] == [intents[1].id] and first["has_more"]
    second = merchant.get(
        "/intents", created_from=since, limit="1", cursor=first["next_cursor"]
    ).json()
    assert [i["id"] for i in second["data"]] == [intents[2].id]
    assert second["has_more"] is False and second["next_cursor"] is None
