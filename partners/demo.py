"""The partner point's person in the demo (seed_demo calls this): point@o2o.test works at the
first pickup point and hands orders over on /partner/point/. Idempotent."""

from django.contrib.auth import get_user_model
from django.db import transaction

from vendors.models import PickupPoint

from .models import PointStaff

POINT_STAFF = ("point@o2o.test", "이수진")


@transaction.atomic
def point_staff_seed(*, password: str) -> int:
    """Create the demo point's staff user and role once; the number of users created (0 or 1)."""
    point = PickupPoint.objects.filter(is_active=True).order_by("pk").first()
    if point is None:
        return 0
    email, name = POINT_STAFF
    users = get_user_model()
    user = users.objects.filter(email=email).first()
    new = user is None
    if user is None:
        user = users.objects.create_user(email=email, password=password, name=name)
    PointStaff.objects.get_or_create(user=user, defaults={"pickup_point": point})
    return int(new)
