"""Pages go out gzipped to a browser that asks (a phone on a slow link paints sooner:
bench/page_weight.py); JSON never does, and nothing is gzipped for a client that does not ask."""

import gzip

import pytest

from tests.factories import VendorFactory


@pytest.mark.django_db
def test_a_page_is_gzipped_for_a_browser_that_asks(client):
    vendor = VendorFactory()
    response = client.get(f"/vendors/{vendor.slug}/", HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response["Vary"]
    page = gzip.decompress(response.content).decode()
    assert vendor.name in page and page.lstrip().lower().startswith("<!doctype html")


@pytest.mark.django_db
def test_nothing_is_gzipped_for_a_client_that_does_not_ask(client):
    vendor = VendorFactory()
    response = client.get(f"/vendors/{vendor.slug}/")
    assert response.status_code == 200
    assert not response.has_header("Content-Encoding")


@pytest.mark.django_db
def test_the_api_json_is_never_gzipped(client):
    vendor = VendorFactory()
    response = client.get(f"/api/vendors/{vendor.slug}/", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert not response.has_header("Content-Encoding")
