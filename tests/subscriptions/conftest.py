import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def _english(settings):
    """Messages are asserted in English (the source language), e-mails included (they are
    written in the platform's language)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield
