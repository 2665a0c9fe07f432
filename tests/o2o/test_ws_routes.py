"""Websocket routing (o2o.routing, o2o.asgi): a path no consumer serves (a typo, an old app, a probe,
an order id that is not a number) is refused with close code 4404 (accepted, then closed, so that
a browser gets the code), logged in or not, instead of the router raising "No route found" (a 500 on the handshake and a
traceback per request). The real routes still reach their consumers."""

import pytest
from asgiref.sync import async_to_sync

from tests.tracking.ws import communicator, refusal, session_cookie

# The session of a logged-in socket is read from another thread: the user is committed.
pytestmark = pytest.mark.django_db(transaction=True)

UNKNOWN = [
    "/ws/nope/",
    "/ws/orders/abc/",  # the order id is not a number
    "/ws/orders/1/extra/",
    "/ws/map",  # no trailing slash
    "/",
]


async def _open(path: str, *headers) -> int:
    """The close code the client gets (the socket is accepted, then closed: see refusal)."""
    client = communicator(path, *headers)
    try:
        return await refusal(client)
    finally:
        await client.disconnect()


@pytest.mark.parametrize("path", UNKNOWN)
def test_an_anonymous_socket_to_an_unknown_path_is_closed_with_4404(path):
    # Given no session; when a socket opens on a path no consumer serves
    code = async_to_sync(_open)(path)
    # Then it is refused (accepted and closed at once) with "not found"
    assert code == 4404


@pytest.mark.parametrize("path", UNKNOWN)
def test_a_logged_in_socket_to_an_unknown_path_is_closed_with_4404(customer, path):
    # Given a logged-in customer's session cookie
    cookie = session_cookie(customer)
    # When their socket opens on a path no consumer serves
    code = async_to_sync(_open)(path, cookie)
    # Then it is refused the same way
    assert code == 4404


@pytest.mark.redis
@pytest.mark.parametrize("path", ["/ws/orders/1/", "/ws/vendor/orders/", "/ws/vendor/location/"])
def test_the_real_routes_still_reach_their_consumers(path):
    # Given no session; when a socket opens on a route that needs a user
    code = async_to_sync(_open)(path)
    # Then its consumer (not the catch-all) answers: "log in"
    assert code == 4401
