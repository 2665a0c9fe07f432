"""Vendor positions: the latest one per vendor (exact, private), an append-only history, and the
public approximation (an H3 cell) that is all anyone else ever sees."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Presence(models.TextChoices):
    MOVING = "moving", _("Moving")
    STATIONARY = "stationary", _("Standing still")
    STALE = "stale", _("Not heard from for a while")
    OFFLINE = "offline", _("Offline")


LIVE = Q(on_shift=True) & ~Q(presence="offline")


class VendorPosition(models.Model):
    """The latest state of one vendor on the map. Exact coordinates stay on the server; the public
    sees `public_cell` (H3, PUBLIC_CELL_RES) and, for fan-out, `coarse_cell` (MAP_GROUP_RES)."""

    vendor = models.OneToOneField(
        "vendors.Vendor", on_delete=models.CASCADE, related_name="position", primary_key=True
    )
    on_shift = models.BooleanField(_("on shift"), default=False)
    shift_started_at = models.DateTimeField(null=True, blank=True)
    presence = models.CharField(max_length=10, choices=Presence.choices, default=Presence.OFFLINE)
    lat = models.FloatField(null=True, blank=True)
    lng = models.FloatField(null=True, blank=True)
    accuracy_m = models.FloatField(null=True, blank=True)
    recorded_at = models.DateTimeField(null=True, blank=True, help_text=_("phone's clock"))
    last_ping_at = models.DateTimeField(null=True, blank=True, help_text=_("server's clock"))
    # Where the vendor last stood still from; moving more than STATIONARY_RADIUS_M resets it.
    anchor_lat = models.FloatField(null=True, blank=True)
    anchor_lng = models.FloatField(null=True, blank=True)
    anchor_at = models.DateTimeField(null=True, blank=True)
    public_cell = models.CharField(max_length=16, blank=True)
    coarse_cell = models.CharField(max_length=16, blank=True)
    # A cell the fixes are well inside but the public is not shown yet, and the time it may be
    # (after PUBLIC_CELL_HOLD_S and a random delay); see publication.public_cell_after_fix.
    pending_cell = models.CharField(max_length=16, blank=True)
    pending_due_at = models.DateTimeField(null=True, blank=True)
    last_broadcast_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("vendor position")
        verbose_name_plural = _("vendor positions")
        # Only the columns the public searches by are indexed, and only for vendors on the map:
        # every ping rewrites this row, and an UPDATE that touches no indexed column stays on its
        # page (a HOT update, no index writes). Presence sweeps scan the table, which is small.
        indexes = [
            models.Index(fields=["public_cell"], name="pos_public_cell_live", condition=LIVE),
            models.Index(fields=["coarse_cell"], name="pos_coarse_cell_live", condition=LIVE),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(lat__isnull=True) | Q(lat__gte=-90, lat__lte=90),
                name="pos_lat_range",
            ),
            models.CheckConstraint(
                condition=Q(lng__isnull=True) | Q(lng__gte=-180, lng__lte=180),
                name="pos_lng_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.vendor_id} {self.presence} {self.public_cell}"

    @property
    def is_public(self) -> bool:
        return self.on_shift and self.presence != Presence.OFFLINE and bool(self.public_cell)


class Ping(models.Model):
    """Append-only history of accepted pings, kept for PING_HISTORY_DAYS."""

    # No index of its own: the unique (vendor, recorded_at) serves lookups by vendor.
    vendor = models.ForeignKey(
        "vendors.Vendor", on_delete=models.CASCADE, related_name="pings", db_index=False
    )
    lat = models.FloatField()
    lng = models.FloatField()
    accuracy_m = models.FloatField()
    recorded_at = models.DateTimeField()
    # Indexed by migration 0002: BRIN on PostgreSQL (rows arrive in time order), B-tree elsewhere.
    received_at = models.DateTimeField()
    cell = models.CharField(max_length=16)
    source = models.CharField(max_length=8, default="ws")

    class Meta:
        verbose_name = _("ping")
        verbose_name_plural = _("pings")
        constraints = [
            models.UniqueConstraint(fields=["vendor", "recorded_at"], name="ping_vendor_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.vendor_id}@{self.recorded_at:%H:%M:%S}"


class PingRejectCount(models.Model):
    """How many pings were refused, by day, vendor and reason (counters, not rows per ping)."""

    day = models.DateField()
    vendor = models.ForeignKey("vendors.Vendor", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=24)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("ping rejects")
        verbose_name_plural = _("ping rejects")
        constraints = [
            models.UniqueConstraint(fields=["day", "vendor", "reason"], name="ping_reject_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.vendor_id} {self.reason}: {self.count}"
