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
