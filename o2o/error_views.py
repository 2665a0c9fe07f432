"""handler500: what a request gets when a view or middleware raised something unexpected.

A backing service that did not answer (PostgreSQL; Redis or the broker where they are not best-
effort) is a 503 with Retry-After, anything else a 500. On the API (and the other machine-facing
paths) the body is the API's one error shape, {"error": {"code", "message"}}; on the site a static
page that needs no database, no session and no context processor. Django calls handler500 inside
its `except` (asgiref keeps it so in the thread it runs in under ASGI), so the exception is in
sys.exc_info(). With DEBUG on, Django shows its technical page and never calls this.
"""

import logging
import sys

import psycopg2
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.utils.translation import gettext as _
from django.views import defaults
from kombu.exceptions import OperationalError as BrokerUnavailable
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# Paths answered in JSON: our API, the sandbox provider's API, providers' webhooks.
MACHINE_PATHS = ("/api/", "/sandbox/api/", "/payments/webhooks/")
RETRY_AFTER_SECONDS = 5
UNAVAILABLE = (
    OperationalError,
    InterfaceError,
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
    BrokerUnavailable,
)


def is_unavailable(exc: BaseException | None) -> bool:
    """Whether exc, or what it was raised from, is a backing service not answering."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, UNAVAILABLE):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def wants_json(request: HttpRequest) -> bool:
    if request.path_info.startswith(MACHINE_PATHS):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: a path no view answers. On the API, the one error shape (not the site's page)."""
    if request.path_info.startswith(MACHINE_PATHS):
        message = _("Not found.")
        return JsonResponse({"error": {"code": "not_found", "message": message}}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500. Never raises: whatever goes wrong here still gives a plain answer."""
    unavailable = is_unavailable(sys.exc_info()[1])
    try:
        if wants_json(request):
            response = _json(unavailable)
        elif unavailable:
            response = HttpResponse(loader.get_template("503.html").render(), status=503)
        else:
            response = defaults.server_error(request)
    except Exception:
        log.exception("handler500 could not render its answer")
        status = 503 if unavailable else 500
        response = HttpResponse(
            "Service unavailable" if unavailable else "Server error",
            status=status,
            content_type="text/plain; charset=utf-8",
        )
    if unavailable:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _json(unavailable: bool) -> JsonResponse:
    if unavailable:
        code, status = "unavailable", 503
        message = _("The service is briefly unavailable. Please try again in a moment.")
    else:
        code, status = "server_error", 500
        message = _("Something went wrong; try again.")
    return JsonResponse(
        {"error": {"code": code, "message": message}},
        status=status,
        json_dumps_params={"ensure_ascii": False},
    )
