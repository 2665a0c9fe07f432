"""The vendor's working-hours page: one row a weekday, "works this day" and from/to times."""

from collections.abc import Iterable
from typing import Any

from django import forms
from django.utils.translation import gettext as _

from .models import OpeningHours
from .selectors import Span
from .services import DayHours

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _time_field(label: str) -> forms.TimeField:
    return forms.TimeField(
        label=label,
        required=False,
        input_formats=["%H:%M", "%H:%M:%S"],
        error_messages={"invalid": _("Enter a time such as 07:30.")},
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )


class VendorHoursForm(forms.Form):
    """Fields `<day>_works`, `<day>_opens`, `<day>_closes` for each weekday (mon..sun). A day that
    isn't ticked is not published, whatever its times say."""

    def __init__(self, *args: Any, spans: Iterable[Span] = (), **kwargs: Any) -> None:
        initial: dict[str, object] = {}
        for span in spans:  # at most one span a day on this page: the first one of the day
            key = DAY_KEYS[span.weekday]
            if f"{key}_works" not in initial:
                initial.update(
                    {f"{key}_works": True, f"{key}_opens": span.opens, f"{key}_closes": span.closes}
                )
        kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        for key, weekday in zip(DAY_KEYS, OpeningHours.Weekday, strict=True):
            day = str(weekday.label)
            self.fields[f"{key}_works"] = forms.BooleanField(
                label=_("%(day)s: works this day") % {"day": day}, required=False
            )
            self.fields[f"{key}_opens"] = _time_field(_("%(day)s from") % {"day": day})
            self.fields[f"{key}_closes"] = _time_field(_("%(day)s to") % {"day": day})

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for key in DAY_KEYS:
            if not cleaned.get(f"{key}_works"):
                continue
            opens, closes = cleaned.get(f"{key}_opens"), cleaned.get(f"{key}_closes")
            for part, value in (("opens", opens), ("closes", closes)):
                if value is None and not self.has_error(f"{key}_{part}"):
                    self.add_error(f"{key}_{part}", _("Enter a time, or untick this day."))
            if opens is not None and closes is not None and closes <= opens:
                self.add_error(f"{key}_closes", _("The end must be after the start."))
        return cleaned

    def days(self) -> list[DayHours]:
        """The ticked days, for vendor_hours_set (call after is_valid())."""
        return [
            DayHours(
                weekday=weekday,
                opens=self.cleaned_data[f"{key}_opens"],
                closes=self.cleaned_data[f"{key}_closes"],
            )
            for weekday, key in enumerate(DAY_KEYS)
            if self.cleaned_data.get(f"{key}_works")
        ]

    def rows(self) -> list[dict[str, Any]]:
        """One row a weekday for the template: its name and bound fields."""
        out = []
        for key, weekday in zip(DAY_KEYS, OpeningHours.Weekday, strict=True):
            works, opens, closes = (self[f"{key}_{part}"] for part in ("works", "opens", "closes"))
            out.append(
                {
                    "key": key,
                    "name": weekday.label,
                    "works": works,
                    "opens": opens,
                    "closes": closes,
                    "has_error": bool(works.errors or opens.errors or closes.errors),
                }
            )
        return out
