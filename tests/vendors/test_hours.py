"""A vendor's own working hours: the service, the page and the API, and what customers then see
(Availability.next_hours) while the cart is off shift."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.test import Client, override_settings
from django.utils import translation

from o2o.errors import NotAllowed
from tests.factories import VendorFactory, VendorHoursFactory
from vendors.models import Vendor, VendorHours
from vendors.selectors import vendor_availability
from vendors.services import DayHours, vendor_hours_set

S = Vendor.Status
SEOUL = ZoneInfo("Asia/Seoul")
PAGE = "/vendors/me/hours/"
API = "/api/vendors/me/hours/"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _hours(vendor: Vendor) -> list[tuple[int, time, time]]:
    return list(
        VendorHours.objects.filter(vendor=vendor)
        .order_by("weekday", "opens")
        .values_list("weekday", "opens", "closes")
    )


def _weekdays(opens: str = "07:00", closes: str = "19:00") -> list[DayHours]:
    return [
        DayHours(weekday=d, opens=time.fromisoformat(opens), closes=time.fromisoformat(closes))
        for d in range(5)
    ]


@pytest.fixture
def client():
    return Client(headers={"accept-language": "en"})


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _post(works: dict[str, tuple[str, str]], **extra: str) -> dict[str, str]:
    """The page's form data: the ticked days with their times, the others blank."""
    data: dict[str, str] = {}
    for key in DAYS:
        if key in works:
            data[f"{key}_works"] = "on"
            data[f"{key}_opens"], data[f"{key}_closes"] = works[key]
        else:
            data[f"{key}_opens"] = data[f"{key}_closes"] = ""
    data.update(extra)
    return data


# --- the service --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_setting_hours_replaces_the_ones_before(vendor):
    # Given a vendor working Sundays
    VendorHoursFactory(vendor=vendor, weekday=6, opens="10:00", closes="14:00")
    # When they set Monday to Friday, 07:00-19:00
    rows = vendor_hours_set(vendor=vendor, days=_weekdays())
    # Then those are their hours, and Sunday is gone
    assert [r.weekday for r in rows] == [0, 1, 2, 3, 4]
    assert _hours(vendor) == [(d, time(7), time(19)) for d in range(5)]


@pytest.mark.django_db
def test_an_empty_list_publishes_no_hours(vendor):
    vendor_hours_set(vendor=vendor, days=_weekdays())
    assert vendor_hours_set(vendor=vendor, days=[]) == []
    assert _hours(vendor) == []


@pytest.mark.parametrize(
    "days, message",
    [
        ([DayHours(weekday=7, opens=time(7), closes=time(19))], "from 0 (Monday) to 6 (Sunday)"),
        ([DayHours(weekday=-1, opens=time(7), closes=time(19))], "from 0 (Monday) to 6 (Sunday)"),
        ([DayHours(weekday=True, opens=time(7), closes=time(19))], "from 0 (Monday)"),  # type: ignore[arg-type]
        ([DayHours(weekday=2, opens=time(19), closes=time(7))], "Wednesday: the end must be after"),
        ([DayHours(weekday=2, opens=time(7), closes=time(7))], "Wednesday: the end must be after"),
        (
            [
                DayHours(weekday=0, opens=time(7), closes=time(9)),
                DayHours(weekday=0, opens=time(10), closes=time(12)),
            ],
            "Monday is given more than once",
        ),
        ([DayHours(weekday=4, opens=None, closes=time(9))], "Friday needs a start and an end"),  # type: ignore[arg-type]
        (
            [DayHours(weekday=1, opens=time(7, tzinfo=SEOUL), closes=time(9, tzinfo=SEOUL))],
            "Tuesday: give the times in Korea time",
        ),
    ],
)
@pytest.mark.django_db
def test_bad_spans_are_refused_and_nothing_changes(vendor, days, message):
    # Given a vendor working Saturdays
    VendorHoursFactory(vendor=vendor, weekday=5, opens="08:00", closes="13:00")
    # When a bad list is saved (after a good day, so a partial save would show)
    with translation.override("en"), pytest.raises(ValidationError) as caught:
        vendor_hours_set(vendor=vendor, days=[DayHours(3, time(7), time(8)), *days])
    # Then it is refused under "days", saying what is wrong, and the hours are as they were
    assert any(message in m for m in caught.value.message_dict["days"]), caught.value
    assert _hours(vendor) == [(5, time(8), time(13))]


@pytest.mark.parametrize("status", [S.SUSPENDED, S.REJECTED])
@pytest.mark.django_db
def test_a_suspended_or_rejected_vendor_cannot_set_hours(vendor, status):
    VendorHoursFactory(vendor=vendor, weekday=5, opens="08:00", closes="13:00")
    stale = Vendor.objects.get(pk=vendor.pk)  # still approved in the caller's hands
    Vendor.objects.filter(pk=vendor.pk).update(status=status)
    with pytest.raises(NotAllowed):
        vendor_hours_set(vendor=stale, days=_weekdays())
    assert _hours(vendor) == [(5, time(8), time(13))]


@pytest.mark.django_db
def test_a_pending_vendor_may_set_hours_ahead_of_approval():
    vendor = VendorFactory(status=S.PENDING)
    vendor_hours_set(vendor=vendor, days=_weekdays())
    assert len(_hours(vendor)) == 5


@override_settings(VENDOR_HOURS="", ORDER_AHEAD_MIN_MINUTES=60)
@pytest.mark.django_db
def test_an_off_shift_vendors_next_hours_follow_what_they_set(vendor):
    # Given an off-shift vendor and Monday 7 December 2026, 20:00 in Seoul
    monday_evening = datetime(2026, 12, 7, 20, 0, tzinfo=SEOUL)
    assert vendor_availability(vendor_id=vendor.pk, now=monday_evening).next_hours is None
    # When they set Saturday 08:00-13:00 only
    vendor_hours_set(vendor=vendor, days=[DayHours(weekday=5, opens=time(8), closes=time(13))])
    # Then customers can order ahead for Saturday morning
    availability = vendor_availability(vendor_id=vendor.pk, now=monday_evening)
    assert availability.takes_orders and not availability.on_shift
    assert availability.next_hours == (
        datetime(2026, 12, 12, 8, 0, tzinfo=SEOUL),
        datetime(2026, 12, 12, 13, 0, tzinfo=SEOUL),
    )
    # And after Monday to Friday 07:00-19:00, Tuesday morning
    vendor_hours_set(vendor=vendor, days=_weekdays())
    assert vendor_availability(vendor_id=vendor.pk, now=monday_evening).next_hours == (
        datetime(2026, 12, 8, 7, 0, tzinfo=SEOUL),
        datetime(2026, 12, 8, 19, 0, tzinfo=SEOUL),
    )
    # And with none published, nothing until they are back on shift
    vendor_hours_set(vendor=vendor, days=[])
    availability = vendor_availability(vendor_id=vendor.pk, now=monday_evening)
    assert availability.next_hours is None and not availability.takes_orders


@override_settings(VENDOR_HOURS="mon-sun 09:00-18:00")
@pytest.mark.django_db
def test_publishing_no_hours_wins_over_the_platform_default(vendor):
    # Given the platform's default hours stand in for a vendor who set none
    assert vendor_availability(vendor_id=vendor.pk).next_hours is not None
    # When the vendor publishes no hours of their own, then none are published
    vendor_hours_set(vendor=vendor, days=[])
    assert vendor_availability(vendor_id=vendor.pk).next_hours is None


# --- the page -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_page_is_prefilled_with_the_vendors_hours(client, vendor):
    VendorHoursFactory(vendor=vendor, weekday=0, opens="07:00", closes="19:00")
    VendorHoursFactory(vendor=vendor, weekday=5, opens="08:30", closes="13:00")
    client.force_login(vendor.user)
    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Customers can order ahead for delivery or pickup within these hours" in html
    form = response.context["form"]
    assert form["mon_works"].value() is True
    assert form["mon_opens"].value() == time(7) and form["mon_closes"].value() == time(19)
    assert form["sat_opens"].value() == time(8, 30)
    assert not form["tue_works"].value()
    assert 'name="mon_opens" value="07:00"' in html and 'name="sat_opens" value="08:30"' in html
    assert 'type="time"' in html
    # Every input is labelled with its day
    for key, day in zip(
        DAYS,
        ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
        strict=True,
    ):
        assert (
            f'<label for="id_{key}_opens"><span class="sr-only">{day} </span>From</label>' in html
        )


@pytest.mark.django_db
def test_page_post_saves_and_says_so(client, vendor):
    VendorHoursFactory(vendor=vendor, weekday=6, opens="10:00", closes="14:00")
    client.force_login(vendor.user)
    works = {key: ("07:00", "19:00") for key in DAYS[:5]}
    # Sunday's times without its tick are not published
    response = client.post(PAGE, _post(works, sun_opens="10:00", sun_closes="14:00"))
    assert response.status_code == 302 and response["Location"] == PAGE
    assert _messages(response) == ["Your working hours are saved."]
    assert _hours(vendor) == [(d, time(7), time(19)) for d in range(5)]


@pytest.mark.django_db
def test_page_post_with_no_day_ticked_publishes_none(client, vendor):
    VendorHoursFactory(vendor=vendor, weekday=6, opens="10:00", closes="14:00")
    client.force_login(vendor.user)
    response = client.post(PAGE, _post({}))
    assert response.status_code == 302
    assert "customers can order only while you are on shift" in _messages(response)[0]
    assert _hours(vendor) == []


@pytest.mark.django_db
def test_page_shows_errors_next_to_the_day_and_saves_nothing(client, vendor):
    VendorHoursFactory(vendor=vendor, weekday=6, opens="10:00", closes="14:00")
    client.force_login(vendor.user)
    response = client.post(
        PAGE, _post({"mon": ("19:00", "07:00"), "tue": ("", "12:00"), "wed": ("7 am", "12:00")})
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors == {
        "mon_closes": ["The end must be after the start."],
        "tue_opens": ["Enter a time, or untick this day."],
        "wed_opens": ["Enter a time such as 07:30."],
    }
    html = response.content.decode()
    assert "Some days need fixing; see below." in html
    assert 'id="id_mon_closes_error"' in html and 'aria-invalid="true"' in html
    assert _hours(vendor) == [(6, time(10), time(14))]


@pytest.mark.django_db
def test_page_shows_a_suspended_vendor_why_nothing_was_saved(client):
    vendor = VendorFactory(status=S.SUSPENDED)
    client.force_login(vendor.user)
    response = client.post(PAGE, _post({"mon": ("07:00", "19:00")}))
    assert response.status_code == 200
    assert "Your vendor account is Suspended." in response.content.decode()
    assert _hours(vendor) == []


@pytest.mark.django_db
def test_a_non_vendor_is_sent_to_apply_and_anonymous_to_log_in(client, customer):
    assert client.get(PAGE)["Location"] == f"/accounts/login/?next={PAGE}"
    client.force_login(customer)
    response = client.post(PAGE, _post({"mon": ("07:00", "19:00")}))
    assert response.status_code == 302 and response["Location"] == "/vendors/apply/"
    assert _messages(response) == ["Only vendors have working hours. Apply to sell first."]


@pytest.mark.django_db
def test_dashboard_links_to_the_hours_page(client, vendor):
    client.force_login(vendor.user)
    assert f'href="{PAGE}"' in client.get("/vendors/me/").content.decode()


# --- the API ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_get_returns_the_vendors_hours(api, vendor):
    VendorHoursFactory(vendor=vendor, weekday=5, opens="08:00", closes="13:00")
    VendorHoursFactory(vendor=vendor, weekday=0, opens="07:00", closes="19:00")
    api.force_authenticate(vendor.user)
    response = api.get(API)
    assert response.status_code == 200
    assert response.json() == {
        "days": [
            {"weekday": 0, "opens": "07:00", "closes": "19:00"},
            {"weekday": 5, "opens": "08:00", "closes": "13:00"},
        ]
    }


@pytest.mark.django_db
def test_api_put_replaces_the_hours(api, vendor):
    VendorHoursFactory(vendor=vendor, weekday=6, opens="10:00", closes="14:00")
    api.force_authenticate(vendor.user)
    days = [{"weekday": d, "opens": "07:00", "closes": "19:00"} for d in range(5)]
    response = api.put(API, {"days": days}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"days": days}
    assert _hours(vendor) == [(d, time(7), time(19)) for d in range(5)]
    # And an empty list publishes none
    assert api.put(API, {"days": []}, format="json").json() == {"days": []}
    assert _hours(vendor) == []


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({}, "days", "required"),
        ({"days": [{"weekday": 7, "opens": "07:00", "closes": "19:00"}]}, "days", "less than"),
        ({"days": [{"weekday": 0, "opens": "7am", "closes": "19:00"}]}, "days", "Time has wrong"),
        (
            {"days": [{"weekday": 0, "opens": "19:00", "closes": "07:00"}]},
            "days",
            "Monday: the end must be after the start.",
        ),
        (
            {
                "days": [
                    {"weekday": 2, "opens": "07:00", "closes": "09:00"},
                    {"weekday": 2, "opens": "10:00", "closes": "12:00"},
                ]
            },
            "days",
            "Wednesday is given more than once: one span a day.",
        ),
    ],
)
@pytest.mark.django_db
def test_api_put_with_bad_input_is_400_with_field_messages(api, vendor, body, field, message):
    VendorHoursFactory(vendor=vendor, weekday=6, opens="10:00", closes="14:00")
    api.force_authenticate(vendor.user)
    response = api.put(API, body, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert message in str(error["fields"][field])
    assert _hours(vendor) == [(6, time(10), time(14))]


@pytest.mark.django_db
def test_api_refuses_a_customer_and_anonymous(api, customer):
    assert api.get(API).status_code in (401, 403)
    api.force_authenticate(customer)
    assert api.get(API).status_code == 403
    response = api.put(API, {"days": []}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
def test_api_refuses_a_suspended_vendor_with_403(api):
    vendor = VendorFactory(status=S.SUSPENDED)
    api.force_authenticate(vendor.user)
    response = api.put(API, {"days": []}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


@override_settings(VENDOR_HOURS="mon-sun 09:00-18:00")
@pytest.mark.django_db
def test_hours_are_read_for_many_vendors_at_once_each_span_once(vendor):
    from vendors.selectors import Span, vendor_hours

    # Given one vendor with two spans of their own, and one who never set any
    VendorHoursFactory(vendor=vendor, weekday=0, opens="07:00", closes="19:00")
    VendorHoursFactory(vendor=vendor, weekday=5, opens="08:30", closes="13:00")
    other = VendorFactory()
    # Then each span is read once, and the other keeps the platform's default
    hours = vendor_hours(vendor_ids=[vendor.pk, other.pk])
    assert [(s.weekday, s.opens.hour) for s in hours[vendor.pk]] == [(0, 7), (5, 8)]
    assert len(hours[other.pk]) == 7 and all(isinstance(s, Span) for s in hours[other.pk])
