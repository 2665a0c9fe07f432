"""The ledger guards of migration payments 0005, in PostgreSQL itself: TRUNCATE of the ledger is
refused (also through TRUNCATE … CASCADE), a journal transaction without a debit and a credit
entry cannot commit, normal posting still commits, and the test suite's flush (the test backend,
tests/support/postgresql) still empties the ledger between transactional tests while the guard
stays on for everything else. Every test first checks that the guard is installed, so each fails
without the migration."""

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from payments import ledger
from payments.ledger import Line
from payments.models import JournalTransaction, LedgerEntry, Payment, Refund

from . import factories
from .conftest import PAYMENT_APPS

D, C = "D", "C"
pytestmark = pytest.mark.postgres

GUARD_TRIGGERS = {
    ("payments_journaltransaction", "payments_journaltransaction_no_truncate"),
    ("payments_ledgerentry", "payments_ledgerentry_no_truncate"),
    ("payments_journaltransaction", "payments_journaltransaction_has_entries"),
}
REFUSED = r"the ledger is append-only: TRUNCATE of payments_(journaltransaction|ledgerentry)"
NO_ENTRIES = r"needs a debit and a credit entry"


def _assert_guards_installed():
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                WHERE NOT t.tgisinternal AND t.tgenabled = 'O'"""
        )
        installed = set(cursor.fetchall())
    assert installed >= GUARD_TRIGGERS


def _post(key: str = "fee:guards", amount: int = 100) -> JournalTransaction | None:
    fees, clearing = ledger.account(ledger.PROVIDER_FEES), ledger.account(ledger.PROVIDER_CLEARING)
    return ledger.post(
        key=key,
        kind="provider_fee",
        currency="KRW",
        lines=[Line(fees, D, amount), Line(clearing, C, amount)],
    )


def _counts() -> tuple[int, int]:
    return JournalTransaction.objects.count(), LedgerEntry.objects.count()


def _replication_role() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('session_replication_role')")
        return cursor.fetchone()[0]


# --- TRUNCATE ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "sql",
    [
        "TRUNCATE payments_journaltransaction CASCADE",
        "TRUNCATE payments_ledgerentry",
        "TRUNCATE payments_ledgerentry, payments_journaltransaction RESTART IDENTITY CASCADE",
        # Reached through a cascade: the accounts and the payments the journal points at.
        "TRUNCATE payments_ledgeraccount CASCADE",
        "TRUNCATE payments_payment CASCADE",
    ],
)
def test_truncate_of_the_ledger_is_refused(sql):
    _assert_guards_installed()
    with transaction.atomic():
        _post()
    before = _counts()
    with (
        pytest.raises(IntegrityError, match=REFUSED),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert _counts() == before == (1, 2)


# --- a journal transaction needs its entries at COMMIT -------------------------------------------

INSERT_TXN = """INSERT INTO payments_journaltransaction (key, kind, currency, memo, created_at)
                VALUES (%s, 'adjustment', 'KRW', '', now()) RETURNING id"""
INSERT_ENTRY = """INSERT INTO payments_ledgerentry (transaction_id, account_id, side, amount)
                  VALUES (%s, %s, %s, %s)"""


@pytest.mark.django_db(transaction=True)
def test_a_journal_transaction_commits_with_its_entries_and_not_without():
    _assert_guards_installed()
    fees, clearing = ledger.account(ledger.PROVIDER_FEES), ledger.account(ledger.PROVIDER_CLEARING)

    # Nothing fails until COMMIT (the check is deferred), then the whole transaction is refused.
    with (
        pytest.raises(IntegrityError, match=NO_ENTRIES),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(INSERT_TXN, ["raw:empty"])
        cursor.execute("SELECT count(*) FROM payments_journaltransaction WHERE key = 'raw:empty'")
        assert cursor.fetchone()[0] == 1
    assert not JournalTransaction.objects.filter(key="raw:empty").exists()

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(INSERT_TXN, ["raw:balanced"])
        (txn_id,) = cursor.fetchone()
        cursor.execute(INSERT_ENTRY, [txn_id, fees.pk, D, 250])
        cursor.execute(INSERT_ENTRY, [txn_id, clearing.pk, C, 250])
    assert LedgerEntry.objects.filter(transaction__key="raw:balanced").count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_entryless_journal_transaction_in_a_savepoint_is_refused_at_commit_too():
    """A savepoint released (not rolled back) keeps the row and its pending check."""
    _assert_guards_installed()
    with pytest.raises(IntegrityError, match=NO_ENTRIES), transaction.atomic():
        _post("fee:fine")
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(INSERT_TXN, ["raw:inner"])
    assert _counts() == (0, 0)


# --- normal posting under the guard --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_posting_commits_under_the_guard_also_when_a_key_comes_twice():
    """ledger.post writes the row, then its entries; a key posted twice rolls its second row back
    to a savepoint, and that row's pending check goes with it."""
    _assert_guards_installed()
    with transaction.atomic():
        first = _post("fee:twice")
        again = _post("fee:twice")
    assert first is not None and again is None
    assert _counts() == (1, 2)


@pytest.mark.django_db(transaction=True)
def test_a_capture_and_a_refund_commit_under_the_guard():
    _assert_guards_installed()
    payment = factories.PaymentFactory(
        amount=10_000, commission=1_000, vendor_id=None, status=Payment.Status.AUTHORISED
    )
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(
            status=Payment.Status.CAPTURED, amount_captured=10_000
        )
        ledger.ledger_record(payment_id=payment.pk, kind="capture", amount=10_000, currency="KRW")
    with transaction.atomic():
        refund = Refund.objects.create(
            payment=payment, amount=4_000, reason="test", status=Refund.Status.SUCCEEDED
        )
        Payment.objects.filter(pk=payment.pk).update(amount_refunded=4_000)
        ledger.ledger_record(
            payment_id=payment.pk,
            kind="refund",
            amount=4_000,
            currency="KRW",
            refund_id=refund.pk,
        )
    kinds = set(JournalTransaction.objects.values_list("kind", flat=True))
    assert kinds == {"capture", "commission", "refund", "reversal"}
    assert ledger.unbalanced_transactions() == []


# --- the test flush ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_test_flush_empties_the_ledger_and_leaves_the_guard_on():
    _assert_guards_installed()
    with transaction.atomic():
        _post()
    with pytest.raises(IntegrityError, match=REFUSED), connection.cursor() as cursor:
        cursor.execute("TRUNCATE payments_ledgerentry, payments_journaltransaction CASCADE")
    assert _counts() == (1, 2)

    # What TransactionTestCase does after each test (a full flush, then post_migrate).
    call_command("flush", verbosity=0, interactive=False, reset_sequences=False)
    assert _counts() == (0, 0)

    # The flush's way around the guard ended with it: this session is ordinary again.
    assert _replication_role() == "origin"
    with pytest.raises(IntegrityError, match=REFUSED), connection.cursor() as cursor:
        cursor.execute("TRUNCATE payments_ledgerentry")
    with pytest.raises(IntegrityError, match=NO_ENTRIES), connection.cursor() as cursor:
        cursor.execute(INSERT_TXN, ["raw:after-flush"])


# A transactional test that posts, then one that finds the ledger empty: the flush between them
# (TransactionTestCase's teardown) went through the guard. The first errors at teardown when the
# flush is refused. (Under pytest-xdist the pair usually runs on one worker, each worker with its
# own database; the test above proves the same within one test.)


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_posts_to_the_ledger():
    _assert_guards_installed()
    with transaction.atomic():
        _post("fee:left-behind")
    assert _counts() == (1, 2)


@pytest.mark.django_db(transaction=True)
def test_the_next_transactional_test_finds_the_ledger_empty():
    _assert_guards_installed()
    assert _counts() == (0, 0)


@pytest.mark.django_db(transaction=True, available_apps=PAYMENT_APPS)
def test_a_transactional_test_of_the_payments_apps_only_posts_to_the_ledger():
    """Flushed with only the payments apps in the registry (TRUNCATE … CASCADE)."""
    _assert_guards_installed()
    with transaction.atomic():
        _post("fee:payments-apps")
    assert _counts() == (1, 2)


@pytest.mark.django_db(transaction=True, available_apps=PAYMENT_APPS)
def test_the_next_one_finds_the_ledger_empty():
    _assert_guards_installed()
    assert _counts() == (0, 0)
