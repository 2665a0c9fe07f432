"""Staff actions on an order (support, admin), each with the permission its admin action asks."""

import logging
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from o2o.errors import Forbidden, NotAllowed

from ..models import Order, OrderEvent
from .transitions import _transition

if TYPE_CHECKING:
    from o2o.accounts.models import User

log = logging.getLogger(__name__)
Role = OrderEvent.Role

# --- staff ------------------------------------------------------------------------------------


def _check_staff(actor: object, perm: str) -> None:
    """Staff actions need an active staff account with the permission the matching admin action
    asks for (`perm`), read fresh: either may have been revoked since the actor logged in."""
    from django.contrib.auth import get_user_model

    pk: Any = getattr(actor, "pk", None)
    user = get_user_model().objects.filter(pk=pk, is_active=True, is_staff=True).first()
    if pk is None or user is None:
        raise NotAllowed(_("Only staff can do this."))
    if not user.has_perm(perm):
        raise Forbidden(_("Your staff account may not change orders."))


@transaction.atomic
def order_staff_cancel(*, order_id: int, actor: "User", reason: str) -> Order:
    """Staff cancel an order that was not handed over yet (from any earlier state): the stock goes
    back on the cart and, after commit, the money is returned (void, or refund if captured) and
    the customer and the vendor are told, with the reason."""
    _check_staff(actor, "orders.change_order")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give a reason: the customer and the vendor see it.")})
    return _transition(
        order_id=order_id,
        action="staff_cancel",
        actor=actor,
        role=Role.STAFF,
        reason=reason,
        expires_at=None,
    )


@transaction.atomic
def order_expire_now(*, order_id: int, actor: "User") -> Order:
    """Staff expire an order nobody accepted yet, without waiting for its deadline."""
    _check_staff(actor, "orders.change_order")
    return _transition(
        order_id=order_id,
        action="staff_expire",
        actor=actor,
        role=Role.STAFF,
        reason="expired by staff",
        expires_at=None,
    )
