"""The hand-over QR as inline SVG (segno, pure Python): no image request, no outside service, and
sharp at any size. The link it holds is signed by orders.services.handover_qr."""

import segno
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from .models import Order
from .services import handover_qr_shown, handover_token_make


def handover_url(request: HttpRequest, order: Order) -> str:
    """The absolute link the customer's QR holds (any host of ours will do: only the token counts)."""
    token = handover_token_make(order=order)
    return request.build_absolute_uri(reverse("handover-qr", args=[token]))


def handover_qr(request: HttpRequest, order: Order) -> dict | None:
    """What the order page needs to draw the QR, or None when it isn't shown."""
    if not handover_qr_shown(order):
        return None
    url = handover_url(request, order)
    label = _("QR code for the vendor to scan: hands over order #%(n)s") % {"n": order.pk}
    # Medium error correction: a phone screen with a glare or a crack still scans.
    svg = segno.make(url, error="m").svg_inline(
        scale=1, border=4, omitsize=True, dark="#000", light="#fff", svgclass="qr-svg"
    )
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)
    return {"url": url, "svg": mark_safe(svg)}  # noqa: S308 - segno's own markup and an escaped label
