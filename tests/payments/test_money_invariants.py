"""The money invariants, after any sequence of operations (a hypothesis state machine over capture,
partial and full refunds, disputes, settlement, payouts sent / paid / failed and staff retries),
checked after every step against a model kept by the test:

- every journal transaction balances;
- the platform's commission is the sum of captured commissions minus the reversals (pro rata of
  what was refunded, all of it once everything was);
- each vendor's payable balance is its captured share, minus refunds' shares, minus payouts sent,
  plus failed payouts returned;
- no journal transaction is settled twice, each settlement line says what its journal transaction
  did to the payable balance, and what is settled plus what is not yet equals what was earned plus
  what came back from failed payouts;
- a released settlement has one payout of its net; a held one sends none;
- the provider's fees (booked with each capture, kept on refunds) are the platform's cost: the
  provider_fees account holds their sum, and provider clearing holds what was captured, less what
  was refunded, the fees and the payouts paid;
- the reconciliation's ledger checks find nothing.

Driven at the ledger level (payment rows + ledger_record, as payments.services does it, and the
payout transitions directly) so that each example is fast; the provider is tested over HTTP
elsewhere."""

from collections import defaultdict
from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from o2o.money import basis_points_of
from payments import disputes, ledger, payouts, reconciliation, settlement
from payments.commission import commission_of
from payments.errors import InvalidTransition
from payments.ledger import pro_rata
from payments.models import (
    Dispute,
    JournalKind,
    LedgerEntry,
    Payment,
    Payout,
    Settlement,
    SettlementLine,
)
from tests.factories import StaffFactory, VendorFactory

from .money import captured, refunded

P = Payout.Status
S = Settlement.Status


def _signed(entries) -> int:
    """Credits minus debits of these entries (the payable side)."""
    sums = entries.aggregate(
        c=Sum("amount", filter=Q(side="C")), d=Sum("amount", filter=Q(side="D"))
    )
    return (sums["c"] or 0) - (sums["d"] or 0)


class Model:
    """What the books must say, kept by the test from the operations alone."""

    def __init__(self) -> None:
        # payment id -> [vendor id, captured, commission still held, refunded]
        self.payments: dict[int, list[int]] = {}
        # payment id -> a regular's commitment price advantage the platform still pays on it
        self.advantage: dict[int, int] = defaultdict(int)
        self.payouts: dict[int, str] = {}  # payout id -> status the test moved it to
        self.fees: dict[int, int] = {}  # payment id -> the provider's fee for its capture

    def commission(self) -> int:
        """The commission the platform still holds: what each capture took, less what refunds
        gave back (an amount gives back its share of what is still captured; the last refund
        gives back the rest)."""
        return sum(c for _v, _a, c, _r in self.payments.values())

    def earned(self, vendor_id: int) -> int:
        """Captured share minus the refunds' shares."""
        return sum(
            (a - r) - c + self.advantage[pk]
            for pk, (v, a, c, r) in self.payments.items()
            if v == vendor_id
        )

    def refund(self, payment_id: int, amount: int) -> None:
        v, a, c, r = self.payments[payment_id]
        back = c if r + amount >= a else min(pro_rata(c, amount, a - r), amount)
        adv = self.advantage[payment_id]
        self.advantage[payment_id] = 0 if r + amount >= a else adv - pro_rata(adv, amount, a - r)
        self.payments[payment_id] = [v, a, c - back, r + amount]


class MoneyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.model = Model()
        self.vendors: list[int] = []
        self.staff = None
        self.base = timezone.now()
        self.day = 0

    @initialize()
    def setup(self) -> None:
        self.vendors = [VendorFactory().pk for _ in range(2)]
        self.staff = StaffFactory()

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    # --- helpers ---------------------------------------------------------------------------------

    def _refundable(self) -> list[int]:
        return sorted(pk for pk, (_v, a, _c, r) in self.model.payments.items() if r < a)

    def _payouts(self, status: str) -> list[int]:
        return sorted(pk for pk, s in self.model.payouts.items() if s == status)

    def _refund(self, payment_id: int, amount: int) -> None:
        refunded(payment_id, amount)
        self.model.refund(payment_id, amount)

    def _new_payouts(self) -> None:
        for pk in Payout.objects.exclude(pk__in=list(self.model.payouts)).values_list(
            "pk", flat=True
        ):
            self.model.payouts[pk] = P.PENDING

    # --- operations ------------------------------------------------------------------------------

    @rule(
        vendor=st.integers(0, 1),
        amount=st.integers(1, 200_000),
        bps=st.integers(0, 3_000),
        fee_bps=st.integers(0, 500),
        advantage_bps=st.sampled_from([0, 0, 500, 1000]),
    )
    def place_and_capture(
        self, vendor: int, amount: int, bps: int, fee_bps: int, advantage_bps: int
    ) -> None:
        commission = commission_of(amount, bps)
        fee = basis_points_of(amount, fee_bps)
        advantage = basis_points_of(amount, advantage_bps)  # a regular's commitment delivery
        payment = captured(
            vendor_id=self.vendors[vendor],
            amount=amount,
            commission=commission,
            provider_fee=fee,
            price_advantage=advantage,
        )
        self.model.payments[payment.pk] = [self.vendors[vendor], amount, commission, 0]
        self.model.advantage[payment.pk] = advantage
        self.model.fees[payment.pk] = fee

    @precondition(lambda self: any(a - r >= 2 for _v, a, _c, r in self.model.payments.values()))
    @rule(data=st.data(), share=st.integers(1, 99))
    def partial_refund(self, data, share: int) -> None:
        candidates = [
            pk
            for pk in self._refundable()
            if self.model.payments[pk][1] - self.model.payments[pk][3] >= 2
        ]
        pk = data.draw(st.sampled_from(candidates))
        left = self.model.payments[pk][1] - self.model.payments[pk][3]
        self._refund(pk, min(left - 1, max(1, left * share // 100)))

    @precondition(lambda self: bool(self._refundable()))
    @rule(data=st.data())
    def full_refund(self, data) -> None:
        pk = data.draw(st.sampled_from(self._refundable()))
        _v, a, _c, r = self.model.payments[pk]
        self._refund(pk, a - r)

    @precondition(lambda self: bool(self.model.payments))
    @rule(data=st.data())
    def open_dispute(self, data) -> None:
        pk = data.draw(st.sampled_from(sorted(self.model.payments)))
        order_id = Payment.objects.values_list("order_id", flat=True).get(pk=pk)
        try:
            disputes.dispute_open(order_id=order_id, opened_by=None, reason="a problem")
        except InvalidTransition:
            assert Dispute.objects.filter(order_id=order_id, status="open").exists()

    @precondition(lambda self: Dispute.objects.filter(status="open").exists())
    @rule(data=st.data())
    def close_dispute(self, data) -> None:
        ids = sorted(Dispute.objects.filter(status="open").values_list("pk", flat=True))
        disputes.dispute_resolve(
            dispute_id=data.draw(st.sampled_from(ids)), actor=self.staff, note="ok", reject=True
        )

    @rule()
    def settle(self) -> None:
        self.day += 1
        settlement.settlements_run(now=self.base + timedelta(days=self.day))
        self._new_payouts()

    @precondition(lambda self: bool(self._payouts(P.PENDING)))
    @rule(data=st.data())
    def payout_sent(self, data) -> None:
        pk = data.draw(st.sampled_from(self._payouts(P.PENDING)))
        payout = Payout.objects.select_related("settlement").get(pk=pk)
        # What payout_send checks before it asks the provider: a hold keeps the money in
        if settlement.settlement_hold(settlement_id=payout.settlement_id):
            assert Settlement.objects.get(pk=payout.settlement_id).status == S.HELD
            return
        if payout.settlement.status != S.RELEASED:
            return
        assert payouts.payout_mark_sent(payout_id=pk, provider_ref=f"po_test_{pk}")
        assert not payouts.payout_mark_sent(payout_id=pk, provider_ref="again")  # once
        self.model.payouts[pk] = P.SENT

    @precondition(lambda self: bool(self._payouts(P.SENT)))
    @rule(data=st.data())
    def payout_paid(self, data) -> None:
        pk = data.draw(st.sampled_from(self._payouts(P.SENT)))
        assert payouts.payout_mark_paid(payout_id=pk)
        assert not payouts.payout_mark_paid(payout_id=pk)  # once
        self.model.payouts[pk] = P.PAID

    @precondition(lambda self: bool(self._payouts(P.SENT)))
    @rule(data=st.data())
    def payout_fails(self, data) -> None:
        pk = data.draw(st.sampled_from(self._payouts(P.SENT)))
        assert payouts.payout_mark_failed(payout_id=pk, failure_code="x", failure_message="")
        assert not payouts.payout_mark_paid(payout_id=pk)  # never both
        self.model.payouts[pk] = P.FAILED

    @precondition(lambda self: bool(self._payouts(P.FAILED)))
    @rule(data=st.data())
    def retry(self, data) -> None:
        pk = data.draw(st.sampled_from(self._payouts(P.FAILED)))
        returned = SettlementLine.objects.filter(journal_transaction__key=f"payout_failed:{pk}")
        already = returned.exists()
        try:
            with transaction.atomic():
                payouts.payout_retry(payout_id=pk, actor=self.staff)
        except InvalidTransition:
            assert already  # refused only when its money was taken already
        else:
            assert not already
        self._new_payouts()

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def every_journal_transaction_balances(self) -> None:
        assert ledger.unbalanced_transactions() == []

    @invariant()
    def commission_is_captured_minus_reversed(self) -> None:
        assert ledger.balance(ledger.COMMISSION_REVENUE) == self.model.commission()

    @invariant()
    def the_commitment_advantage_is_paid_less_what_refunds_took_back(self) -> None:
        assert ledger.balance(ledger.SUBSCRIPTION_ADVANTAGE) == sum(self.model.advantage.values())
        # Each settlement's parts add up with it (the database holds this too)
        for s in Settlement.objects.exclude(status=S.BUILDING):
            assert s.net == (
                s.gross
                - s.refunds
                - s.commission
                - s.delivery_fees
                + s.price_advantage
                + s.adjustments
                + s.returned
            )

    def _amounts(self, status: str) -> dict[int, int]:
        ids = self._payouts(status)
        rows = (
            Payout.objects.filter(pk__in=ids)
            .values("vendor_id")
            .annotate(s=Sum("amount"))
            .values_list("vendor_id", "s")
        )
        return defaultdict(int, rows)

    @invariant()
    def each_vendor_is_owed_its_share_minus_payouts(self) -> None:
        sent, paid, failed = (self._amounts(s) for s in (P.SENT, P.PAID, P.FAILED))
        for v in self.vendors:
            # failed payouts were sent, then returned: they cancel out
            assert ledger.vendor_payable(v) == self.model.earned(v) - sent[v] - paid[v], v

    @invariant()
    def nothing_is_settled_twice_or_lost(self) -> None:
        assert not (
            SettlementLine.objects.values("journal_transaction")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .exists()
        )
        failed = self._amounts(P.FAILED)
        for v in self.vendors:
            payable = ledger.vendor_payable_account(v).pk
            lines = SettlementLine.objects.filter(settlement__vendor_id=v)
            # Each line says what its journal transaction did to the vendor's payable balance
            effect = _signed(
                LedgerEntry.objects.filter(
                    account_id=payable, transaction__settlement_line__settlement__vendor_id=v
                )
            )
            settled = lines.aggregate(s=Sum("net"))["s"] or 0
            assert settled == effect
            assert (
                lines.count()
                == LedgerEntry.objects.filter(
                    account_id=payable, transaction__settlement_line__isnull=False
                ).count()
            )
            unsettled = _signed(
                LedgerEntry.objects.filter(
                    account_id=payable,
                    transaction_id__in=settlement._unsettled(
                        payable, self.base + timedelta(days=10_000)
                    ).values("transaction_id"),
                )
            )
            # Settled + not yet settled = earned + returned by failed payouts
            assert settled + unsettled == self.model.earned(v) + failed[v], v
            # What is owed = not yet settled + settled but not paid out (held, or waiting)
            waiting = (
                Settlement.objects.filter(vendor_id=v, status__in=(S.HELD, S.RELEASED))
                .exclude(payout__status__in=(P.SENT, P.PAID, P.FAILED))
                .aggregate(s=Sum("net"))["s"]
                or 0
            )
            assert ledger.vendor_payable(v) == unsettled + waiting, v

    @invariant()
    def released_settlements_pay_their_net_once(self) -> None:
        for s in Settlement.objects.annotate(
            lines_net=Sum("lines__net"), lines_n=Count("lines")
        ).select_related("payout"):
            payout = getattr(s, "payout", None)
            if s.status == S.RELEASED:
                assert payout is not None and payout.amount == s.net > 0
            elif s.status == S.HELD:
                assert payout is None or payout.status == P.PENDING
            else:
                assert payout is None
            if s.status != S.CARRIED_FORWARD:
                assert (s.line_count, s.net) == (s.lines_n, s.lines_net or 0)

    @invariant()
    def the_providers_fees_are_the_platforms_cost(self) -> None:
        fees = sum(self.model.fees.values())
        assert ledger.balance(ledger.PROVIDER_FEES) == fees
        captured_ = sum(a for _v, a, _c, _r in self.model.payments.values())
        refunded_ = sum(r for _v, _a, _c, r in self.model.payments.values())
        paid = sum(self._amounts(P.PAID).values())
        assert ledger.balance(ledger.PROVIDER_CLEARING) == captured_ - refunded_ - fees - paid

    @invariant()
    def reconciliation_finds_nothing(self) -> None:
        assert list(reconciliation.ledger_findings()) == []


@pytest.mark.django_db
def test_money_invariants_hold_after_any_sequence_of_operations():
    run_state_machine_as_test(
        MoneyMachine,
        settings=settings(
            max_examples=20,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_the_model_gives_back_commission_as_the_ledger_rule_says():
    # 10,001 with 1,000 commission, refunded 3,333 then 3,333: 333 then 333 back (test_ledger)
    model = Model()
    model.payments[1] = [7, 10_001, 1_000, 0]
    model.refund(1, 3_333)
    assert model.commission() == 667
    model.refund(1, 3_333)
    assert model.commission() == 334
    model.refund(1, 3_335)
    assert model.commission() == 0
    assert model.earned(7) == 0
    assert JournalKind.PAYOUT_FAILED == "payout_failed"
