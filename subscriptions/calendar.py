"""When a subscription is due: pure functions over dates (Asia/Seoul calendar days), no database.

A schedule is either a set of weekdays (a bitmask, bit 0 = Monday … bit 6 = Sunday) or "every N
days" counted from an anchor date. A schedule change takes effect from a date: `due_dates` takes
the schedules in force as (effective_from, Schedule) pairs, the latest one not after a day wins.
A day is due when the schedule in force hits it, it is on or after `starts_on`, the vendor works
that weekday, it is not skipped and it lies in no pause window. Pause windows are half-open
[first paused day, first day back); an open end (None) pauses for good.
"""

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

ALL_WEEKDAYS = 0b111_1111


def weekdays_mask(weekdays: Iterable[int]) -> int:
    """{0, 2, 4} (Mon, Wed, Fri) -> 0b10101."""
    mask = 0
    for day in weekdays:
        if not 0 <= day <= 6:
            raise ValueError(f"weekday {day} is not 0 (Monday) .. 6 (Sunday)")
        mask |= 1 << day
    return mask


def weekdays_of(mask: int) -> list[int]:
    """0b10101 -> [0, 2, 4]."""
    return [day for day in range(7) if mask & (1 << day)]


@dataclass(frozen=True)
class Schedule:
    """Weekdays (`weekdays` bitmask, `every_n_days` None) or every N days from `anchor`."""

    weekdays: int = 0
    every_n_days: int | None = None
    anchor: date | None = None

    def __post_init__(self) -> None:
        if self.every_n_days is None:
            if not 0 < self.weekdays <= ALL_WEEKDAYS:
                raise ValueError("a weekly schedule needs at least one weekday")
        else:
            if self.every_n_days < 1 or self.anchor is None or self.weekdays:
                raise ValueError("every N days needs N >= 1 and an anchor date, and no weekdays")

    def hits(self, day: date) -> bool:
        if self.every_n_days is None:
            return bool(self.weekdays & (1 << day.weekday()))
        assert self.anchor is not None
        return (day - self.anchor).days % self.every_n_days == 0


PauseWindow = tuple[date, date | None]


def _paused(day: date, pauses: Iterable[PauseWindow]) -> bool:
    return any(first <= day and (back is None or day < back) for first, back in pauses)


def schedule_on(schedules: Sequence[tuple[date, Schedule]], day: date) -> Schedule | None:
    """The schedule in force on `day`: the latest whose effective date is not after it."""
    current: Schedule | None = None
    for effective_from, schedule in sorted(schedules, key=lambda pair: pair[0]):
        if effective_from <= day:
            current = schedule
    return current


def _hits_in(schedule: Schedule, first: date, last: date) -> Iterable[date]:
    """The days in [first, last] the schedule hits, jumping straight from one to the next."""
    if schedule.every_n_days is not None:
        assert schedule.anchor is not None
        step = schedule.every_n_days
        day = first + timedelta(days=(schedule.anchor - first).days % step)
        while day <= last:
            yield day
            day += timedelta(days=step)
        return
    days = weekdays_of(schedule.weekdays)
    week_start = first - timedelta(days=first.weekday())
    while week_start <= last:
        for weekday in days:
            day = week_start + timedelta(days=weekday)
            if first <= day <= last:
                yield day
        week_start += timedelta(days=7)


def due_dates(
    *,
    schedules: Sequence[tuple[date, Schedule]],
    starts_on: date,
    between: tuple[date, date],
    skips: Collection[date] = (),
    pauses: Iterable[PauseWindow] = (),
    vendor_weekdays: int = ALL_WEEKDAYS,
) -> list[date]:
    """The due days in `between` (both ends included), in order."""
    first, last = max(between[0], starts_on), between[1]
    pauses = list(pauses)
    ordered = sorted(schedules, key=lambda pair: pair[0])
    out: list[date] = []
    # Each schedule covers [its effective date, the next one's) within [first, last].
    for index, (effective_from, schedule) in enumerate(ordered):
        until = ordered[index + 1][0] - timedelta(days=1) if index + 1 < len(ordered) else last
        out.extend(
            day
            for day in _hits_in(schedule, max(first, effective_from), min(last, until))
            if vendor_weekdays & (1 << day.weekday())
            and day not in skips
            and not _paused(day, pauses)
        )
    return out


def next_due_dates(
    *,
    schedules: Sequence[tuple[date, Schedule]],
    starts_on: date,
    after: date,
    n: int,
    skips: Collection[date] = (),
    pauses: Iterable[PauseWindow] = (),
    vendor_weekdays: int = ALL_WEEKDAYS,
    horizon_days: int = 400,
) -> list[date]:
    """The next `n` due days from `after` (included), looking at most `horizon_days` ahead."""
    days = due_dates(
        schedules=schedules,
        starts_on=starts_on,
        between=(after, after + timedelta(days=horizon_days)),
        skips=skips,
        pauses=pauses,
        vendor_weekdays=vendor_weekdays,
    )
    return days[:n]
