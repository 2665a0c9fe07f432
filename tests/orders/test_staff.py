"""Staff actions on an order: cancel (with a reason, from any state before the handover) and expire
now (an order nobody accepted yet). Each through one service, as staff (refused to anyone else),
recorded with role STAFF and the actor; stock goes back, the money is returned at the provider
(voided, or refunded once captured), both sides are told by e-mail and on their live pages; the
staff-only API; and racing a vendor who accepts at the same moment leaves one winner."""

from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from o2o.errors import NotAllowed
from orders.models import Order, OrderEvent, Status
from orders.services import (
    InvalidTransition,
    order_accept,
    order_depart,
    order_expire_now,
    order_hand_over,
    order_ready,
    order_staff_cancel,
)
from payments.models import Payment
from payments.services import payment_capture
from tests.factories import StaffFactory, UserFactory
from tests.orders.conftest import messages_of, place, placed
from tests.orders.test_concurrency import race

Role = OrderEvent.Role
P = Payment.Status
REASON = "카트 고장으로 영업 종료"


def snapshot(order: Order, shop) -> tuple:
    return (
        Order.objects.values_list("status", flat=True).get(pk=order.pk),
        OrderEvent.objects.filter(order=order).count(),
        shop.stock(),
    )


def in_state(shop, user, status: str, **kwargs) -> Order:
    """A real order (stock reserved) of 2 yakult, taken to `status` by the product's services."""
    if status == Status.PENDING_PAYMENT:
        return place(shop, user, **kwargs)
    order = placed(shop, user, **kwargs)
    vendor = shop.vendor
    steps = {
        Status.PLACED: [],
        Status.ACCEPTED: ["accept"],
        Status.EN_ROUTE: ["accept", "depart"],
        Status.READY: ["accept", "ready"],
        Status.HANDED_OVER: ["accept", "hand_over"],
    }[status]
    for step in steps:
        if step == "accept":
            order_accept(order_id=order.pk, vendor=vendor, eta_minutes=10)
        elif step == "depart":
            order_depart(order_id=order.pk, vendor=vendor)
        elif step == "ready":
            order_ready(order_id=order.pk, vendor=vendor)
        else:
            order_hand_over(order_id=order.pk, vendor=vendor, code=order.handover_code)
    order.refresh_from_db()
    assert order.status == status
    return order


# --- the services ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "status",
    [Status.PENDING_PAYMENT, Status.PLACED, Status.ACCEPTED, Status.EN_ROUTE, Status.READY],
)
def test_staff_cancel_before_the_handover_puts_the_stock_back_and_records_who(
    shop, buyer, staff, status
):
    # Given a real order of 2 yakult, in `status` (2 of 10 reserved)
    order = in_state(shop, buyer, status)
    assert shop.stock()[shop.yakult.sku] == 8
    # When staff cancel it with a reason
    cancelled = order_staff_cancel(order_id=order.pk, actor=staff, reason=f"  {REASON} ")
    # Then it is cancelled, the units are back, and the event names staff, the actor and why
    assert cancelled.status == Status.CANCELLED
    assert shop.stock()[shop.yakult.sku] == 10
    event = OrderEvent.objects.filter(order=order).last()
    assert (event.from_status, event.to_status, event.role, event.actor, event.reason) == (
        status,
        Status.CANCELLED,
        Role.STAFF,
        staff,
        REASON,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Status.HANDED_OVER, Status.CANCELLED, Status.REJECTED])
def test_staff_cannot_cancel_after_the_handover_or_the_end(shop, buyer, staff, status):
    if status == Status.CANCELLED:
        order = in_state(shop, buyer, Status.PLACED)
        order_staff_cancel(order_id=order.pk, actor=staff, reason="first")
    elif status == Status.REJECTED:
        order = in_state(shop, buyer, Status.PLACED)
        Order.objects.filter(pk=order.pk).update(status=Status.REJECTED)
    else:
        order = in_state(shop, buyer, status)
    before = snapshot(order, shop)
    with pytest.raises(InvalidTransition):
        order_staff_cancel(order_id=order.pk, actor=staff, reason=REASON)
    assert snapshot(order, shop) == before


@pytest.mark.django_db
def test_staff_expire_now_only_while_nobody_accepted(shop, buyer, stranger, staff):
    # Given an order waiting for the vendor (its deadline still ahead) and an accepted one
    waiting = in_state(shop, buyer, Status.PLACED)
    accepted = in_state(shop, stranger, Status.ACCEPTED)
    # When staff expire both now
    expired = order_expire_now(order_id=waiting.pk, actor=staff)
    before = snapshot(accepted, shop)
    with pytest.raises(InvalidTransition):
        order_expire_now(order_id=accepted.pk, actor=staff)
    # Then only the waiting one expired (stock back), recorded as staff's doing
    assert expired.status == Status.EXPIRED
    assert snapshot(accepted, shop) == before
    assert shop.stock()[shop.yakult.sku] == 8
    event = OrderEvent.objects.filter(order=waiting).last()
    assert (event.from_status, event.role, event.actor) == (Status.PLACED, Role.STAFF, staff)
    # And an order still waiting for payment is not the vendor's to wait for: refused too
    unpaid = in_state(shop, buyer, Status.PENDING_PAYMENT)
    with pytest.raises(InvalidTransition):
        order_expire_now(order_id=unpaid.pk, actor=staff)


@pytest.mark.django_db
def test_only_active_staff_may_cancel_or_expire(shop, buyer, stranger):
    order = in_state(shop, buyer, Status.PLACED)
    retired = StaffFactory(is_active=False)
    demoted = StaffFactory()
    demoted_stale = type(demoted).objects.get(pk=demoted.pk)  # still says is_staff in memory
    type(demoted).objects.filter(pk=demoted.pk).update(is_staff=False)
    before = snapshot(order, shop)
    for actor in (None, buyer, stranger, shop.vendor.user, UserFactory(), retired, demoted_stale):
        with pytest.raises(NotAllowed):
            order_staff_cancel(order_id=order.pk, actor=actor, reason=REASON)
        with pytest.raises(NotAllowed):
            order_expire_now(order_id=order.pk, actor=actor)
    assert snapshot(order, shop) == before


@pytest.mark.django_db
def test_staff_need_the_admin_actions_permission_to_cancel_or_expire(shop, buyer):
    # Given a staff seat without any permission (read-only support), and one who may change orders
    from django.contrib.auth.models import Permission

    seat = StaffFactory(is_superuser=False)
    clerk = StaffFactory(is_superuser=False)
    clerk.user_permissions.add(Permission.objects.get(codename="change_order"))
    order = in_state(shop, buyer, Status.PLACED)
    api = APIClient()
    api.force_authenticate(seat)
    # When the seat cancels or expires the order over the staff API, or refunds a line
    for url, body in (
        (f"/api/staff/orders/{order.pk}/cancel/", {"reason": REASON}),
        (f"/api/staff/orders/{order.pk}/expire/", {}),
        (f"/api/staff/orders/{order.pk}/lines/{order.lines.get().pk}/refund/", {"reason": REASON}),
    ):
        response = api.post(url, body, format="json")
        # Then it is refused as the admin refuses it (403, saying why), and nothing changed
        assert response.status_code == 403, (url, response.content)
        assert (
            response.json()["error"]["message"] == "이 직원 계정에는 주문을 변경할 권한이 없어요."
        )
    assert Order.objects.get(pk=order.pk).status == Status.PLACED
    # And the clerk with the permission may
    api.force_authenticate(clerk)
    response = api.post(f"/api/staff/orders/{order.pk}/expire/", {}, format="json")
    assert response.status_code == 200, response.content
    assert Order.objects.get(pk=order.pk).status == Status.EXPIRED


@pytest.mark.django_db
@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_staff_cancel_needs_a_reason(shop, buyer, staff, reason):
    order = in_state(shop, buyer, Status.ACCEPTED)
    before = snapshot(order, shop)
    with pytest.raises(ValidationError) as refused:
        order_staff_cancel(order_id=order.pk, actor=staff, reason=reason)
    assert "reason" in refused.value.message_dict
    assert snapshot(order, shop) == before


@pytest.mark.django_db
def test_an_unknown_order_is_refused_without_a_500(staff):
    with pytest.raises(InvalidTransition):
        order_staff_cancel(order_id=999_999, actor=staff, reason=REASON)
    with pytest.raises(InvalidTransition):
        order_expire_now(order_id=999_999, actor=staff)


# --- both sides are told ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_staff_cancel_is_mailed_to_the_customer_and_the_vendor_with_the_reason(
    shop, buyer, staff, django_capture_on_commit_callbacks
):
    order = in_state(shop, buyer, Status.EN_ROUTE)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        order_staff_cancel(order_id=order.pk, actor=staff, reason=REASON)
    sent = {m.to[0]: m.body for m in mail.outbox}
    assert set(sent) == {buyer.email, shop.vendor.user.email}
    assert all(REASON in body and f"#{order.pk}" in body for body in sent.values())
    assert sent[buyer.email] != sent[shop.vendor.user.email]


@pytest.mark.django_db
def test_the_customer_page_says_staff_cancelled_and_why(client, shop, buyer, staff):
    order = in_state(shop, buyer, Status.ACCEPTED)
    order_staff_cancel(order_id=order.pk, actor=staff, reason=REASON)
    client.force_login(buyer)
    html = client.get(f"/orders/{order.pk}/status/").content.decode()
    assert "Our support team cancelled this order." in html
    assert REASON in html
    # ... which a customer's own cancel does not say
    own = in_state(shop, buyer, Status.PLACED)
    client.post(f"/orders/{own.pk}/cancel/")
    own_html = client.get(f"/orders/{own.pk}/status/").content.decode()
    assert "Our support team" not in own_html and "This order is cancelled." in own_html


# --- the staff API ----------------------------------------------------------------------------

API = "/api/staff/orders/"


@pytest.fixture
def api():
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


@pytest.mark.django_db
def test_staff_api_cancels_and_expires(api, shop, buyer, stranger, staff):
    order = in_state(shop, buyer, Status.READY)
    waiting = in_state(shop, stranger, Status.PLACED)
    api.force_authenticate(staff)
    # A reason is required: 400 with the field, nothing changes
    assert (
        "reason" in _error(api.post(f"{API}{order.pk}/cancel/", {}, format="json"), 400)["fields"]
    )
    assert Order.objects.get(pk=order.pk).status == Status.READY
    # With one, cancelled: the answer has the event, never the handover code
    done = api.post(f"{API}{order.pk}/cancel/", {"reason": REASON}, format="json")
    assert done.status_code == 200, done.content
    body = done.json()
    assert body["status"] == "cancelled" and body["reason"] == REASON
    assert body["events"][-1]["role"] == "staff" and "handover_code" not in body
    # Again: 409, the order changed meanwhile
    _error(api.post(f"{API}{order.pk}/cancel/", {"reason": REASON}, format="json"), 409)
    # Expire now: only an order still waiting for the vendor
    assert api.post(f"{API}{waiting.pk}/expire/").json()["status"] == "expired"
    _error(api.post(f"{API}{waiting.pk}/expire/"), 409)
    _error(api.post(f"{API}999999/expire/"), 404)
    _error(api.post(f"{API}999999/cancel/", {"reason": REASON}, format="json"), 404)


@pytest.mark.django_db
def test_staff_api_is_404_for_everyone_else_and_401_for_anonymous(api, shop, buyer, stranger):
    order = in_state(shop, buyer, Status.PLACED)
    for path, data in (
        (f"{API}{order.pk}/cancel/", {"reason": REASON}),
        (f"{API}{order.pk}/expire/", {}),
    ):
        _error(api.post(path, data, format="json"), 401)
        # The order's own customer and vendor, another customer, a plain user: no such order
        for user in (buyer, shop.vendor.user, stranger, UserFactory()):
            api.force_authenticate(user)
            _error(api.post(path, data, format="json"), 404)
        api.force_authenticate(None)
    assert Order.objects.get(pk=order.pk).status == Status.PLACED


# --- money, at the provider (the sandbox over HTTP) ---------------------------------------------

APPROVE = "4242 4242 4242 4242"


def paid_order(live, shop, buyer) -> Order:
    """Checkout for pickup and pay with the approve card on the sandbox's card page."""
    client = Client(headers={"accept-language": "en"}, SERVER_NAME="localhost")
    client.force_login(buyer)
    client.post(
        "/orders/cart/add/", {"vendor": shop.vendor.pk, "product": shop.yakult.pk, "quantity": 2}
    )
    token = client.get("/orders/checkout/").context["form"].initial["checkout_token"]
    response = client.post(
        "/orders/checkout/",
        {
            "checkout_token": token,
            "fulfilment": "pickup",
            "pickup_point": shop.point.pk,
            "window": "asap",
        },
    )
    assert response.status_code == 302 and response["Location"].startswith(live), response
    card = Client().post(
        urlsplit(response["Location"]).path, {"number": APPROVE, "expiry": "12/39", "cvc": "123"}
    )
    back = urlsplit(card["Location"])
    followed = client.get(back.path, dict(p.split("=", 1) for p in back.query.split("&") if p))
    assert followed.status_code == 302, messages_of(followed)
    order = Order.objects.get(checkout_token=token)
    assert order.status == Status.PLACED
    return order


@pytest.fixture
def sandbox(live_server, settings):
    settings.SANDBOX_BASE_URL = live_server.url
    settings.PLATFORM_BASE_URL = live_server.url
    settings.SANDBOX_WEBHOOK_DUPLICATE_RATE = 0.0
    return live_server.url


@pytest.mark.django_db(transaction=True)
def test_staff_cancel_voids_an_authorisation_and_refunds_a_capture(sandbox, shop, buyer, staff):
    # Given two paid orders: one accepted (money authorised), one ready whose money was already
    # captured (as a capture that went early would leave it)
    authorised = paid_order(sandbox, shop, buyer)
    order_accept(order_id=authorised.pk, vendor=shop.vendor, eta_minutes=10)
    captured = paid_order(sandbox, shop, buyer)
    order_accept(order_id=captured.pk, vendor=shop.vendor, eta_minutes=10)
    order_ready(order_id=captured.pk, vendor=shop.vendor)
    payment_capture(payment_id=captured.payment_id)
    assert shop.stock()[shop.yakult.sku] == 6
    # When staff cancel both
    for order in (authorised, captured):
        order_staff_cancel(order_id=order.pk, actor=staff, reason=REASON)
    # Then the authorisation is voided and the capture refunded in full, at the provider too
    first = Payment.objects.get(pk=authorised.payment_id)
    second = Payment.objects.get(pk=captured.payment_id)
    assert first.status == P.VOIDED
    assert (second.status, second.amount_refunded) == (P.REFUNDED, captured.total)
    assert shop.stock()[shop.yakult.sku] == 10
    assert {m.to[0] for m in mail.outbox if REASON in m.body} == {
        buyer.email,
        shop.vendor.user.email,
    }


# --- racing a vendor ------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("staff_action", ["cancel", "expire"])
def test_staff_and_the_vendor_racing_leave_one_winner(shop, buyer, staff, staff_action):
    for _round in range(4):
        # Given a paid order waiting for the vendor
        order = placed(shop, buyer, quantity=1)
        stock_before = shop.stock()[shop.yakult.sku]
        staff_call = (
            (lambda oid=order.pk: order_staff_cancel(order_id=oid, actor=staff, reason=REASON))
            if staff_action == "cancel"
            else (lambda oid=order.pk: order_expire_now(order_id=oid, actor=staff))
        )
        # When staff and the vendor act at the same moment, on their own connections
        results = race(
            staff_call,
            lambda oid=order.pk: order_accept(order_id=oid, vendor=shop.vendor, eta_minutes=5),
        )
        # Then exactly one took the order out of PLACED, and the other was told the order
        # changed; or (staff may cancel an accepted order) the vendor's accept was over before
        # staff looked, and staff then cancelled the accepted order: one edge after the other
        won = [r for r in results if isinstance(r, Order)]
        lost = [r for r in results if isinstance(r, InvalidTransition)]
        order.refresh_from_db()
        assert OrderEvent.objects.filter(order=order, from_status=Status.PLACED).count() == 1
        if len(won) == 2:
            assert staff_action == "cancel", results
            steps = OrderEvent.objects.filter(order=order).order_by("pk")
            assert [(e.from_status, e.to_status) for e in steps][-2:] == [
                (Status.PLACED, Status.ACCEPTED),
                (Status.ACCEPTED, Status.CANCELLED),
            ]
            assert order.status == Status.CANCELLED
        else:
            assert (len(won), len(lost)) == (1, 1), results
            assert order.status == won[0].status
        # And the unit is back exactly when staff won
        back = 1 if order.status != Status.ACCEPTED else 0
        assert shop.stock()[shop.yakult.sku] == stock_before + back


@pytest.mark.django_db(transaction=True)
def test_money_authorised_after_a_staff_cancel_is_voided(sandbox, shop, buyer, staff):
    # Given a customer on the provider's card page of an order waiting for payment
    client = Client(headers={"accept-language": "en"}, SERVER_NAME="localhost")
    client.force_login(buyer)
    client.post(
        "/orders/cart/add/", {"vendor": shop.vendor.pk, "product": shop.yakult.pk, "quantity": 2}
    )
    token = client.get("/orders/checkout/").context["form"].initial["checkout_token"]
    response = client.post(
        "/orders/checkout/",
        {
            "checkout_token": token,
            "fulfilment": "pickup",
            "pickup_point": shop.point.pk,
            "window": "asap",
        },
    )
    order = Order.objects.get(checkout_token=token)
    # When staff cancel it meanwhile, and then the customer pays all the same
    order_staff_cancel(order_id=order.pk, actor=staff, reason=REASON)
    card = Client().post(
        urlsplit(response["Location"]).path, {"number": APPROVE, "expiry": "12/39", "cvc": "123"}
    )
    back = urlsplit(card["Location"])
    client.get(back.path, dict(p.split("=", 1) for p in back.query.split("&") if p))
    # Then the order stays cancelled and the late authorisation is voided
    order.refresh_from_db()
    assert order.status == Status.CANCELLED
    assert Payment.objects.get(pk=order.payment_id).status == P.VOIDED
