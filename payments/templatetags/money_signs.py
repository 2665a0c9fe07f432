"""Amounts with their sign, for the money pages: {% load money_signs %}.

`signed`: −₩1,000 / ₩1,000 (a true minus sign). `deduct`: an amount taken away from the vendor,
shown as −₩1,000; when it is negative (given back) as +₩1,000."""

from django import template

from o2o.money import format_money

register = template.Library()
MINUS = "\u2212"


def _int(amount) -> int | None:
    try:
        return int(amount)
    except (TypeError, ValueError):
        return None


@register.filter
def signed(amount, currency: str = "KRW") -> str:
    value = _int(amount)
    if value is None:
        return ""
    return (MINUS if value < 0 else "") + format_money(abs(value), currency)


@register.filter
def deduct(amount, currency: str = "KRW") -> str:
    value = _int(amount)
    if value is None:
        return ""
    if value == 0:
        return format_money(0, currency)
    return ("+" if value < 0 else MINUS) + format_money(abs(value), currency)
