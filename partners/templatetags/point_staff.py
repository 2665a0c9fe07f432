"""{% load point_staff %}{{ user|first_name }}: how the point's staff greet a customer — the
first name only ("Anna" of "Anna Park"; "민지" of "김민지", the family name coming first)."""

from django import template
from django.utils.translation import gettext as _

register = template.Library()


def _hangul(text: str) -> bool:
    return all("\uac00" <= ch <= "\ud7a3" for ch in text)


@register.filter
def first_name(user) -> str:
    name = (getattr(user, "name", "") or "").strip()
    if not name:
        return _("Customer")
    parts = name.split()
    if len(parts) > 1:
        return parts[-1] if _hangul(parts[0]) else parts[0]
    if _hangul(name) and 3 <= len(name) <= 4:
        return name[1:]
    return name
