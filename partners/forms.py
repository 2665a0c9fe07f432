from django import forms
from django.utils.translation import gettext_lazy as _


class CollectForm(forms.Form):
    """The point's staff type the code the customer shows, for one waiting order."""

    order = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    code = forms.CharField(
        label=_("Customer's code"),
        max_length=12,
        error_messages={"required": _("Type the code the customer shows.")},
    )
