"""Websocket test helpers: channels' WebsocketCommunicator on the real ASGI app, log-in cookies."""

import importlib
import sys
import types
from pathlib import Path

import channels
from django.http import HttpRequest
from django.test import Client

from tests.factories import PASSWORD


def _websocket_communicator():
    """channels.testing's __init__ imports daphne (for ChannelsLiveServerTestCase), which this
    project does not install (it serves with uvicorn). WebsocketCommunicator itself needs only
    asgiref, so when daphne is missing its module is loaded without the package's __init__."""
    try:
        from channels.testing import WebsocketCommunicator

        return WebsocketCommunicator
    except ModuleNotFoundError as exc:
        if exc.name != "daphne":
            raise
    package = types.ModuleType("channels.testing")
    package.__path__ = [str(Path(channels.__file__).parent / "testing")]
    sys.modules["channels.testing"] = package
    for name in ("application", "http", "websocket"):
        module = importlib.import_module(f"channels.testing.{name}")
        for attr in ("ApplicationCommunicator", "HttpCommunicator", "WebsocketCommunicator"):
            if hasattr(module, attr):
                setattr(package, attr, getattr(module, attr))
    return package.WebsocketCommunicator


WebsocketCommunicator = _websocket_communicator()

ORIGIN = (b"origin", b"http://127.0.0.1")
MAP = "/ws/map/"
VENDOR = "/ws/vendor/location/"


def session_cookie(user) -> tuple[bytes, bytes]:
    """Log in through the real login (password), as a browser would; the Cookie header."""
    client = Client()
    # django-axes counts sign-ins by their request: authenticate() needs one
    assert client.login(request=HttpRequest(), email=user.email, password=PASSWORD)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


def communicator(path: str, *headers: tuple[bytes, bytes], origin=ORIGIN):
    from o2o.asgi import application

    return WebsocketCommunicator(application, path, headers=[origin, *headers])


async def refusal(client, timeout: float = 5) -> int:
    """The close code of a socket its consumer refuses in connect(), checked to reach a real
    client: the socket is accepted, then closed at once with the code. A refusal before accept()
    fails here: a browser gets an HTTP 403 then, never the code."""
    connected, code = await client.connect(timeout=timeout)
    assert connected, f"refused before accept() with {code}: a browser sees an HTTP 403"
    out = await client.receive_output(timeout)
    assert out["type"] == "websocket.close", out
    return out.get("code", 1000)


def box(lat: float, lng: float, half: float = 0.002) -> list[float]:
    """A small viewport (south, west, north, east) around a point."""
    return [lat - half, lng - half, lat + half, lng + half]
