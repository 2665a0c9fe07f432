"""Payments in the admin: every page opens, money can't be edited by hand, and the actions (capture,
void, refund what is left, sync) go through the services and the sandbox over HTTP."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from payments.models import Payment, Refund
from payments.sandbox.models import SandboxWebhookDelivery
from tests.factories import StaffFactory

from . import factories
from .conftest import pay

P = Payment.Status
OURS = [m for app in ("payments", "sandbox") for m in apps.get_app_config(app).get_models()]
# Staff write these through the admin (settings of the business, not records of what happened).
EDITABLE = {"payments.CommissionPlan", "payments.PayoutAccount"}


@pytest.fixture
def staff_client() -> Client:
    client = Client(headers={"accept-language": "en"})
    client.force_login(StaffFactory())
    return client


def test_every_payments_and_sandbox_model_is_in_the_admin_and_has_a_factory():
    assert {m._meta.label for m in OURS} <= {m._meta.label for m in admin.site._registry}
    for model in OURS:
        assert hasattr(factories, f"{model.__name__}Factory"), model


@pytest.mark.parametrize("model", OURS, ids=lambda m: m._meta.label)
@pytest.mark.django_db
def test_every_page_opens_for_staff(staff_client, model):
    obj = getattr(factories, f"{model.__name__}Factory")()
    info = (model._meta.app_label, model._meta.model_name)
    changelist = staff_client.get(reverse("admin:%s_%s_changelist" % info))
    assert changelist.status_code == 200
    assert changelist.context["cl"].result_count >= 1
    assert staff_client.get(reverse("admin:%s_%s_changelist" % info), {"q": "a"}).status_code == 200
    change = staff_client.get(reverse("admin:%s_%s_change" % info, args=[quote(obj.pk)]))
    assert change.status_code == 200
    if model._meta.label in EDITABLE:
        return
    # Records are written by services only: nothing to add, edit or delete by hand
    assert staff_client.get(reverse("admin:%s_%s_add" % info)).status_code == 403
    assert not [f for f in change.context["adminform"].form.fields if f != "id"]
    assert (
        staff_client.get(reverse("admin:%s_%s_delete" % info, args=[quote(obj.pk)])).status_code
        == 403
    )


@pytest.mark.django_db
def test_the_admin_is_for_staff_only(client):
    assert client.get("/admin/payments/payment/")["Location"].startswith("/admin/login/")


def _act(client: Client, action: str, *payments: Payment):
    return client.post(
        "/admin/payments/payment/",
        {"action": action, ACTION_CHECKBOX_NAME: [p.pk for p in payments]},
        follow=True,
    )


@pytest.mark.django_db(transaction=True)
def test_actions_go_through_the_services(sandbox, staff_client, ledger_calls):
    # Given a paid payment the platform has not synced, an authorised one and a pending one
    paid = sandbox.paid(order_id=1)
    authorised = sandbox.authorised(order_id=2)
    pending = sandbox.start(order_id=3)
    # When staff sync them all
    response = _act(staff_client, "sync", paid, authorised, pending)
    assert response.status_code == 200
    assert Payment.objects.get(pk=paid.pk).status == P.AUTHORISED
    # And capture the first and void the second (the pending one is refused with a warning)
    response = _act(staff_client, "capture", paid, pending)
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("1 payment: captured" in t for t in texts), texts
    assert any(f"payment {pending.pk}" in t and "authorised" in t for t in texts), texts
    _act(staff_client, "void", authorised)
    # And refund what is left of the captured one
    _act(staff_client, "refund_rest", paid)
    # Then each went through the services and the sandbox
    assert Payment.objects.get(pk=authorised.pk).status == P.VOIDED
    assert sandbox.intent(authorised).status == "voided"
    refunded = Payment.objects.get(pk=paid.pk)
    assert (refunded.status, refunded.amount_refunded) == (P.REFUNDED, 4800)
    assert Refund.objects.get().reason.endswith("(admin)")
    assert Payment.objects.get(pk=pending.pk).status == P.PENDING
    assert [c["kind"] for c in ledger_calls] == ["capture", "refund"]


@pytest.mark.django_db(transaction=True)
def test_a_given_up_webhook_can_be_sent_again(sandbox, staff_client):
    payment = sandbox.start()
    pay(payment.checkout_url)
    SandboxWebhookDelivery.objects.update(status=SandboxWebhookDelivery.Status.FAILED, attempts=8)
    staff_client.post(
        "/admin/sandbox/sandboxwebhookdelivery/",
        {
            "action": "send_again",
            ACTION_CHECKBOX_NAME: list(SandboxWebhookDelivery.objects.values_list("pk", flat=True)),
        },
    )
    assert sandbox.deliver()["sent"] == 1
    assert Payment.objects.get(pk=payment.pk).status == P.AUTHORISED
