from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from o2o.geo import cell_of


class CustomerProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer"
    )
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")

    def __str__(self) -> str:
        return str(self.user)


class Address(models.Model):
    customer = models.ForeignKey(
        CustomerProfile, on_delete=models.CASCADE, related_name="addresses"
    )
    label = models.CharField(_("label"), max_length=40, help_text=_("e.g. Home, Office"))
    line1 = models.CharField(_("address"), max_length=200)
    line2 = models.CharField(_("detail (floor, unit)"), max_length=100, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=10, blank=True)
    lat = models.FloatField(_("latitude"))
    lng = models.FloatField(_("longitude"))
    cell = models.CharField(max_length=16, db_index=True, editable=False)
    is_default = models.BooleanField(_("default"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("address")
        verbose_name_plural = _("addresses")
        ordering = ["-is_default", "label"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"], condition=Q(is_default=True), name="one_default_address"
            ),
            models.CheckConstraint(
                condition=Q(lat__gte=-90, lat__lte=90, lng__gte=-180, lng__lte=180),
                name="address_lat_lng_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.line1}"

    def save(self, *args, **kwargs) -> None:
        self.cell = cell_of(self.lat, self.lng)
        super().save(*args, **kwargs)


class FavouriteVendor(models.Model):
    """A cart the customer keeps an eye on; `notify_near` asks to be told (once per shift) when
    the cart's public area comes within FAVOURITE_NEAR_M of one of their saved addresses."""

    customer = models.ForeignKey(
        CustomerProfile, on_delete=models.CASCADE, related_name="favourites"
    )
    vendor = models.ForeignKey(
        "vendors.Vendor", on_delete=models.CASCADE, related_name="favourited_by"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    notify_near = models.BooleanField(_("tell me when it is near"), default=False)

    class Meta:
        verbose_name = _("favourite cart")
        verbose_name_plural = _("favourite carts")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "vendor"], name="favourite_once"),
        ]
        indexes = [
            # The near sweep looks favourites up by the vendors on shift, only those to be told.
            models.Index(
                fields=["vendor"], condition=Q(notify_near=True), name="favourite_notify_near"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer} ♥ {self.vendor}"


class FavouriteNearNotice(models.Model):
    """A favourite cart came near during one shift: at most one per (favourite, shift), which the
    unique constraint guarantees whatever runs the sweep twice. Its e-mail is a durable effect
    written with it."""

    favourite = models.ForeignKey(
        FavouriteVendor, on_delete=models.CASCADE, related_name="near_notices"
    )
    shift_started_at = models.DateTimeField(_("shift started at"))
    address_label = models.CharField(_("near the address"), max_length=40)
    distance_m = models.PositiveIntegerField(_("about (m)"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("favourite-near notice")
        verbose_name_plural = _("favourite-near notices")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["favourite", "shift_started_at"], name="favourite_near_once_per_shift"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.favourite} @ {self.shift_started_at:%Y-%m-%d %H:%M}"
