"""What the address map needs on a page: the vendor's area, and whether a geocoder is set."""

from django import template

from customers.geocoding import geocoder_enabled as _geocoder_enabled
from customers.selectors import vendor_area_shapes

register = template.Library()


@register.simple_tag
def vendor_area(vendor_id: int) -> list[dict[str, object]]:
    """The cells a vendor delivers to, as hexagons: `{% vendor_area vendor.pk as area %}`."""
    return vendor_area_shapes(vendor_id=vendor_id)


@register.simple_tag
def geocoder_enabled() -> bool:
    return _geocoder_enabled()
