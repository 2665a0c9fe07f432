"""Template filters available everywhere as {% load money %}."""

from django import template

from o2o.money import format_money

register = template.Library()


@register.filter
def won(amount, currency: str = "KRW") -> str:
    if amount is None or amount == "":
        return ""
    try:
        return format_money(int(amount), currency)
    except (TypeError, ValueError):
        return ""
