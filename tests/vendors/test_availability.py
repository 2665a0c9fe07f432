"""The one rule for when a cart takes orders (vendors.selectors.Availability): on shift, anything;
off shift, only windows inside the published hours, at least ORDER_AHEAD_MIN_MINUTES ahead; no
hours published, nothing. The carts list and the vendor page say which."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from orders.forms import ASAP, WINDOW_FORMAT, window_choices
from tests.factories import StockFactory, VendorFactory, VendorPositionFactory
from vendors.selectors import Availability, Span, parse_hours, vendor_availability

SEOUL = ZoneInfo("Asia/Seoul")
LEAD = timedelta(minutes=60)
# Monday 7 December 2026, 20:00 in Seoul
MONDAY_EVENING = datetime(2026, 12, 7, 20, 0, tzinfo=SEOUL)


def av(*, on_shift=False, hours="mon-fri 07:00-19:00; sat 08:00-13:00", now=MONDAY_EVENING):
    return Availability(on_shift=on_shift, hours=parse_hours(hours), now=now, lead=LEAD)


# --- the published hours ------------------------------------------------------------------------


def test_hours_are_read_by_day_ranges_and_sorted():
    spans = parse_hours("sat 08:00-13:00; mon-wed 07:00-19:00")
    assert [s.weekday for s in spans] == [0, 1, 2, 5]
    assert spans[0] == Span(0, time(7), time(19))
    assert parse_hours("") == ()


@pytest.mark.parametrize(
    "spec", ["mon 19:00-07:00", "someday 07:00-19:00", "mon 7-19", "fri-mon 07:00-09:00"]
)
def test_unreadable_hours_are_a_configuration_error(spec):
    with pytest.raises(ImproperlyConfigured):
        parse_hours(spec)


# --- the rule -----------------------------------------------------------------------------------


def test_off_shift_monday_evening_next_hours_are_tuesday_morning():
    a = av()
    start, end = a.next_hours
    assert (start, end) == (
        datetime(2026, 12, 8, 7, 0, tzinfo=SEOUL),
        datetime(2026, 12, 8, 19, 0, tzinfo=SEOUL),
    )
    assert a.takes_orders and not a.in_hours_now
    # Inside Tuesday's hours: yes; past its end, before its start, or across it: no
    assert a.window_allowed(start, start + timedelta(hours=1))
    assert a.window_allowed(end - timedelta(hours=1), end)
    assert not a.window_allowed(end - timedelta(minutes=30), end + timedelta(minutes=30))
    assert not a.window_allowed(start - timedelta(hours=1), start)
    # Tonight (the vendor is off and no hours tonight): no
    assert not a.window_allowed(
        MONDAY_EVENING + timedelta(hours=1), MONDAY_EVENING + timedelta(hours=2)
    )


def test_within_hours_but_off_shift_a_window_must_start_lead_minutes_ahead():
    noon = datetime(2026, 12, 7, 12, 0, tzinfo=SEOUL)
    a = av(now=noon)
    assert a.in_hours_now
    assert not a.window_allowed(noon + timedelta(minutes=59), noon + timedelta(minutes=119))
    assert a.window_allowed(noon + LEAD, noon + LEAD + timedelta(hours=1))


def test_no_hours_published_takes_nothing_off_shift_and_everything_on_shift():
    off, on = av(hours=""), av(hours="", on_shift=True)
    assert not off.takes_orders and off.next_hours is None
    later = MONDAY_EVENING + timedelta(days=1)
    assert not off.window_allowed(later, later + timedelta(hours=1))
    assert on.takes_orders and on.window_allowed(later, later + timedelta(hours=1))


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _quarter(q: int) -> str:
    return f"{q // 4:02d}:{q % 4 * 15:02d}"


# Up to six spans: a weekday, opening and closing on the quarter hour (00:00 to 23:45).
HOURS = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 94), st.integers(1, 95)).filter(
        lambda t: t[1] < t[2]
    ),
    max_size=6,
).map(lambda rows: "; ".join(f"{DAYS[d]} {_quarter(o)}-{_quarter(c)}" for d, o, c in rows))
NOW = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@hyp_settings(max_examples=150, deadline=None)
@given(spec=HOURS, now=NOW, on_shift=st.booleans())
def test_checkout_offers_exactly_the_windows_the_rule_allows(spec, now, on_shift):
    a = Availability(on_shift=on_shift, hours=parse_hours(spec), now=now, lead=LEAD)
    choices = window_choices(now, a)
    offered = [v for _group, opts in choices if isinstance(opts, list) for v, _label in opts]
    # "As soon as possible" only while on shift
    assert (ASAP in [c[0] for c in choices]) == on_shift
    for value in offered:
        start = datetime.strptime(value, WINDOW_FORMAT).replace(tzinfo=SEOUL)
        end = start + timedelta(hours=1)
        assert a.window_allowed(start, end)
        if not on_shift:
            # Off shift: at least the lead ahead, and inside one published span of that day
            assert start >= now + LEAD
            local = start.astimezone(SEOUL)
            assert any(
                s.weekday == local.weekday()
                and s.opens <= local.time()
                and end.astimezone(SEOUL).time() <= s.closes
                and end.astimezone(SEOUL).date() == local.date()
                for s in a.hours
            )
    if not a.has_hours and not on_shift:
        assert choices == []


@hyp_settings(max_examples=150, deadline=None)
@given(spec=HOURS, now=NOW)
def test_next_hours_is_the_first_span_not_over(spec, now):
    a = Availability(on_shift=False, hours=parse_hours(spec), now=now, lead=LEAD)
    nxt = a.next_hours
    if not a.hours:
        assert nxt is None
        return
    assert nxt is not None and nxt[1] > now and nxt[0] < nxt[1]
    # No published span ends after now and starts before the one given
    for s, e in a.spans_between(now, 8):
        if e > now:
            assert s >= nxt[0]


# --- pages --------------------------------------------------------------------------------------


@pytest.fixture
def client():
    return Client(headers={"accept-language": "en"})


@pytest.mark.django_db
@override_settings(VENDOR_HOURS="")
def test_off_shift_cart_without_hours_says_so_on_the_list_and_its_page(client):
    # Given a cart off shift with stock, no hours published, and one on shift
    off = VendorFactory(name="Sleeping cart")
    VendorPositionFactory(vendor=off, on_shift=False)
    StockFactory(vendor=off, quantity=4)
    on = VendorFactory(name="Busy cart")
    VendorPositionFactory(vendor=on)
    StockFactory(vendor=on, quantity=4)
    # When a customer opens the list
    html = client.get("/vendors/").content.decode()
    # Then the off-shift cart is marked, with no hours published; the other is not
    cards = dict(
        (name, html.split(name, 1)[1].split("</li>", 1)[0])
        for name in ("Sleeping cart", "Busy cart")
    )
    assert "Off shift · no hours published" in cards["Sleeping cart"]
    assert "Off shift" not in cards["Busy cart"]
    # And its page says it takes no orders, with no "Add to basket"
    page = client.get(f"/vendors/{off.slug}/").content.decode()
    assert "This cart is off shift now." in page and "It has published no hours." in page
    assert "Add to basket" not in page
    assert "Add to basket" in client.get(f"/vendors/{on.slug}/").content.decode()


@pytest.mark.django_db
@override_settings(VENDOR_HOURS="mon-sun 00:00-23:59", ORDER_AHEAD_MIN_MINUTES=60)
def test_off_shift_cart_with_hours_offers_ordering_ahead(client):
    off = VendorFactory()
    VendorPositionFactory(vendor=off, on_shift=False)
    StockFactory(vendor=off, quantity=4)
    page = client.get(f"/vendors/{off.slug}/").content.decode()
    assert "This cart is off shift now." in page
    assert "You can order ahead: delivery or pickup at a partner point" in page
    assert "at least 60 minutes from now" in page
    assert "Add to basket" in page
    assert "Off shift · " in client.get("/vendors/").content.decode()


@pytest.mark.django_db
def test_a_vendor_never_located_is_off_shift():
    vendor = VendorFactory()  # no position at all
    assert not vendor_availability(vendor_id=vendor.pk).on_shift
