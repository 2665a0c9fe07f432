"""Hand-over by QR (issue 16, item 3). The customer's order page shows, beside the 4-digit code, a
QR of a link on our site, /o/h/<token>/, whose token is the order's id and code signed with our
secret key (django.core.signing, its own salt, dated). The vendor's scanner sends the token back,
and the hand-over goes through order_hand_over with the code from the token: the same guarded edge
and the same attempt limits as a typed code (a token with a code that is no longer right counts as
a wrong try). The QR is the code in another form, so it is shown only where the code is.

Outcomes the vendor can tell apart: a token we did not sign (forged, cut short) or one too old
(HANDOVER_QR_MAX_AGE) is refused with its own message; an order already handed over says so and is
never handed over twice; another vendor's order is "no such order", as for any id that isn't yours.
"""

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core import signing
from django.utils.translation import gettext as _

from o2o.errors import DomainError, NotAllowed
from vendors.models import Vendor

from ..models import Fulfilment, Order, Status
from .transitions import EDGES, InvalidTransition, order_hand_over

HANDOVER_QR_SALT = "orders.handover"
TOKEN_MAX_LENGTH = 200  # a real token is about 70 characters; longer text is not ours
HANDOVER_SOURCES = EDGES["hand_over"][0]


class HandoverTokenInvalid(DomainError):
    """The scanned text is not a hand-over token of ours (code "forged") or is too old
    ("expired"). Nothing was tried: no order is named by a token we can't trust."""


class AlreadyHandedOver(InvalidTransition):
    """The order was handed over before (a replayed QR, a second scan): nothing happens again."""


@dataclass(frozen=True)
class HandoverClaim:
    order_id: int
    code: str


def handover_token_make(*, order: Order) -> str:
    """The signed token for an order's QR, dated now."""
    return signing.dumps([order.pk, order.handover_code], salt=HANDOVER_QR_SALT)


def handover_qr_shown(order: Order) -> bool:
    """Whether the customer's page shows the QR: while the vendor can hand the order over. A
    pickup order is collected at its point, where the staff type the code (they have no scanner)."""
    return order.status in HANDOVER_SOURCES and order.fulfilment != Fulfilment.PICKUP


def _token_of(text: str) -> str:
    """The token in what was scanned or pasted: the whole link, its path, or the token alone."""
    text = (text or "").strip()
    if "/" in text:
        text = urlsplit(text).path.rstrip("/").rsplit("/", 1)[-1]
    return unquote(text)  # a scanner app may have percent-encoded the colons


def handover_token_read(*, text: str) -> HandoverClaim:
    """The order and code a scanned link (or its token) carries, or HandoverTokenInvalid."""
    token = _token_of(text)
    forged = HandoverTokenInvalid(
        _("This QR code is not a hand-over code of ours. Ask the customer to show their order."),
        code="forged",
    )
    if not token or len(token) > TOKEN_MAX_LENGTH:
        raise forged
    try:
        value = signing.loads(token, salt=HANDOVER_QR_SALT, max_age=settings.HANDOVER_QR_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise HandoverTokenInvalid(
            _("This QR code is too old. Ask the customer to open their order page again."),
            code="expired",
        ) from exc
    except signing.BadSignature as exc:
        raise forged from exc
    match value:
        case [int(order_id), str(code)]:
            return HandoverClaim(order_id=order_id, code=code)
    raise forged  # signed by us but not in the shape we write: never trust it


def order_hand_over_by_token(*, text: str, vendor: Vendor) -> Order:
    """The vendor scanned the customer's QR (or pasted its link): hand the order over."""
    claim = handover_token_read(text=text)
    return order_hand_over_checked(order_id=claim.order_id, vendor=vendor, code=claim.code)


def order_hand_over_checked(*, order_id: int, vendor: Vendor, code: str) -> Order:
    """order_hand_over, with the outcomes a scanner shows told apart before any code is tried: no
    such order (another vendor's reads the same), already handed over, not accepted yet, ended."""
    order = Order.objects.filter(pk=order_id, vendor=vendor, placed_at__isnull=False).first()
    if order is None:
        raise NotAllowed(_("No such order."))
    _refuse_unless_open(order)
    try:
        return order_hand_over(order_id=order.pk, vendor=vendor, code=code)
    except InvalidTransition:
        # Two scans at once: the guarded edge let one through; tell the other what happened.
        order.refresh_from_db()
        _refuse_unless_open(order)
        raise


def _refuse_unless_open(order: Order) -> None:
    n = {"n": order.pk}
    if order.handed_over_at is not None:
        raise AlreadyHandedOver(
            _("Order #%(n)s was already handed over. Nothing was done again.") % n,
            code="already_handed_over",
        )
    if order.status == Status.PLACED:
        raise InvalidTransition(
            _("Order #%(n)s is not accepted yet. Accept it first.") % n, code="not_accepted"
        )
    if order.status not in HANDOVER_SOURCES:
        raise InvalidTransition(
            _("Order #%(n)s is no longer open. Don't hand it over.") % n, code="not_open"
        )
