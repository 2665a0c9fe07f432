"""A customer's saved addresses: change and delete, keeping at most one default (the model's
`one_default_address` index) and, while any address is left, exactly one. Creating one is
customers.services.address_create (the checkout's inline address uses it too).

Every function takes the customer and locks the customer's row first, as address_create does, so
that two writes at once (two tabs, a double tap) are serialised and never both hold the default.
Someone else's address is NotAllowed (answer it with a 404)."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from o2o.errors import NotAllowed
from o2o.geo import validate_lat_lng

from .models import Address, CustomerProfile

# The fields a customer may change, as address_update takes them.
EDITABLE = ("label", "line1", "line2", "postal_code", "lat", "lng", "is_default")


def _lock(customer: CustomerProfile) -> None:
    list(CustomerProfile.objects.select_for_update().filter(pk=customer.pk).values_list("pk"))


def _own(*, customer: CustomerProfile, address_id: int) -> Address:
    address = Address.objects.filter(pk=address_id, customer=customer).first()
    if address is None:
        raise NotAllowed(_("No such address."))
    return address


@transaction.atomic
def address_update(
    *,
    customer: CustomerProfile,
    address_id: int,
    label: str | None = None,
    line1: str | None = None,
    line2: str | None = None,
    postal_code: str | None = None,
    lat: float | None = None,
    lng: float | None = None,
    is_default: bool | None = None,
) -> Address:
    """Change the given fields of one of the customer's addresses (None: unchanged). Making it the
    default takes the default from the other; the default itself can't be un-defaulted (choose
    another address as the default instead), so a customer with addresses always has one."""
    _lock(customer)
    address = _own(customer=customer, address_id=address_id)
    if label is not None:
        address.label = label.strip() or pgettext("address label", "Home")
    if line1 is not None:
        if not line1.strip():
            raise ValidationError({"line1": _("Enter the address.")})
        address.line1 = line1.strip()
    if line2 is not None:
        address.line2 = line2.strip()
    if postal_code is not None:
        address.postal_code = postal_code.strip()
    if (lat is None) != (lng is None):
        raise ValidationError({"lat": _("A location needs both latitude and longitude.")})
    if lat is not None and lng is not None:
        try:
            validate_lat_lng(lat, lng)
        except ValidationError as exc:
            raise ValidationError({"lat": exc.messages}) from exc
        address.lat, address.lng = lat, lng
    if is_default is False and address.is_default:
        raise ValidationError({"is_default": _("Choose another address as the default instead.")})
    if is_default and not address.is_default:
        customer.addresses.filter(is_default=True).update(is_default=False)
        address.is_default = True
    address.full_clean(exclude=["cell", "customer"])
    address.save()
    return address


@transaction.atomic
def address_delete(*, customer: CustomerProfile, address_id: int) -> None:
    """Delete one of the customer's addresses (orders keep their own copy of it). If it was the
    default, the newest address left becomes the default."""
    _lock(customer)
    address = _own(customer=customer, address_id=address_id)
    was_default = address.is_default
    address.delete()
    if was_default:
        newest = customer.addresses.order_by("-created_at", "-pk").first()
        if newest is not None:
            Address.objects.filter(pk=newest.pk).update(is_default=True)
