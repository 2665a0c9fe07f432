"""Forms of the order pages. They check the shape of what was sent; the rules (stock, service area,
opening hours, the meeting distance) live in orders.services, whose errors the views put back on
these forms with `o2o.forms.add_service_error`."""

from datetime import datetime, timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import date_format, time_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from customers.models import Address
from vendors.models import PickupPoint
from vendors.selectors import Availability

from .models import Fulfilment
from .selectors import MeetCell
from .services.placement import ways_allowed

NEW_ADDRESS = "new"
NEW_ADDRESS_REQUIRED = ("new_label", "new_line1", "new_lat", "new_lng")
ASAP = "asap"
WINDOW_FORMAT = "%Y-%m-%dT%H:%M"
FIRST_HOUR, LAST_HOUR = 7, 22  # windows offered start from 07:00 and end by 23:00
COMPASS = {
    "N": pgettext_lazy("direction", "north"),
    "NE": pgettext_lazy("direction", "north-east"),
    "E": pgettext_lazy("direction", "east"),
    "SE": pgettext_lazy("direction", "south-east"),
    "S": pgettext_lazy("direction", "south"),
    "SW": pgettext_lazy("direction", "south-west"),
    "W": pgettext_lazy("direction", "west"),
    "NW": pgettext_lazy("direction", "north-west"),
}


# --- cart ---------------------------------------------------------------------------------------


class CartAddForm(forms.Form):
    vendor = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    product = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, initial=1)
    replace = forms.BooleanField(required=False, widget=forms.HiddenInput)


class CartUpdateForm(forms.Form):
    product = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    quantity = forms.IntegerField(label=_("Quantity"), min_value=0)


class CartRemoveForm(forms.Form):
    product = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


# --- checkout -----------------------------------------------------------------------------------


def _slot_label(start: datetime, *, with_day: bool = False) -> str:
    """ "07:00–08:00"; with the day ("Tue Dec 8 07:00–08:00", the short date format every page
    uses) where the option alone must say it is not today (a closed select shows no group label)."""
    end = start + timedelta(hours=1)
    hours = f"{time_format(start, 'H:i')}–{time_format(end, 'H:i')}"
    day = f"{date_format(start, 'D')} {date_format(start, 'SHORT_DATE_FORMAT')}"
    return f"{day} {hours}" if with_day else hours


def window_choices(now: datetime, availability: Availability | None = None) -> list:
    """ "As soon as possible", then one-hour windows for the rest of today and tomorrow: those the
    vendor's availability allows (vendors.selectors.Availability, the rule order_place applies),
    so an off-shift cart offers only windows within its hours, and no "as soon as possible"."""
    local = timezone.localtime(now)
    next_hour = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    starts = []
    start = next_hour
    while start.date() == local.date() and start.hour <= LAST_HOUR:
        if start.hour >= FIRST_HOUR:
            starts.append(start)
        start += timedelta(hours=1)
    day = (local + timedelta(days=1)).replace(hour=FIRST_HOUR, minute=0, second=0, microsecond=0)
    while day.hour <= LAST_HOUR:
        starts.append(day)
        day += timedelta(hours=1)
    if availability is not None:
        starts = [s for s in starts if availability.window_allowed(s, s + timedelta(hours=1))]
    today = [
        (s.strftime(WINDOW_FORMAT), _slot_label(s)) for s in starts if s.date() == local.date()
    ]
    tomorrow = [
        (s.strftime(WINDOW_FORMAT), _slot_label(s, with_day=True))
        for s in starts
        if s.date() != local.date()
    ]
    choices: list = []
    if availability is None or availability.on_shift:
        choices.append((ASAP, _("As soon as possible (within the hour)")))
    if today:
        choices.append((_("Today"), today))
    if tomorrow:
        choices.append((_("Tomorrow"), tomorrow))
    return choices


def parse_window(value: str, now: datetime) -> tuple[datetime, datetime]:
    if value == ASAP:
        return now, now + timedelta(hours=1)
    # Any time the format allows, not only the windows offered (a page drawn before the hour
    # turned still sends its first window): orders.services checks the range, with its message.
    # A start at the end of the calendar has no end, though: that is no window either.
    try:
        start = datetime.strptime(value, WINDOW_FORMAT)
        start = timezone.make_aware(start, timezone.get_current_timezone())
        return start, start + timedelta(hours=1)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(_("Choose a time window.")) from None


def _meet_label(cell: MeetCell) -> str:
    if cell.is_vendor:
        return str(_("Where the vendor is now"))
    return str(
        _("About %(distance)s m %(direction)s of the vendor")
        % {"distance": cell.distance_m, "direction": COMPASS[cell.direction]}
    )


def _pickup_label(point: PickupPoint, weekday: int) -> str:
    hours = [h for h in point.hours.all() if h.weekday == weekday]
    today = ", ".join(f"{h.opens:%H:%M}–{h.closes:%H:%M}" for h in hours) or str(_("closed today"))
    return f"{point.name} · {point.address} ({today})"


def _address_label(address: Address) -> str:
    return f"{address.label}: {address.line1} {address.line2}".strip()


class CheckoutForm(forms.Form):
    """How to receive the order, when, and a note. Only the fields of the chosen way count."""

    checkout_token = forms.UUIDField(widget=forms.HiddenInput)
    # What the page showed (minor units), so a price or fee changed since is not charged silently:
    # the items, and the delivery fee (which counts only for delivery). The template writes them
    # from the amounts the page shows, on every rendering; a page without them is not checked.
    expected_subtotal = forms.IntegerField(required=False, widget=forms.HiddenInput)
    expected_delivery_fee = forms.IntegerField(required=False, widget=forms.HiddenInput)
    fulfilment = forms.ChoiceField(
        label=_("How do you want to receive it?"),
        choices=[
            (Fulfilment.MEET, Fulfilment.MEET.label),
            (Fulfilment.DELIVERY, Fulfilment.DELIVERY.label),
            (Fulfilment.PICKUP, Fulfilment.PICKUP.label),
        ],
        widget=forms.RadioSelect,
    )
    # Loose fields (the service decides): the vendor may have moved, a point may have closed,
    # since the page was drawn, and the customer deserves the service's message, not "invalid".
    meet_cell = forms.CharField(
        label=_("Where to meet"), required=False, max_length=16, widget=forms.RadioSelect
    )
    address = forms.CharField(
        label=_("Deliver to"), required=False, max_length=12, widget=forms.RadioSelect
    )
    # A new address: required only when chosen (so `required=False` here, checked in clean());
    # NEW_ADDRESS_REQUIRED marks them required on the page. The pin on the map fills lat/lng.
    new_label = forms.CharField(
        label=_("Label"), required=False, max_length=40, help_text=_("e.g. Home, Office")
    )
    new_line1 = forms.CharField(label=_("Address"), required=False, max_length=200)
    new_line2 = forms.CharField(label=_("Detail (floor, unit)"), required=False, max_length=100)
    new_lat = forms.FloatField(label=_("Latitude"), required=False, min_value=-90, max_value=90)
    new_lng = forms.FloatField(label=_("Longitude"), required=False, min_value=-180, max_value=180)
    pickup_point = forms.IntegerField(
        label=_("Pickup point"), required=False, min_value=1, widget=forms.RadioSelect
    )
    window = forms.CharField(label=_("When"), max_length=20, widget=forms.Select)
    note = forms.CharField(
        label=_("Note for the vendor"),
        required=False,
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(
        self,
        *args,
        addresses: list[Address],
        meet_cells: list[MeetCell],
        pickup_points: list[PickupPoint],
        now: datetime,
        availability: Availability | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.now = now
        self.availability = availability
        self.fields["meet_cell"].widget.choices = [(c.cell, _meet_label(c)) for c in meet_cells]
        self.fields["address"].widget.choices = [
            *((str(a.pk), _address_label(a)) for a in addresses),
            (NEW_ADDRESS, _("A new address")),
        ]
        weekday = timezone.localtime(now).weekday()
        self.fields["pickup_point"].widget.choices = [
            (p.pk, _pickup_label(p, weekday)) for p in pickup_points
        ]
        self.fields["window"].widget.choices = window_choices(now, availability)
        if availability is not None and not availability.on_shift and availability.has_hours:
            # Only the ways an order ahead allows (with none at all, order_place says why).
            allowed = ways_allowed(availability)
            self.fields["fulfilment"].choices = [  # type: ignore[attr-defined]
                (value, label) for value, label in Fulfilment.choices if value in allowed
            ]
        for name in ("new_lat", "new_lng"):
            self.fields[name].widget.attrs.update({"inputmode": "decimal", "step": "any"})
        for name in NEW_ADDRESS_REQUIRED:
            # Required when a new address is chosen: the label says so, not "(optional)".
            self.fields[name].required_when_shown = True  # type: ignore[attr-defined]
            self.fields[name].widget.attrs["aria-required"] = "true"

    def clean(self):
        data = super().clean()
        if "window" in data:
            try:
                data["window_start"], data["window_end"] = parse_window(data["window"], self.now)
            except ValidationError as exc:
                self.add_error("window", exc)
        if data.get("fulfilment") == Fulfilment.DELIVERY:
            address = data.get("address") or ""
            if address == NEW_ADDRESS:
                for name, message in (
                    ("new_label", _("Give the address a label, such as Home.")),
                    ("new_line1", _("Enter the address.")),
                    ("new_lat", _("Place the pin on the map where the order should go.")),
                    ("new_lng", _("Place the pin on the map where the order should go.")),
                ):
                    if name not in self.errors and data.get(name) in (None, ""):
                        self.add_error(name, message)
            elif not (address.isascii() and address.isdigit()):  # "²" is a digit to isdigit()
                self.add_error("address", _("Choose one of your addresses."))
        return data

    @property
    def expected_total(self) -> int | None:
        """The total the customer saw for the way chosen: items, plus the fee for delivery."""
        data = self.cleaned_data
        subtotal, fee = data.get("expected_subtotal"), data.get("expected_delivery_fee")
        if subtotal is None:
            return None
        if data.get("fulfilment") != Fulfilment.DELIVERY:
            return subtotal
        return None if fee is None else subtotal + fee

    @property
    def wants_new_address(self) -> bool:
        return (
            self.cleaned_data.get("fulfilment") == Fulfilment.DELIVERY
            and self.cleaned_data.get("address") == NEW_ADDRESS
        )


# --- the order page and the vendor's inbox ------------------------------------------------------


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Why (optional)"), required=False, max_length=200)


class ProblemForm(forms.Form):
    reason = forms.CharField(
        label=_("What went wrong?"), max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )


class AcceptForm(forms.Form):
    eta_minutes = forms.IntegerField(
        label=_("Ready in (minutes)"), min_value=1, max_value=24 * 60, initial=15
    )


class RejectForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200)


class HandOverForm(forms.Form):
    code = forms.CharField(label=_("Customer's code"), max_length=6)


class HandOverScanForm(forms.Form):
    """What the vendor's scanner sends: the scanned QR's link (or its token), or, typed, the order
    number with the customer's code."""

    text = forms.CharField(label=_("The QR code's link"), max_length=500, required=False)
    order = forms.IntegerField(label=_("Order number"), min_value=1, required=False)
    code = forms.CharField(label=_("Customer's code"), max_length=6, required=False)

    def clean(self):
        data = super().clean()
        if not data.get("text") and not (data.get("order") and data.get("code")):
            raise forms.ValidationError(
                _("Scan the customer's QR code, or type the order number and the code.")
            )
        return data


class LineShortForm(forms.Form):
    line = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    quantity = forms.IntegerField(label=_("How many"), min_value=1, max_value=10_000, initial=1)
    reason = forms.CharField(label=_("Why (the customer sees it)"), max_length=200)


class CashSaleForm(forms.Form):
    """A cash sale from the page: `client_id` (made when the page was drawn: a double submit
    records one sale) and a quantity `q<product id>` per product tapped. Any product id is read,
    not only those shown: one that is not on the cart is refused by the service, by name."""

    client_id = forms.UUIDField(widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        items: dict[int, int] = {}
        for key, value in self.data.items():
            if not key.startswith("q") or not key[1:].isdigit() or value in ("", "0"):
                continue
            try:
                quantity = int(value)
            except (TypeError, ValueError):
                raise ValidationError(_("Quantities are whole numbers.")) from None
            items[int(key[1:])] = quantity
        if not items:
            raise ValidationError(_("Tap at least one product."))
        data["items"] = items
        return data


class NoFieldsForm(forms.Form):
    """Depart and ready need nothing but the button (and the CSRF token)."""
