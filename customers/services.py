from datetime import datetime
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from o2o.effects import effect_add
from o2o.errors import NotAllowed
from o2o.geo import validate_lat_lng
from vendors.models import Vendor

from .models import Address, CustomerProfile, FavouriteNearNotice, FavouriteVendor
from .selectors import in_vendor_area

if TYPE_CHECKING:
    from o2o.accounts.models import User as AccountUser

User = get_user_model()


@transaction.atomic
def customer_signup(
    *, email: str, password: str, name: str = "", phone: str = ""
) -> CustomerProfile:
    """A new person signs up: a user that logs in by e-mail, with a customer profile."""
    email = User.objects.normalize_email(email or "").strip().lower()
    taken = ValidationError({"email": _("An account with this e-mail address already exists.")})
    if User.objects.filter(email__iexact=email).exists():
        raise taken
    validate_password(password, User(email=email, name=name))
    try:
        user = User.objects.create_user(email=email, password=password, name=name.strip())
    except IntegrityError as exc:
        # The e-mail (the user's only unique column) was taken after the check above, by a
        # request not yet committed then: the other submit of a double tap on "sign up".
        raise taken from exc
    return CustomerProfile.objects.create(user=user, phone=phone.strip())


WALKUP_EMAIL = "walk-up@guest.o2o.invalid"


def walkup_customer() -> CustomerProfile:
    """The one customer a walk-up buyer without an account (a guest paying at the cart, a cash
    sale) is recorded as: a user that can't sign in (inactive, no usable password). Their order is
    theirs through the signed link their phone keeps, never through this account; a receipt goes
    to Order.receipt_email when they gave one."""
    from django.contrib.auth import get_user_model

    user, created = get_user_model().objects.get_or_create(
        email=WALKUP_EMAIL, defaults={"name": "Walk-up", "is_active": False}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return customer_profile_get_or_create(user=user)


def customer_profile_get_or_create(*, user: "AccountUser") -> CustomerProfile:
    profile, _created = CustomerProfile.objects.get_or_create(user=user)
    return profile


@transaction.atomic
def address_create(
    *,
    customer: CustomerProfile,
    label: str,
    line1: str,
    lat: float,
    lng: float,
    line2: str = "",
    postal_code: str = "",
    is_default: bool = False,
    area_vendor_id: int | None = None,
) -> Address:
    """A customer's new address. With `area_vendor_id` (an address typed at checkout) it must lie
    in that vendor's delivery area: refused on the location, before anything is written."""
    # Lock the customer first: two addresses saved at once (a double tap, two tabs) would both be
    # "the first" and both try to be the default, and the slower would break the one-default
    # index. The lock makes the second wait and then see the first.
    list(CustomerProfile.objects.select_for_update().filter(pk=customer.pk).values_list("pk"))
    validate_lat_lng(lat, lng)
    if not line1.strip():
        raise ValidationError({"line1": _("Enter the address.")})
    if area_vendor_id is not None and not in_vendor_area(
        vendor_id=area_vendor_id, lat=lat, lng=lng
    ):
        raise ValidationError({"lat": _("This place is outside the area this vendor delivers to.")})
    first = not customer.addresses.exists()
    if is_default or first:
        customer.addresses.filter(is_default=True).update(is_default=False)
    address = Address(
        customer=customer,
        label=label.strip() or pgettext("address label", "Home"),
        line1=line1.strip(),
        line2=line2.strip(),
        postal_code=postal_code.strip(),
        lat=lat,
        lng=lng,
        is_default=is_default or first,
    )
    address.full_clean(exclude=["cell"])
    address.save()
    return address


# --- favourite carts ------------------------------------------------------------------------------

FAVOURITE_NEAR_EMAIL = "customers.favourite_near_email"


def _favourable_vendor(vendor_id: int) -> Vendor:
    """A vendor the public sees (approved): one that is not is "no such vendor" (NotAllowed)."""
    vendor = Vendor.objects.filter(pk=vendor_id, status=Vendor.Status.APPROVED).first()
    if vendor is None:
        raise NotAllowed(_("No such vendor."))
    return vendor


@transaction.atomic
def favourite_add(*, customer: CustomerProfile, vendor_id: int) -> FavouriteVendor:
    """Keep a cart among the customer's favourites. Adding it again changes nothing (a double tap,
    two tabs): the one row is returned."""
    vendor = _favourable_vendor(vendor_id)
    favourite, _created = FavouriteVendor.objects.get_or_create(customer=customer, vendor=vendor)
    return favourite


@transaction.atomic
def favourite_remove(*, customer: CustomerProfile, vendor_id: int) -> bool:
    """No longer a favourite (and no more near notices). False when it was not one."""
    deleted, _rows = FavouriteVendor.objects.filter(customer=customer, vendor_id=vendor_id).delete()
    return bool(deleted)


@transaction.atomic
def favourite_notify_set(
    *, customer: CustomerProfile, vendor_id: int, notify_near: bool
) -> FavouriteVendor:
    """Turn "tell me when it is near" on or off for one of the customer's favourites (a cart
    that is not one is NotAllowed: the customer adds it first)."""
    changed = FavouriteVendor.objects.filter(customer=customer, vendor_id=vendor_id).update(
        notify_near=notify_near
    )
    if not changed:
        raise NotAllowed(_("This cart is not among your favourites."))
    return FavouriteVendor.objects.select_related("vendor").get(
        customer=customer, vendor_id=vendor_id
    )


@transaction.atomic
def favourite_near_notice_add(
    *,
    favourite_id: int,
    shift_started_at: datetime,
    address_label: str,
    distance_m: int,
) -> bool:
    """Record that a favourite cart came near during the shift that started at
    `shift_started_at`, and its e-mail (a durable effect, in the same transaction). At most once
    per (favourite, shift): a second call, or a concurrent one, writes nothing and returns False.
    Nothing is written when the customer turned the notices off meanwhile."""
    if not FavouriteVendor.objects.filter(pk=favourite_id, notify_near=True).exists():
        return False
    notice, created = FavouriteNearNotice.objects.get_or_create(
        favourite_id=favourite_id,
        shift_started_at=shift_started_at,
        defaults={"address_label": address_label[:40], "distance_m": max(0, int(distance_m))},
    )
    if created:
        effect_add(
            kind=FAVOURITE_NEAR_EMAIL,
            key=f"favourite-near:{notice.pk}",
            payload={"notice_id": notice.pk},
        )
    return created
