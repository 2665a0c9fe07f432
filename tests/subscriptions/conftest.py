import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def _english(settings):
    """Messages are asserted in English (the source language), e-mails included (they are
    written in the platform's language)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def sandbox(live_server, settings):
    """The platform and the sandbox both at the live server: charges go over real HTTP."""
    settings.SANDBOX_BASE_URL = live_server.url
    settings.PLATFORM_BASE_URL = live_server.url
    settings.SANDBOX_WEBHOOK_DUPLICATE_RATE = 0.0
    return live_server.url
