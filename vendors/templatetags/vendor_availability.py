"""{% vendor_availability vendor as av %}: the one availability rule (vendors.selectors) for pages
whose views don't pass it (the basket)."""

from django import template

from vendors.models import Vendor
from vendors.selectors import Availability, vendor_availability

register = template.Library()


@register.simple_tag(name="vendor_availability")
def vendor_availability_tag(vendor: Vendor | None) -> Availability | None:
    return None if vendor is None else vendor_availability(vendor_id=vendor.pk)
