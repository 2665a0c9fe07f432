from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .services import MAX_STOCK


class VendorApplyForm(forms.Form):
    name = forms.CharField(label=_("Cart name"), max_length=80)
    phone = forms.CharField(label=_("Phone"), max_length=20, required=False)
    bio = forms.CharField(
        label=_("About your cart"), max_length=1000, required=False, widget=forms.Textarea
    )
    home_lat = forms.FloatField(
        label=_("Home base latitude"), min_value=-90, max_value=90, initial=37.5563
    )
    home_lng = forms.FloatField(
        label=_("Home base longitude"), min_value=-180, max_value=180, initial=126.9220
    )


class StockForm(forms.Form):
    """One row of the stock page: the product, the quantity the vendor saw, the new quantity."""

    product_id = forms.IntegerField(widget=forms.HiddenInput)
    expected = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    # MAX_STOCK is checked in clean(), on changed rows only: released reservations can put a row
    # above it, and sending that row back unchanged must not block saving the others.
    quantity = forms.IntegerField(
        label=_("Quantity"),
        min_value=0,
        error_messages={
            "invalid": _("Enter a whole number."),
            "min_value": _("Quantity can't be negative."),
            "required": _("Enter a quantity (0 if none)."),
        },
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 0, "max": MAX_STOCK}),
    )

    def clean(self):
        cleaned = super().clean()
        quantity, expected = cleaned.get("quantity"), cleaned.get("expected")
        if quantity is not None and quantity > MAX_STOCK and quantity != expected:
            self.add_error(
                "quantity",
                gettext("Quantity can't be more than %(limit_value)s.")
                % {"limit_value": MAX_STOCK},
            )
        return cleaned


StockFormSet = forms.formset_factory(StockForm, extra=0, max_num=1000, validate_max=True)


# --- cold-chain lots: the stock page's load, correct and write-off forms -------------------------


class LotLoadForm(forms.Form):
    """Units put on the cart together, with their expiry (and best-before time if chilled)."""

    product = forms.TypedChoiceField(label=_("Product"), coerce=int)
    quantity = forms.IntegerField(
        label=_("Quantity"),
        min_value=1,
        max_value=MAX_STOCK,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    expires_on = forms.DateField(
        label=_("Expiry date"), widget=forms.DateInput(attrs={"type": "date"})
    )
    best_before = forms.DateTimeField(
        label=_("Best before (chilled items)"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args, products=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"].choices = [(p.pk, p.name) for p in products]


class LotCorrectForm(forms.Form):
    lot = forms.IntegerField(widget=forms.HiddenInput)
    quantity = forms.IntegerField(
        label=_("Counted"),
        min_value=0,
        max_value=MAX_STOCK,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )


def _write_off_reasons():
    from .models import LotAdjustment

    return [c for c in LotAdjustment.Reason.choices if c[0] != LotAdjustment.Reason.COUNT]


class LotWriteOffForm(forms.Form):
    lot = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.ChoiceField(label=_("Reason"), choices=_write_off_reasons)
    quantity = forms.IntegerField(
        label=_("How many (all if empty)"),
        min_value=1,
        required=False,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    note = forms.CharField(label=_("Note"), max_length=200, required=False)
