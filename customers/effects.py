"""What must follow a customer's change, as durable effects (o2o.effects), registered by o2o's app
config (autodiscover_modules("effects")):

    customers.favourite_near_email  a favourite cart came near one of the customer's addresses
                                    (key favourite-near:<notice id>, one per favourite and shift)
"""

from __future__ import annotations

from o2o.effects import effect_handler

from .services import FAVOURITE_NEAR_EMAIL


@effect_handler(
    FAVOURITE_NEAR_EMAIL,
    queue="notifications",
    max_attempts=10,
    backoff_base=30.0,
    backoff_cap=3600.0,
)
def favourite_near_email(payload: dict) -> None:
    from .notifications import favourite_near_email as send

    send(notice_id=payload["notice_id"])
