"""The order tests' world (a shop on shift with stock and a pickup point, a buyer with an address,
a basket ready for checkout), for the sales and misses recorded on the real paths; the peers'
cached figures cleared around each test."""

import h3
import pytest
from django.core.cache import cache
from django.utils import timezone

from insights.peers import EVERYONE, PEER_RES, peers_cache_key
from tests.factories import MAPO
from tests.orders.conftest import buyer, client, other_shop, shop  # noqa: F401
from tests.orders.test_checkout import ready  # noqa: F401


@pytest.fixture(autouse=True)
def _fresh_peer_figures():
    """The peers' figures are cached for an hour per group and day: each test starts without."""
    today = timezone.localdate()
    groups = (h3.latlng_to_cell(*MAPO, PEER_RES), EVERYONE)
    keys = [peers_cache_key(group=g, today=today) for g in groups]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)
