"""The calendar against a plain reference: walk every day and ask each rule directly."""

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from subscriptions.calendar import Schedule, due_dates, weekdays_mask, weekdays_of


def reference(*, schedules, starts_on, between, skips, pauses, vendor_weekdays) -> list[date]:
    out = []
    day = between[0]
    while day <= between[1]:
        in_force = None
        for effective_from, schedule in sorted(schedules, key=lambda p: p[0]):
            if effective_from <= day:
                in_force = schedule
        hit = False
        if in_force is not None:
            if in_force.every_n_days is None:
                hit = day.weekday() in weekdays_of(in_force.weekdays)
            else:
                hit = abs((day - in_force.anchor).days) % in_force.every_n_days == 0
        paused = any(a <= day and (b is None or day < b) for a, b in pauses)
        works = day.weekday() in weekdays_of(vendor_weekdays)
        if day >= starts_on and hit and works and day not in skips and not paused:
            out.append(day)
        day += timedelta(days=1)
    return out


# Around month ends and year ends (leap years too).
days = st.dates(min_value=date(2023, 11, 1), max_value=date(2025, 3, 31))
masks = st.integers(min_value=1, max_value=127)


@st.composite
def schedules(draw):
    if draw(st.booleans()):
        return Schedule(weekdays=draw(masks))
    return Schedule(every_n_days=draw(st.integers(1, 28)), anchor=draw(days))


@st.composite
def pause_windows(draw):
    first = draw(days)
    back = draw(st.one_of(st.none(), st.integers(1, 40).map(lambda n: first + timedelta(days=n))))
    return (first, back)


@settings(max_examples=300, deadline=None)
@given(
    versions=st.lists(st.tuples(days, schedules()), min_size=1, max_size=3),
    starts_on=days,
    first=days,
    length=st.integers(0, 120),
    skips=st.sets(days, max_size=10),
    pauses=st.lists(pause_windows(), max_size=3),
    vendor=masks,
)
def test_due_dates_match_the_day_by_day_reference(
    versions, starts_on, first, length, skips, pauses, vendor
):
    between = (first, first + timedelta(days=length))
    args = dict(
        schedules=versions,
        starts_on=starts_on,
        between=between,
        skips=skips,
        pauses=pauses,
        vendor_weekdays=vendor,
    )
    assert due_dates(**args) == reference(**args)


def test_a_change_of_days_takes_effect_from_its_date():
    # Given Mon/Wed/Fri until Sunday 5 Jan 2025, then Tuesdays only
    mwf = Schedule(weekdays=weekdays_mask({0, 2, 4}))
    tue = Schedule(weekdays=weekdays_mask({1}))
    got = due_dates(
        schedules=[(date(2024, 12, 23), mwf), (date(2025, 1, 6), tue)],
        starts_on=date(2024, 12, 23),
        between=(date(2024, 12, 28), date(2025, 1, 15)),
    )
    assert got == [
        date(2024, 12, 30),
        date(2025, 1, 1),
        date(2025, 1, 3),
        date(2025, 1, 7),
        date(2025, 1, 14),
    ]


def test_every_n_days_crosses_the_year_and_leap_day():
    every3 = Schedule(every_n_days=3, anchor=date(2023, 12, 30))
    got = due_dates(
        schedules=[(date(2023, 12, 30), every3)],
        starts_on=date(2023, 12, 30),
        between=(date(2024, 2, 25), date(2024, 3, 5)),
    )
    # 30 Dec + 57 days = 25 Feb; then 28 Feb, and 2 Mar because 2024 has a 29 Feb
    assert got == [date(2024, 2, 25), date(2024, 2, 28), date(2024, 3, 2), date(2024, 3, 5)]


def test_pause_skip_and_vendor_days():
    daily = Schedule(weekdays=127)
    got = due_dates(
        schedules=[(date(2024, 1, 1), daily)],
        starts_on=date(2024, 1, 1),
        between=(date(2024, 1, 1), date(2024, 1, 14)),
        skips={date(2024, 1, 2)},
        pauses=[(date(2024, 1, 4), date(2024, 1, 9))],  # back on Tuesday 9th
        vendor_weekdays=weekdays_mask(range(5)),  # the vendor works Mon-Fri
    )
    assert got == [
        date(2024, 1, 1),
        date(2024, 1, 3),
        date(2024, 1, 9),
        date(2024, 1, 10),
        date(2024, 1, 11),
        date(2024, 1, 12),
    ]
