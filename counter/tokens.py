"""The signed codes of the cart's counter (issue 16, item 1). Both are django.core.signing values
with their own salt, dated, so a forged, altered or old one is refused without a database read.

- The cart's QR (`cart_token_make`): the vendor's phone shows it while on shift; it is remade every
  COUNTER_QR_ROTATE_SECONDS and accepted for COUNTER_QR_MAX_AGE seconds, so a photo of it is
  useless a minute later. Scanning it gives the phone a pass to that cart's counter for
  COUNTER_PASS_MINUTES (counter.views), not the code itself.
- A basket the vendor made (`basket_token_make`): the products and quantities, and a nonce that is
  the order's checkout token (uuid5 of it), so a basket is paid once, by one buyer; accepted for
  COUNTER_BASKET_MINUTES.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core import signing
from django.utils.translation import gettext as _

from o2o.errors import DomainError

CART_SALT = "counter.cart"
BASKET_SALT = "counter.basket"
MAX_TOKEN = 600  # a basket of 20 lines is about 300 characters; anything longer is not ours
MAX_BASKET_LINES = 20
BASKET_NAMESPACE = uuid.UUID("6b1f4f7e-2f59-4c59-9a5e-3b7b2f1c9d10")


class CounterCodeInvalid(DomainError):
    """A scanned counter code that is not ours (code "forged") or too old ("expired")."""


@dataclass(frozen=True)
class Basket:
    vendor_id: int
    items: dict[int, int]  # product id -> quantity
    nonce: str

    @property
    def checkout_token(self) -> uuid.UUID:
        """The order's checkout token: one order per basket, whoever pays first."""
        return uuid.uuid5(BASKET_NAMESPACE, self.nonce)


def _token_of(text: str) -> str:
    text = (text or "").strip()
    if "/" in text:
        text = urlsplit(text).path.rstrip("/").rsplit("/", 1)[-1]
    return unquote(text)


def _load(text: str, *, salt: str, max_age: int) -> object:
    token = _token_of(text)
    forged = CounterCodeInvalid(
        _("This QR code is not one of our carts' codes. Scan the code on the vendor's phone."),
        code="forged",
    )
    if not token or len(token) > MAX_TOKEN:
        raise forged
    try:
        return signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise CounterCodeInvalid(
            _("This QR code has expired. Scan the code the vendor's phone shows now."),
            code="expired",
        ) from exc
    except signing.BadSignature as exc:
        raise forged from exc


def cart_token_make(*, vendor_id: int) -> str:
    return signing.dumps(vendor_id, salt=CART_SALT, compress=False)


def cart_token_read(text: str) -> int:
    """The vendor a scanned cart code names, or CounterCodeInvalid."""
    value = _load(text, salt=CART_SALT, max_age=settings.COUNTER_QR_MAX_AGE)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CounterCodeInvalid(_("This QR code is not one of our carts' codes."), code="forged")
    return value


def basket_token_make(*, vendor_id: int, items: dict[int, int]) -> str:
    lines = [[int(pid), int(qty)] for pid, qty in sorted(items.items())]
    return signing.dumps(
        {"v": vendor_id, "i": lines, "n": uuid.uuid4().hex}, salt=BASKET_SALT, compress=True
    )


def basket_token_read(text: str) -> Basket:
    value = _load(text, salt=BASKET_SALT, max_age=settings.COUNTER_BASKET_MINUTES * 60)
    forged = CounterCodeInvalid(_("This QR code is not one of our carts' codes."), code="forged")
    match value:
        case {"v": int(vendor_id), "i": list(lines), "n": str(nonce)} if (
            0 < len(lines) <= MAX_BASKET_LINES
        ):
            items: dict[int, int] = {}
            for line in lines:
                match line:
                    case [int(pid), int(qty)] if qty > 0 and pid not in items:
                        items[pid] = qty
                    case _:
                        raise forged
            return Basket(vendor_id=vendor_id, items=items, nonce=nonce)
    raise forged
