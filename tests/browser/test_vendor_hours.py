"""A vendor sets their working hours on a phone, in Korean and in English: from the dashboard's
"Working hours" to Monday-Friday 07:00-19:00, saved. Screenshots vendor-hours-<lang>-01/-02.

Texts are looked up through gettext in the page's language, so the test holds before and after
the Korean translations are filled in; inputs are found by id where a label would be untranslated.
"""

from datetime import time

import pytest
from django.test import Client
from django.utils import translation
from django.utils.translation import gettext
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import PHONE
from vendors.models import VendorHours

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
LOCALES = {"ko": "ko-KR", "en": "en-US"}  # the browser's own: how a time input shows its value


def signed_in(page, user, base_url: str, language: str) -> None:
    """The browser gets the session of a logged-in user and the language cookie."""
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {"name": "django_language", "value": language, "url": base_url},
            {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base_url},
        ]
    )


@pytest.mark.parametrize("language", ["ko", "en"])
def test_vendor_sets_weekday_hours_from_the_dashboard(
    live_server, new_page, shot, assert_accessible, axe, language
):
    with translation.override(language):
        title, saved = gettext("Working hours"), gettext("Your working hours are saved.")
        explained = gettext(
            "Customers can order ahead for delivery or pickup within these hours while you are "
            "off shift."
        )
    # Given an approved vendor who works Sundays only, signed in on a phone
    vendor = factories.VendorFactory(name="프레시 카트 망원")
    factories.CustomerProfileFactory(user=vendor.user)
    factories.VendorHoursFactory(vendor=vendor, weekday=6, opens="10:00", closes="14:00")
    page = new_page(**PHONE, locale=LOCALES[language])
    signed_in(page, vendor.user, live_server.url, language)

    # When they open their dashboard and follow "Working hours"
    page.goto(f"{live_server.url}/vendors/me/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    link = page.get_by_role("main").get_by_role("link", name=title, exact=True)
    expect(link).to_have_attribute("href", "/vendors/me/hours/")
    link.click()

    # Then the page says what hours do, with Sunday's hours filled in
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.locator("#hours-help")).to_have_text(explained)
    expect(page.locator("#id_sun_works")).to_be_checked()
    expect(page.locator("#id_sun_opens")).to_have_value("10:00")
    expect(page.locator("#id_mon_works")).not_to_be_checked()
    if language == "en":  # the labels say which day and which end (Korean: filled in later)
        expect(page.get_by_label("Monday From", exact=True)).to_have_attribute("id", "id_mon_opens")
        expect(page.get_by_label("Friday To", exact=True)).to_have_attribute("id", "id_fri_closes")

    # When they set Monday to Friday 07:00-19:00 and untick Sunday
    for key in WEEKDAYS:
        page.locator(f"#id_{key}_works").check()
        page.locator(f"#id_{key}_opens").fill("07:00")
        page.locator(f"#id_{key}_closes").fill("19:00")
    page.locator("#id_sun_works").uncheck()
    assert_accessible(page)
    assert axe(page) == []
    shot(page, f"vendor-hours-{language}-01")
    page.locator("form.hours-form button[type=submit]").click()

    # Then they see it saved, on the same page, with the days as they set them
    expect(page.get_by_role("status")).to_contain_text(saved)
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    for key in WEEKDAYS:
        expect(page.locator(f"#id_{key}_works")).to_be_checked()
        expect(page.locator(f"#id_{key}_opens")).to_have_value("07:00")
        expect(page.locator(f"#id_{key}_closes")).to_have_value("19:00")
    expect(page.locator("#id_sat_works")).not_to_be_checked()
    expect(page.locator("#id_sun_works")).not_to_be_checked()
    assert_accessible(page)
    assert axe(page) == []
    shot(page, f"vendor-hours-{language}-02")
    assert list(
        VendorHours.objects.filter(vendor=vendor).values_list("weekday", "opens", "closes")
    ) == [(d, time(7), time(19)) for d in range(5)]
