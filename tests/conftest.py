import shutil

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests import factories


def pytest_collection_modifyitems(config, items):
    reasons = {
        "postgres": None
        if settings.POSTGRES
        else "needs PostgreSQL: set DATABASE_URL or run one on 127.0.0.1:5432",
        "redis": None
        if settings.REDIS
        else "needs Redis: set REDIS_URL or run one on 127.0.0.1:6379",
        "browser": None
        if shutil.which("chromium")
        else "needs Debian's chromium (apt-get install chromium)",
    }
    for item in items:
        for marker, reason in reasons.items():
            if reason and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def customer(db):
    return factories.CustomerProfileFactory().user


@pytest.fixture
def vendor(db):
    v = factories.VendorFactory()
    factories.CustomerProfileFactory(user=v.user)
    return v


@pytest.fixture
def staff(db):
    return factories.StaffFactory()


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def login(client):
    def _login(user):
        client.force_login(user)
        return client

    return _login
