"""The event types a partner endpoint can subscribe to, and the body a partner receives.

Every `order.<status>` (orders.models.Status) is emitted by the order state machine; the rest by
payments (refund.succeeded, payout.paid) and tracking (vendor.on_shift / vendor.off_shift). No
event ever carries an exact position: vendor events name the public H3 cell only.
"""

import json

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from orders.models import Status

OTHER_TYPES: dict[str, object] = {
    "refund.succeeded": _("A refund went through"),
    "payout.paid": _("A payout reached the vendor's bank"),
    "vendor.on_shift": _("A vendor went on shift"),
    "vendor.off_shift": _("A vendor went off shift"),
    "wellbeing.alert": _("A wellbeing check raised a concern (only for the named contact)"),
    "subscription.fee_charged": _("A regular's fee for ending a commitment early was charged"),
    "subscription.fee_refunded": _("A regular's cancellation fee was given back"),
}
EVENT_TYPES: dict[str, object] = {
    **{
        f"order.{value}": format_lazy("{}: {}", _("Order"), label)
        for value, label in Status.choices
    },
    **OTHER_TYPES,
}


def event_type_choices() -> list[tuple[str, str]]:
    return [(code, format_lazy("{} ({})", code, label)) for code, label in EVENT_TYPES.items()]


def event_body(event) -> bytes:
    """The JSON a partner receives for a stored PartnerEvent, as the exact bytes that are signed."""
    body = {
        "id": event.event_id,
        "type": event.type,
        "timestamp": event.occurred_at.isoformat(),
        "sequence": event.sequence,
        "aggregate": {"type": event.aggregate, "id": event.aggregate_id},
        "data": event.data,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
