"""The order tests' world (a shop on shift with stock and a pickup point, a buyer with an
address), for recording real sales."""

from tests.orders.conftest import buyer, client, shop  # noqa: F401
