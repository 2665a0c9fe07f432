"""The order sockets on the real ASGI app and channels-redis: who may follow an order or an inbox
(close codes otherwise), and order.changed reaching the customer's page and the vendor's inbox
once a transition commits. The communicators stand for browsers on other server processes."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from orders.services import order_accept, order_payment_settled
from tests.factories import StaffFactory, VendorFactory
from tests.orders.conftest import place, placed
from tests.tracking.ws import communicator, refusal, session_cookie
from vendors.models import Vendor

pytestmark = pytest.mark.redis
with_db = pytest.mark.django_db(transaction=True)


def run(main) -> None:
    async_to_sync(main)()


async def hang_up(client) -> None:
    await client.disconnect(code=1000, timeout=0.1)


def cookies(*users) -> dict:
    """Log each user in (sync, before the event loop runs): their Cookie headers by user."""
    return {user: session_cookie(user) for user in users}


async def open_as(path: str, cookie=None):
    """(connected, close code or None, communicator)."""
    client = communicator(path, *((cookie,) if cookie else ()))
    connected, code = await client.connect(timeout=5)
    return connected, (None if connected else code), client


async def code_for(path: str, cookie, expected: int | None) -> int | None:
    """None for a socket that stays open, else the code of its refusal (accepted, then closed,
    so that a browser gets the code)."""
    client = communicator(path, *((cookie,) if cookie else ()))
    if expected is None:
        connected, _ = await client.connect(timeout=5)
        code = None if connected else -1
    else:
        code = await refusal(client)
    await hang_up(client)
    return code


@with_db
def test_only_the_customer_the_vendor_and_staff_follow_an_order(shop, other_shop, buyer, stranger):
    order = placed(shop, buyer)
    path = f"/ws/orders/{order.pk}/"
    staff = StaffFactory()
    logged_in = cookies(stranger, other_shop.vendor.user, buyer, shop.vendor.user, staff)

    async def main():
        for user, expected in (
            (None, 4401),
            (stranger, 4404),
            (other_shop.vendor.user, 4404),
            (buyer, None),
            (shop.vendor.user, None),
            (staff, None),
        ):
            assert await code_for(path, logged_in.get(user), expected) == expected, user
        # An order that doesn't exist looks the same as someone else's
        missing = f"/ws/orders/{order.pk + 999}/"
        assert await code_for(missing, logged_in[buyer], 4404) == 4404

    run(main)


@with_db
def test_only_an_approved_vendor_has_a_live_inbox(shop, buyer):
    pending = VendorFactory(status=Vendor.Status.PENDING)
    logged_in = cookies(buyer, pending.user, shop.vendor.user)

    async def main():
        for user, expected in (
            (None, 4401),
            (buyer, 4403),
            (pending.user, 4403),
            (shop.vendor.user, None),
        ):
            code = await code_for("/ws/vendor/orders/", logged_in.get(user), expected)
            assert code == expected, user

    run(main)


@with_db
def test_transitions_reach_the_order_page_and_the_inbox_after_commit(shop, other_shop, buyer):
    order = place(shop, buyer)
    logged_in = cookies(buyer, shop.vendor.user, other_shop.vendor.user)

    async def main():
        _ok, _code, page = await open_as(f"/ws/orders/{order.pk}/", logged_in[buyer])
        _ok, _code, inbox = await open_as("/ws/vendor/orders/", logged_in[shop.vendor.user])
        _ok, _code, elsewhere = await open_as(
            "/ws/vendor/orders/", logged_in[other_shop.vendor.user]
        )
        # When the provider's answer places the order, then the vendor accepts it
        await database_sync_to_async(order_payment_settled)(
            order_id=order.pk, payment_status="authorised"
        )
        for client in (page, inbox):
            assert await client.receive_json_from(timeout=5) == {
                "type": "order.changed",
                "order_id": order.pk,
                "status": "placed",
                "by": "system",
            }
        await database_sync_to_async(order_accept)(
            order_id=order.pk, vendor=shop.vendor, eta_minutes=10
        )
        for client in (page, inbox):
            message = await client.receive_json_from(timeout=5)
            assert message == {
                "type": "order.changed",
                "order_id": order.pk,
                "status": "accepted",
                "by": "vendor",
            }
        # And another vendor's inbox hears nothing of it
        assert await elsewhere.receive_nothing(0.3)
        for client in (page, inbox, elsewhere):
            await hang_up(client)

    run(main)


@with_db
def test_a_refused_transition_sends_nothing(shop, buyer):
    order = placed(shop, buyer)
    logged_in = cookies(buyer)

    async def main():
        _ok, _code, page = await open_as(f"/ws/orders/{order.pk}/", logged_in[buyer])

        def depart_too_early():
            from orders.services import InvalidTransition, order_depart

            with pytest.raises(InvalidTransition):
                order_depart(order_id=order.pk, vendor=shop.vendor)

        await database_sync_to_async(depart_too_early)()
        assert await page.receive_nothing(0.5)
        await hang_up(page)

    run(main)


@with_db
def test_the_sockets_only_listen(shop, buyer):
    order = placed(shop, buyer)
    logged_in = cookies(buyer, shop.vendor.user)

    async def main():
        for path, user in (
            (f"/ws/orders/{order.pk}/", buyer),
            ("/ws/vendor/orders/", shop.vendor.user),
        ):
            _ok, _code, client = await open_as(path, logged_in[user])
            await client.send_json_to({"type": "order.changed", "order_id": order.pk})
            out = await client.receive_output(timeout=5)
            assert out == {"type": "websocket.close", "code": 4400}
            await hang_up(client)

    run(main)
