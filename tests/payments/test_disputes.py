"""Disputes: opened within the window after capture, one open per order; closed by staff, perhaps
with a refund through the payments service (over HTTP to the sandbox); held settlements released."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.utils import timezone

from o2o.errors import NotAllowed
from payments import disputes, ledger, settlement
from payments.errors import InvalidTransition, PaymentError
from payments.models import Dispute, Payment, Payout, Refund, Settlement
from tests.factories import StaffFactory, UserFactory, VendorFactory

from .factories import PaymentFactory
from .money import captured, days_later

D = Dispute.Status


@pytest.mark.django_db
def test_a_dispute_is_opened_within_the_window_once_per_order(settings):
    settings.DISPUTE_WINDOW_DAYS = 7
    customer = UserFactory()
    payment = captured(vendor_id=VendorFactory().pk)
    # Bad input is refused with a message
    with pytest.raises(PaymentError) as bad:
        disputes.dispute_open(order_id=payment.order_id, opened_by=customer, reason="  ")
    assert "reason" in bad.value.message_dict
    with pytest.raises(PaymentError) as no_payment:
        disputes.dispute_open(order_id=999_999, opened_by=customer, reason="late")
    assert no_payment.value.code == "not_found"
    authorised = PaymentFactory(authorised=True)
    with pytest.raises(InvalidTransition) as not_paid:
        disputes.dispute_open(order_id=authorised.order_id, opened_by=customer, reason="late")
    assert not_paid.value.code == "not_captured"
    # Within the window: opened, and a second one is refused while it is open
    dispute = disputes.dispute_open(
        order_id=payment.order_id, opened_by=customer, reason="the milk was sour"
    )
    assert (dispute.status, dispute.vendor_id, dispute.payment_id) == (
        D.OPEN,
        payment.vendor_id,
        payment.pk,
    )
    with pytest.raises(InvalidTransition) as twice:
        disputes.dispute_open(order_id=payment.order_id, opened_by=customer, reason="again")
    assert twice.value.code == "already_open"
    # After the window: refused
    disputes.dispute_resolve(dispute_id=dispute.pk, actor=StaffFactory(), note="ok", reject=True)
    late = payment.captured_at + timedelta(days=7, seconds=1)
    with pytest.raises(PaymentError) as too_late:
        disputes.dispute_open(order_id=payment.order_id, opened_by=customer, reason="x", at=late)
    assert too_late.value.code == "window_closed"
    # Once closed, a new one may be opened in the window
    assert disputes.dispute_open(order_id=payment.order_id, opened_by=customer, reason="y").pk


@pytest.mark.django_db
def test_only_staff_close_a_dispute_and_only_once():
    payment = captured(vendor_id=VendorFactory().pk)
    dispute = disputes.dispute_open(order_id=payment.order_id, opened_by=None, reason="broken")
    staff = StaffFactory()
    with pytest.raises(NotAllowed):
        disputes.dispute_resolve(dispute_id=dispute.pk, actor=UserFactory(), note="no")
    with pytest.raises(PaymentError):
        disputes.dispute_resolve(dispute_id=dispute.pk, actor=staff, note="")
    with pytest.raises(PaymentError):
        disputes.dispute_resolve(
            dispute_id=dispute.pk, actor=staff, note="x", refund_amount=100, reject=True
        )
    with pytest.raises(PaymentError) as too_much:
        disputes.dispute_resolve(dispute_id=dispute.pk, actor=staff, note="x", refund_amount=10**6)
    assert "amount" in too_much.value.message_dict
    assert Dispute.objects.get(pk=dispute.pk).status == D.OPEN
    assert not Refund.objects.exists()
    closed = disputes.dispute_resolve(
        dispute_id=dispute.pk, actor=staff, note="not our fault", reject=True
    )
    assert (closed.status, closed.resolved_by, closed.resolution_note) == (
        D.REJECTED,
        staff,
        "not our fault",
    )
    with pytest.raises(InvalidTransition):
        disputes.dispute_resolve(dispute_id=dispute.pk, actor=staff, note="again")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_resolving_with_a_refund_gives_money_back_and_releases_the_settlement(sandbox):
    # Given an order paid through the sandbox, disputed, and its day settled (held)
    vendor = VendorFactory()
    payment = sandbox.authorised(order_id=31, amount=10_000)
    Payment.objects.filter(pk=payment.pk).update(vendor_id=vendor.pk, commission=1_000)
    from payments import services

    services.payment_capture(payment_id=payment.pk)
    dispute = disputes.dispute_open(order_id=31, opened_by=None, reason="half was missing")
    settlement.settlements_run(now=days_later(1))
    held = Settlement.objects.get()
    assert held.status == Settlement.Status.HELD and not Payout.objects.exists()
    # When staff resolve it with a refund of 4,000 (through the payments service)
    closed = disputes.dispute_resolve(
        dispute_id=dispute.pk,
        actor=StaffFactory(),
        note="refund the missing half",
        refund_amount=4_000,
    )
    # Then the refund went to the provider and the ledger, and the held settlement was released
    assert closed.status == D.RESOLVED
    assert closed.refund.status == Refund.Status.SUCCEEDED and closed.refund.amount == 4_000
    assert sandbox.intent(payment).amount_refunded == 4_000
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 4_000
    released = Settlement.objects.get()
    assert released.status == Settlement.Status.RELEASED
    assert released.payout.amount == 9_000  # the refund's reversal goes to the next settlement
    assert ledger.vendor_payable(vendor.pk) == 9_000 - 3_600


@pytest.mark.django_db
def test_staff_close_disputes_from_the_admin_with_a_note():
    payment = captured(vendor_id=VendorFactory().pk)
    dispute = disputes.dispute_open(order_id=payment.order_id, opened_by=None, reason="broken")
    client = Client(headers={"accept-language": "en"})
    client.force_login(StaffFactory())
    url = "/admin/payments/dispute/"
    selected = {"action": "resolve", ACTION_CHECKBOX_NAME: [dispute.pk]}
    # The action asks for a note first
    page = client.post(url, selected)
    assert page.status_code == 200 and b"Resolution note" in page.content
    # A missing note shows the form again
    again = client.post(url, {**selected, "apply": "1", "outcome": "rejected", "note": ""})
    assert again.status_code == 200 and Dispute.objects.get().status == D.OPEN
    done = client.post(
        url, {**selected, "apply": "1", "outcome": "rejected", "note": "photo shows it fine"}
    )
    assert done.status_code == 302
    closed = Dispute.objects.get()
    assert (closed.status, closed.resolution_note) == (D.REJECTED, "photo shows it fine")
    assert closed.resolved_at <= timezone.now()
