"""The subscription pages' forms: they only shape input; the services decide."""

from django import forms
from django.utils.translation import gettext_lazy as _

from o2o.money import format_money

from .models import Subscription, WellbeingRequest, plan_choices

WellbeingRequestRelation = WellbeingRequest.Relation

WEEKDAYS = [
    (0, _("Mon")),
    (1, _("Tue")),
    (2, _("Wed")),
    (3, _("Thu")),
    (4, _("Fri")),
    (5, _("Sat")),
    (6, _("Sun")),
]


class SubscriptionForm(forms.Form):
    address = forms.TypedChoiceField(label=_("Deliver to"), coerce=int)
    plan = forms.ChoiceField(label=_("Plan"))
    starts_on = forms.DateField(
        label=_("First delivery"), widget=forms.DateInput(attrs={"type": "date"})
    )
    weekdays = forms.TypedMultipleChoiceField(
        label=_("Days"),
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    every_n_days = forms.IntegerField(label=_("Or every N days"), required=False, min_value=1)
    shortage_policy = forms.ChoiceField(
        label=_("When stock is short"), choices=Subscription.Shortage.choices
    )
    not_at_home_policy = forms.ChoiceField(
        label=_("When nobody is at home"), choices=Subscription.NotAtHome.choices
    )

    def __init__(self, *args, addresses=(), products=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["address"].choices = [(a.pk, str(a)) for a in addresses]
        self.fields["plan"].choices = plan_choices()
        self.products = list(products)
        for product in self.products:
            self.fields[f"qty_{product.pk}"] = forms.IntegerField(
                label=f"{product.name} · {format_money(product.price, 'KRW')}",
                min_value=0,
                max_value=99,
                required=False,
                initial=0,
            )

    def quantity_fields(self):
        return [self[f"qty_{p.pk}"] for p in self.products]

    def items(self) -> list[tuple[int, int]]:
        return [
            (p.pk, self.cleaned_data.get(f"qty_{p.pk}") or 0)
            for p in self.products
            if self.cleaned_data.get(f"qty_{p.pk}")
        ]


class PauseForm(forms.Form):
    until = forms.DateField(
        label=_("Pause until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


class SkipForm(forms.Form):
    date = forms.DateField(label=_("Date"))


class PreferencesForm(forms.Form):
    """What happens at the door (subscription_preferences_set decides)."""

    shortage_policy = forms.ChoiceField(
        label=_("When stock is short"), choices=Subscription.Shortage.choices
    )
    not_at_home_policy = forms.ChoiceField(
        label=_("When nobody is at home"), choices=Subscription.NotAtHome.choices
    )
    wellbeing_check = forms.BooleanField(
        label=_("Ask the vendor to check that all is well at each delivery"), required=False
    )
    contact_name = forms.CharField(label=_("Who to tell"), max_length=100, required=False)
    contact_email = forms.EmailField(label=_("Their e-mail"), required=False)
    consent = forms.BooleanField(
        label=_(
            "I agree that the vendor notes how I seem at each delivery and that this person is "
            "told at once when something seems wrong."
        ),
        required=False,
    )


class WellbeingAskForm(forms.Form):
    """Someone close to a subscriber asks for the wellbeing check (subscriptions.wellbeing)."""

    subscriber_email = forms.EmailField(
        label=_("The subscriber's e-mail"),
        help_text=_("The address they use with us. We ask them; nothing starts without their yes."),
    )
    requester_name = forms.CharField(label=_("Your name"), max_length=100)
    requester_email = forms.EmailField(
        label=_("Your e-mail"), help_text=_("Where the vendor's concerns would be sent.")
    )
    relation = forms.ChoiceField(
        label=_("You are their"),
        choices=WellbeingRequestRelation.choices,
        widget=forms.RadioSelect,
    )
    message = forms.CharField(
        label=_("A word for them"),
        max_length=300,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class WellbeingAnswerForm(forms.Form):
    """The subscriber's answer: which subscription the check is for, and yes or no."""

    subscription = forms.TypedChoiceField(
        label=_("For the deliveries of"), coerce=int, required=False, empty_value=None
    )
    answer = forms.ChoiceField(choices=[("agree", "agree"), ("decline", "decline")])

    def __init__(self, *args, subscriptions=(), **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["subscription"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [(s.pk, s.vendor.name) for s in subscriptions]
        field.widget = forms.RadioSelect(choices=field.choices)
