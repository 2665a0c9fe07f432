"""The double-entry ledger: balanced, append-only (in Python and in the database), once per
movement, and the split of every captured won into the vendor's share and the platform's part,
given back pro rata on partial refunds so that the parts still add up."""

from datetime import timedelta
from fractions import Fraction

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments import ledger
from payments.commission import commission_bps_for, commission_of
from payments.ledger import LedgerError, Line
from payments.models import JournalTransaction, LedgerEntry, Payment, Refund
from tests.factories import StaffFactory, VendorFactory

from . import factories

D, C = "D", "C"
pytestmark = pytest.mark.django_db


def _captured(*, amount=10_000, commission=1_000, platform_fee=0, vendor_id=None) -> Payment:
    payment = factories.PaymentFactory(
        amount=amount,
        commission=commission,
        platform_fee=platform_fee,
        vendor_id=vendor_id if vendor_id is not None else VendorFactory().pk,
        status=Payment.Status.AUTHORISED,
    )
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(
            status=Payment.Status.CAPTURED, amount_captured=amount
        )
        ledger.ledger_record(payment_id=payment.pk, kind="capture", amount=amount, currency="KRW")
    payment.refresh_from_db()
    return payment


def _refund(payment: Payment, amount: int, *, commission: int | None = None) -> Refund:
    with transaction.atomic():
        refund = Refund.objects.create(
            payment=payment,
            amount=amount,
            reason="test",
            status=Refund.Status.SUCCEEDED,
            commission_hint=commission,
        )
        Payment.objects.filter(pk=payment.pk).update(
            amount_refunded=payment.amount_refunded + amount
        )
        payment.refresh_from_db()
        ledger.ledger_record(
            payment_id=payment.pk,
            kind="refund",
            amount=amount,
            currency="KRW",
            refund_id=refund.pk,
        )
    return refund


def _assert_every_transaction_balances():
    assert ledger.unbalanced_transactions() == []
    assert sum(ledger.totals().get(code, 0) for code in ("customer_funds", "refunds")) == 0


# --- commission ----------------------------------------------------------------------------------


@given(amount=st.integers(0, 10**12), bps=st.integers(0, 10_000))
def test_commission_is_gross_times_bps_rounded_half_up(amount, bps):
    exact = Fraction(amount * bps, 10_000)
    got = commission_of(amount, bps)
    # Half-up: the nearest integer, and exactly .5 goes up
    assert got - Fraction(1, 2) <= exact < got + Fraction(1, 2)
    assert 0 <= got <= amount
    # The vendor's share is the rest: the parts add up to the gross exactly
    assert got + (amount - got) == amount


def test_commission_rounding_examples():
    assert commission_of(1_005, 1_000) == 101  # 100.5 → 101
    assert commission_of(1_004, 1_000) == 100  # 100.4 → 100
    assert commission_of(15, 3_333) == 5  # 4.9995 → 5
    assert commission_of(0, 1_000) == 0


def test_the_most_specific_plan_in_force_wins(settings):
    settings.COMMISSION_DEFAULT_BPS = 1_000
    vendor, other = VendorFactory(), VendorFactory()
    from tests.factories import CategoryFactory

    milk, snack = CategoryFactory(), CategoryFactory()
    now = timezone.now()
    day = timedelta(days=1)
    # Nothing set: the setting
    assert commission_bps_for(vendor_id=vendor.pk, category_ids=[milk.pk], at=now) == (
        1_000,
        {milk.pk: 1_000},
    )
    factories.CommissionPlanFactory(bps=900, valid_from=now - day)  # platform default
    factories.CommissionPlanFactory(bps=700, category=milk, valid_from=now - day)
    factories.CommissionPlanFactory(bps=500, vendor=vendor, valid_from=now - day)
    factories.CommissionPlanFactory(bps=300, vendor=vendor, category=milk, valid_from=now - day)
    # Ended and future plans don't count
    factories.CommissionPlanFactory(
        bps=1, vendor=vendor, valid_from=now - 3 * day, valid_until=now - 2 * day
    )
    factories.CommissionPlanFactory(bps=2, vendor=vendor, valid_from=now + day)
    assert commission_bps_for(vendor_id=vendor.pk, category_ids=[milk.pk, snack.pk], at=now) == (
        500,
        {milk.pk: 300, snack.pk: 500},
    )
    assert commission_bps_for(vendor_id=other.pk, category_ids=[milk.pk, snack.pk], at=now) == (
        900,
        {milk.pk: 700, snack.pk: 900},
    )
    # Yesterday's order was placed under yesterday's plans
    assert commission_bps_for(vendor_id=vendor.pk, category_ids=[snack.pk], at=now - 2.5 * day)[
        1
    ] == {snack.pk: 1}


# --- posting rules -------------------------------------------------------------------------------


def test_a_posting_must_balance_be_positive_and_in_one_currency():
    clearing, fees = ledger.account(ledger.PROVIDER_CLEARING), ledger.account(ledger.PROVIDER_FEES)
    usd = ledger.account(ledger.PROVIDER_FEES, currency="USD")
    bad = [
        [Line(fees, D, 100), Line(clearing, C, 99)],
        [Line(fees, D, -100), Line(clearing, C, -100)],
        [Line(fees, D, 100), Line(usd, C, 100)],
        [Line(fees, D, 100)],
        [Line(fees, "X", 100), Line(clearing, C, 100)],
        [Line(fees, D, 1.5), Line(clearing, C, 1.5)],
    ]
    for lines in bad:
        with pytest.raises(LedgerError), transaction.atomic():
            ledger.post(key="k", kind="adjustment", currency="KRW", lines=lines)
    assert not JournalTransaction.objects.exists()


def test_a_movement_is_posted_once_per_key():
    clearing, fees = ledger.account(ledger.PROVIDER_CLEARING), ledger.account(ledger.PROVIDER_FEES)
    lines = [Line(fees, D, 100), Line(clearing, C, 100)]
    with transaction.atomic():
        first = ledger.post(key="fee:1", kind="provider_fee", currency="KRW", lines=lines)
        again = ledger.post(key="fee:1", kind="provider_fee", currency="KRW", lines=lines)
    assert first is not None and again is None
    assert ledger.balance(fees) == 100 and ledger.balance(clearing) == -100


def test_python_refuses_to_change_or_delete_the_ledger():
    txn = factories.JournalTransactionFactory()
    entry = txn.entries.first()
    for obj in (txn, entry):
        with pytest.raises(ValueError, match="append-only"):
            obj.save()
        with pytest.raises(ValueError, match="append-only"):
            obj.delete()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_raw_updates_and_deletes_of_the_ledger():
    txn = factories.JournalTransactionFactory()
    entry_id = txn.entries.first().pk
    for sql in (
        "UPDATE payments_ledgerentry SET amount = amount + 1 WHERE id = %s",
        "DELETE FROM payments_ledgerentry WHERE id = %s",
        "UPDATE payments_journaltransaction SET memo = 'edited' WHERE id = %s",
        "DELETE FROM payments_journaltransaction WHERE id = %s",
    ):
        target = txn.pk if "journaltransaction" in sql else entry_id
        with (
            pytest.raises((IntegrityError, InternalError), match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [target])
    assert LedgerEntry.objects.get(pk=entry_id).amount == 500
    assert JournalTransaction.objects.get(pk=txn.pk).memo == "a correction"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_outside_a_database_transaction_nothing_is_posted():
    clearing, fees = ledger.account(ledger.PROVIDER_CLEARING), ledger.account(ledger.PROVIDER_FEES)
    with pytest.raises(LedgerError):
        ledger.post(
            key="k",
            kind="adjustment",
            currency="KRW",
            lines=[Line(fees, D, 1), Line(clearing, C, 1)],
        )
    assert not JournalTransaction.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_to_commit_an_unbalanced_transaction():
    clearing = ledger.account(ledger.PROVIDER_CLEARING)
    fees = ledger.account(ledger.PROVIDER_FEES)
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        txn = JournalTransaction.objects.create(key="raw", kind="adjustment", currency="KRW")
        LedgerEntry.objects.create(transaction=txn, account=fees, side=D, amount=100)
        LedgerEntry.objects.create(transaction=txn, account=clearing, side=C, amount=90)
    assert not JournalTransaction.objects.filter(key="raw").exists()


# --- capture and refunds -------------------------------------------------------------------------


def test_a_capture_books_the_vendor_share_and_the_commission():
    payment = _captured(amount=10_000, commission=1_000)
    assert ledger.balance(ledger.PROVIDER_CLEARING) == 10_000
    assert ledger.vendor_payable(payment.vendor_id) == 9_000
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 1_000
    assert ledger.balance(ledger.CUSTOMER_FUNDS) == 0
    # Recording the same capture again writes nothing
    with transaction.atomic():
        ledger.ledger_record(payment_id=payment.pk, kind="capture", amount=10_000, currency="KRW")
    assert JournalTransaction.objects.filter(payment=payment).count() == 2
    _assert_every_transaction_balances()


def test_a_delivery_fee_the_platform_keeps_is_its_own_revenue():
    payment = _captured(amount=12_000, commission=1_000, platform_fee=2_000)
    assert ledger.vendor_payable(payment.vendor_id) == 9_000
    assert ledger.balance(ledger.DELIVERY_FEE_REVENUE) == 2_000
    _refund(payment, 12_000)
    assert ledger.balance(ledger.DELIVERY_FEE_REVENUE) == 0
    assert ledger.vendor_payable(payment.vendor_id) == 0
    _assert_every_transaction_balances()


def test_partial_refunds_give_the_commission_back_pro_rata_and_end_at_zero():
    payment = _captured(amount=10_001, commission=1_000)
    _refund(payment, 3_333)  # commission back: 333.27 → 333
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 667
    assert ledger.vendor_payable(payment.vendor_id) == 9_001 - 3_000
    _refund(payment, 3_333)  # of what is still captured: 667 × 3,333 / 6,668 = 333.4 → 333
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 334
    _refund(payment, 3_335)  # the rest: everything left, exactly
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 0
    assert ledger.vendor_payable(payment.vendor_id) == 0
    assert ledger.balance(ledger.PROVIDER_CLEARING) == 0
    _assert_every_transaction_balances()


def test_a_refunded_line_gives_back_exactly_its_commission():
    payment = _captured(amount=10_000, commission=1_300)
    _refund(payment, 2_000, commission=400)  # a line of ₩2,000 at 20 %
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 900
    assert ledger.vendor_payable(payment.vendor_id) == 8_700 - 1_600


def test_a_refunded_line_gives_back_none_of_the_delivery_fee_the_platform_keeps():
    # Given ₩12,000 captured: lines of ₩6,000 (commission 600) and ₩4,000 (400), and a ₩2,000
    # delivery fee the platform keeps
    payment = _captured(amount=12_000, commission=1_000, platform_fee=2_000)
    # When the first line is refunded (the delivery happened: its fee is not refunded)
    _refund(payment, 6_000, commission=600)
    # Then the platform gives back that line's commission and none of the fee; the rest of the
    # refund comes from the vendor, who keeps its share of the other line
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 400
    assert ledger.balance(ledger.DELIVERY_FEE_REVENUE) == 2_000
    assert ledger.vendor_payable(payment.vendor_id) == 4_000 - 400
    # And refunding the rest gives every part back exactly
    _refund(payment, 6_000)
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 0
    assert ledger.balance(ledger.DELIVERY_FEE_REVENUE) == 0
    assert ledger.vendor_payable(payment.vendor_id) == 0
    _assert_every_transaction_balances()


def test_an_amount_refunded_after_a_line_takes_its_share_of_what_is_still_captured():
    # Given ₩10,000 captured: a line of ₩5,000 at 0 % and one of ₩5,000 at 20 % (commission 1,000)
    payment = _captured(amount=10_000, commission=1_000)
    # And the 0 % line refunded with exactly its commission: none
    _refund(payment, 5_000, commission=0)
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 1_000
    assert ledger.vendor_payable(payment.vendor_id) == 4_000
    # When ₩1,000 more is refunded (a dispute)
    _refund(payment, 1_000)
    # Then the commission given back is that amount's share of the ₩5,000 still captured (200),
    # not of the whole payment, as if the first line had carried 20 % too (600)
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 800
    assert ledger.vendor_payable(payment.vendor_id) == 3_200
    _assert_every_transaction_balances()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    amount=st.integers(1, 200_000),
    bps=st.integers(0, 10_000),
    fee_share=st.integers(0, 100),
    parts=st.lists(st.integers(1, 100), min_size=1, max_size=6),
)
def test_any_refund_sequence_keeps_the_parts_adding_up(amount, bps, fee_share, parts):
    with transaction.atomic():
        fee = amount * fee_share // 400
        commission = commission_of(amount - fee, bps)
        payment = _captured(amount=amount, commission=commission, platform_fee=fee)
        left = amount
        for i, part in enumerate(parts):
            if left == 0:
                break
            this = left if i == len(parts) - 1 else max(1, min(left, amount * part // 100))
            _refund(payment, this)
            left -= this
            # At every step: each transaction balances; the platform never gives back more than
            # it took, nor the vendor; what was refunded left the provider clearing
            taken = ledger.balance(ledger.COMMISSION_REVENUE)
            assert 0 <= taken <= commission
            assert 0 <= ledger.vendor_payable(payment.vendor_id) <= amount - commission - fee
            assert ledger.balance(ledger.PROVIDER_CLEARING) == left
            _assert_every_transaction_balances()
        if left == 0:
            assert ledger.balance(ledger.COMMISSION_REVENUE) == 0
            assert ledger.balance(ledger.DELIVERY_FEE_REVENUE) == 0
            assert ledger.vendor_payable(payment.vendor_id) == 0
        transaction.set_rollback(True)


# --- adjustments ---------------------------------------------------------------------------------


def test_staff_adjust_with_a_reason_and_nobody_else_can():
    vendor = VendorFactory()
    staff = StaffFactory()
    with pytest.raises(LedgerError):
        ledger.adjustment_post(
            actor=vendor.user,
            debit="adjustments",
            credit=f"vendor_payable:{vendor.pk}",
            amount=500,
            reason="goodwill",
        )
    with pytest.raises(LedgerError):
        ledger.adjustment_post(
            actor=staff, debit="adjustments", credit="adjustments", amount=500, reason="x"
        )
    with pytest.raises(LedgerError):
        ledger.adjustment_post(
            actor=staff, debit="adjustments", credit="provider_clearing", amount=500, reason=" "
        )
    txn = ledger.adjustment_post(
        actor=staff,
        debit="adjustments",
        credit=f"vendor_payable:{vendor.pk}",
        amount=500,
        reason="goodwill for a broken cooler",
        key="form-1",
    )
    assert (txn.created_by, txn.memo, txn.vendor_id) == (
        staff,
        "goodwill for a broken cooler",
        vendor.pk,
    )
    assert ledger.vendor_payable(vendor.pk) == 500
    with pytest.raises(LedgerError):  # the same form sent twice
        ledger.adjustment_post(
            actor=staff,
            debit="adjustments",
            credit=f"vendor_payable:{vendor.pk}",
            amount=500,
            reason="goodwill for a broken cooler",
            key="form-1",
        )
    assert ledger.vendor_payable(vendor.pk) == 500
