"""A statement's CSV and PDF are in the vendor's language (Vendor.language), whoever downloads it and
from wherever: a page in the other language, staff, or a task outside any request. The vendor's
language is what the vendor last chose with the language switch."""

import csv
import io

import pytest
from django.utils import translation
from pypdf import PdfReader

from payments import statements
from tests.factories import StaffFactory
from vendors.models import Vendor

from .test_statements import world  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db

KOREAN = {"title": "정산서", "sale": "판매", "refund": "환불", "summary": "요약"}
ENGLISH = {
    "title": "Settlement statement",
    "sale": "Sale",
    "refund": "Refund",
    "summary": "Summary",
}


def _pdf_text(body: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


def _csv_types(body: bytes) -> set[str]:
    table = body.decode("utf-8-sig").partition("\r\n\r\n")[0]
    return {row["type"] for row in csv.DictReader(io.StringIO(table))} - {"total"}


def _switch(client, language: str):
    return client.post("/i18n/setlang/", {"language": language, "next": "/payments/earnings/"})


@pytest.mark.parametrize("language, words", [("ko", KOREAN), ("en", ENGLISH)])
def test_a_task_outside_any_request_writes_the_vendors_language(world, language, words):  # noqa: F811
    vendor, settlement = world["vendor"], world["settlement"]
    Vendor.objects.filter(pk=vendor.pk).update(language=language)
    settlement.refresh_from_db()
    other = "en" if language == "ko" else "ko"
    # Given a worker whose active language is the other one
    with translation.override(other):
        st = statements.statement_build(settlement=settlement)
        pdf = _pdf_text(statements.statement_render(st, "pdf"))
        types = _csv_types(statements.statement_render(st, "csv"))
    assert st.language == language
    assert words["summary"] in pdf and words["sale"] in pdf and words["refund"] in pdf
    assert {words["sale"], words["refund"]} <= types
    if language == "en":
        assert "정산서" not in pdf and "판매" not in types


@pytest.mark.parametrize("language, words", [("ko", KOREAN), ("en", ENGLISH)])
def test_the_language_switch_sets_the_vendors_language_and_the_download_follows(
    world,  # noqa: F811
    client,
    language,
    words,
):
    vendor, settlement = world["vendor"], world["settlement"]
    client.force_login(vendor.user)
    # When the vendor switches the site's language
    response = _switch(client, language)
    assert response.status_code == 302
    vendor.refresh_from_db()
    assert vendor.language == language
    # Then the statement downloads are in it, even asked for with the other language's cookie
    client.cookies["django_language"] = "en" if language == "ko" else "ko"
    pdf = client.get(f"/payments/statements/{settlement.pk}.pdf")
    assert pdf.status_code == 200
    text = _pdf_text(pdf.content)
    assert words["summary"] in text and words["sale"] in text
    body = client.get(f"/payments/statements/{settlement.pk}.csv")
    assert {words["sale"], words["refund"]} <= _csv_types(body.content)


def test_staff_download_a_statement_in_the_vendors_language(world, client):  # noqa: F811
    vendor, settlement = world["vendor"], world["settlement"]
    Vendor.objects.filter(pk=vendor.pk).update(language="en")
    client.force_login(StaffFactory())
    client.cookies["django_language"] = "ko"
    body = client.get(f"/payments/statements/{settlement.pk}.csv")
    assert body.status_code == 200
    assert {"Sale", "Refund"} <= _csv_types(body.content)


def test_the_switch_ignores_an_unknown_language_and_non_vendors(world, client, customer):  # noqa: F811
    vendor = world["vendor"]
    client.force_login(vendor.user)
    response = _switch(client, "xx")
    assert response.status_code == 302  # Django's own answer: back, nothing changed
    vendor.refresh_from_db()
    assert vendor.language == "ko"
    # A customer switching changes only their cookie; no vendor is touched
    client.force_login(customer)
    assert _switch(client, "en").status_code == 302
    assert client.cookies["django_language"].value == "en"
    vendor.refresh_from_db()
    assert vendor.language == "ko"


def test_anonymous_visitors_switch_as_before(client):
    response = _switch(client, "en")
    assert response.status_code == 302
    assert client.cookies["django_language"].value == "en"
    # A GET changes nothing (Django's behaviour), and is no error
    assert client.get("/i18n/setlang/?next=/").status_code in (302, 204)
