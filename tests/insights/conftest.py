"""The order tests' world (a vendor selling on shift with stock, a customer, a basket ready for
checkout), for the misses recorded on the real basket and checkout paths."""

from tests.orders.conftest import buyer, client, other_shop, shop  # noqa: F401
from tests.orders.test_checkout import ready  # noqa: F401
