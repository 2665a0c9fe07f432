"""{% vendor_availability vendor as av %}: the one availability rule (vendors.selectors) for pages
whose views don't pass it (the basket)."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.formats import date_format

from vendors.models import Vendor
from vendors.selectors import Availability, vendor_availability

register = template.Library()


@register.simple_tag(name="vendor_availability")
def vendor_availability_tag(vendor: Vendor | None) -> Availability | None:
    return None if vendor is None else vendor_availability(vendor_id=vendor.pk)


@register.filter(name="weekday_datetime")
def weekday_datetime(value: datetime) -> str:
    """'Tue Dec 8 07:00' / '화 12월 8일 07:00': the weekday, then the short date-time format every
    page uses (o2o/formats), in local time."""
    local = timezone.localtime(value)
    return f"{date_format(local, 'D')} {date_format(local, 'SHORT_DATETIME_FORMAT')}"
