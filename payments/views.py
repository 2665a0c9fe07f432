"""Provider webhooks: POST /payments/webhooks/<provider>/. Thin over services.webhook_receive.

400 for a forged, replayed-too-old or malformed webhook; 200 for a new event and for one already
handled; 404 for a provider we don't have; 503 when the provider could not be asked about it (it
will retry). Never a 500: an unexpected error is logged and answered 503, so the provider retries.
"""

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import services
from .errors import PaymentUnavailable, UnknownProvider, WebhookInvalid

log = logging.getLogger(__name__)


def _error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, provider: str) -> JsonResponse:
    try:
        body = request.body
    except RequestDataTooBig:
        return _error("too_large", "The webhook body is too large.", 400)
    try:
        event = services.webhook_receive(provider=provider, body=body, headers=request.headers)
    except UnknownProvider:
        return _error("not_found", "No such payment provider.", 404)
    except WebhookInvalid as exc:
        return _error("invalid_signature", exc.messages[0], 400)
    except PaymentUnavailable as exc:
        return _error("unavailable", exc.messages[0], 503)
    except Exception:  # noqa: BLE001 - the provider must retry, never see a crash
        log.exception("%s webhook could not be handled", provider)
        return _error("error", "The webhook could not be handled now.", 503)
    return JsonResponse({"received": True, "duplicate": event is None})
