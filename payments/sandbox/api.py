"""The sandbox provider's JSON API, /sandbox/api/v1/. Bearer SANDBOX_SECRET_KEY on every call;
every POST honours an Idempotency-Key. Errors: {"error": {"code": "...", "message": "..."}}.

The customer vault (vault.py): POST customers, GET customers/<id>, GET
customers/<id>/payment_methods, POST payment_methods/<id>/detach, POST setup_sessions (a hosted
page that saves a card, charging nothing), GET setup_sessions/<id>; POST intents with
payment_method and off_session: true charges a saved card at once (a decline is a 201 intent with
failure_code and decline_kind: hard, soft or authentication_required), and POST
intents/<id>/confirm tries a declined one again."""

import hmac
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt

from . import services, vault
from .idempotency import error, idempotent
from .objects import (
    customer_data,
    intent_data,
    payment_method_data,
    payout_data,
    refund_data,
    setup_data,
)
from .services import NUL, SandboxError

MAX_LIST = 100


def _authenticated(request: HttpRequest) -> bool:
    expected = settings.SANDBOX_SECRET_KEY
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(expected) and scheme == "Bearer" and hmac.compare_digest(given, expected)


def endpoint(*methods: str) -> Callable:
    """Authentication, the allowed methods, idempotency (for POSTs) and SandboxError → JSON."""

    def decorate(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
        @wraps(view)
        def guarded(request: HttpRequest, *args, **kwargs) -> JsonResponse:
            try:
                return view(request, *args, **kwargs)
            except SandboxError as exc:
                return error(exc.code, exc.message, exc.status)

        inner = idempotent(guarded)

        @csrf_exempt
        @wraps(view)
        def outer(request: HttpRequest, *args, **kwargs) -> JsonResponse:
            if not _authenticated(request):
                response = error("unauthenticated", "A valid secret key is required.", 401)
                response["WWW-Authenticate"] = 'Bearer realm="sandbox"'
                return response
            if request.method not in methods:
                response = error("method_not_allowed", f"{request.method} is not allowed.", 405)
                response["Allow"] = ", ".join(methods)
                return response
            if NUL in request.path:
                # An id with a NUL names nothing: the view answers 404. Not through idempotency,
                # which would store the path (PostgreSQL refuses NUL in text) for an answer it
                # would not remember anyway.
                return guarded(request, *args, **kwargs)
            return inner(request, *args, **kwargs)

        return outer

    return decorate


def _body(request: HttpRequest) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise SandboxError("invalid_request", "The body must be JSON.") from exc
    if not isinstance(data, dict):
        raise SandboxError("invalid_request", "The body must be a JSON object.")
    return data


def _time(value: str, name: str = "since") -> datetime:
    try:
        # ASCII digits only: str.isdigit() is also true for "²", which int() can't read.
        if re.fullmatch(r"[0-9]+", value):
            return datetime.fromtimestamp(int(value), tz=UTC)  # too big: OverflowError, OSError
        parsed = parse_datetime(value)
    except (OverflowError, OSError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise SandboxError("invalid_request", f"{name} must be unix seconds or an ISO 8601 time.")
    return parsed


def _list_args(request: HttpRequest) -> dict:
    """The paging and filtering arguments every list takes: created_from, created_to (unix
    seconds or ISO 8601 with a zone, created_to excluded), cursor (the next_cursor of the previous
    page), limit (at most 100) and reference."""
    try:
        limit = min(int(request.GET.get("limit", MAX_LIST)), MAX_LIST)
    except ValueError as exc:
        raise SandboxError("invalid_request", "limit must be a number.") from exc
    args = {
        "reference": request.GET.get("reference") or None,
        "cursor": request.GET.get("cursor") or None,
        "limit": max(limit, 1),
    }
    for name in ("created_from", "created_to"):
        value = request.GET.get(name)
        args[name] = _time(value, name) if value else None
    return args


def _list(rows: list, has_more: bool, render: Callable) -> JsonResponse:
    return JsonResponse(
        {
            "object": "list",
            "data": [render(r) for r in rows],
            "has_more": has_more,
            "next_cursor": rows[-1].id if has_more and rows else None,
        }
    )


@endpoint("GET", "POST")
def intents(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        return _intent_create(request)
    since = request.GET.get("since")
    rows, has_more = services.intents_list(
        since=_time(since) if since else None, **_list_args(request)
    )
    return _list(rows, has_more, intent_data)


def _intent_create(request: HttpRequest) -> JsonResponse:
    data = _body(request)
    if data.get("payment_method") is not None:
        return _intent_create_off_session(request, data)
    intent = services.intent_create(
        amount=data.get("amount"),
        currency=data.get("currency"),
        reference=data.get("reference"),
        description=data.get("description"),
        return_url=data.get("return_url"),
        webhook_url=data.get("webhook_url"),
        expires_at=data.get("expires_at"),
        checkout_base=f"{request.scheme}://{request.get_host()}",
    )
    return JsonResponse(intent_data(intent), status=201)


@endpoint("GET")
def intent_detail(request: HttpRequest, intent_id: str) -> JsonResponse:
    intent, delay = services.intent_fetch(intent_id=intent_id)
    body = intent_data(intent)
    if delay:
        time.sleep(delay)  # the slow test card: answer later than the merchant waits
    return JsonResponse(body)


@endpoint("POST")
def intent_capture(request: HttpRequest, intent_id: str) -> JsonResponse:
    intent = services.intent_capture(intent_id=intent_id, amount=_body(request).get("amount"))
    return JsonResponse(intent_data(intent))


@endpoint("POST")
def intent_void(request: HttpRequest, intent_id: str) -> JsonResponse:
    _body(request)
    return JsonResponse(intent_data(services.intent_void(intent_id=intent_id)))


@endpoint("POST")
def refunds(request: HttpRequest) -> JsonResponse:
    data = _body(request)
    refund = services.refund_create(
        intent_id=data.get("intent"), amount=data.get("amount"), reference=data.get("reference")
    )
    return JsonResponse(refund_data(refund), status=201)


@endpoint("GET", "POST")
def payouts(request: HttpRequest) -> JsonResponse:
    if request.method == "GET":
        rows, has_more = services.payouts_list(**_list_args(request))
        return _list(rows, has_more, payout_data)
    data = _body(request)
    payout = services.payout_create(
        amount=data.get("amount"),
        currency=data.get("currency"),
        destination=data.get("destination"),
        reference=data.get("reference"),
    )
    return JsonResponse(payout_data(payout), status=201)


@endpoint("GET")
def payout_detail(request: HttpRequest, payout_id: str) -> JsonResponse:
    return JsonResponse(payout_data(services.payout_fetch(payout_id=payout_id)))


# --- the customer vault --------------------------------------------------------------------------


def _base(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def _intent_create_off_session(request: HttpRequest, data: dict) -> JsonResponse:
    """POST /intents with payment_method (a saved card) and off_session: true: charged at once.
    A decline is still a 201 with the intent (failure_code, decline_kind), so that an
    Idempotency-Key replays it."""
    intent = vault.intent_create_off_session(
        amount=data.get("amount"),
        currency=data.get("currency"),
        return_url=data.get("return_url"),
        payment_method=data.get("payment_method"),
        customer=data.get("customer"),
        off_session=data.get("off_session"),
        capture=data.get("capture"),
        reference=data.get("reference"),
        description=data.get("description"),
        webhook_url=data.get("webhook_url"),
        checkout_base=_base(request),
    )
    return JsonResponse(intent_data(intent), status=201)


@endpoint("POST")
def intent_confirm(request: HttpRequest, intent_id: str) -> JsonResponse:
    data = _body(request)
    intent = vault.intent_confirm(
        intent_id=intent_id, payment_method=data.get("payment_method"), capture=data.get("capture")
    )
    return JsonResponse(intent_data(intent))


@endpoint("POST")
def customers(request: HttpRequest) -> JsonResponse:
    data = _body(request)
    customer = vault.customer_create(
        reference=data.get("reference"), email=data.get("email"), name=data.get("name")
    )
    return JsonResponse(customer_data(customer), status=201)


@endpoint("GET")
def customer_detail(request: HttpRequest, customer_id: str) -> JsonResponse:
    return JsonResponse(customer_data(vault.customer_get(customer_id=customer_id)))


@endpoint("GET")
def customer_payment_methods(request: HttpRequest, customer_id: str) -> JsonResponse:
    rows = vault.payment_methods_list(customer_id=customer_id)
    return _list(rows, False, payment_method_data)


@endpoint("POST")
def payment_method_detach(request: HttpRequest, payment_method_id: str) -> JsonResponse:
    _body(request)
    pm = vault.payment_method_detach(payment_method_id=payment_method_id)
    return JsonResponse(payment_method_data(pm))


@endpoint("POST")
def setup_sessions(request: HttpRequest) -> JsonResponse:
    data = _body(request)
    session = vault.setup_create(
        customer_id=data.get("customer"),
        return_url=data.get("return_url"),
        checkout_base=_base(request),
    )
    return JsonResponse(setup_data(session), status=201)


@endpoint("GET")
def setup_session_detail(request: HttpRequest, setup_id: str) -> JsonResponse:
    return JsonResponse(setup_data(vault.setup_get(setup_id=setup_id)))
