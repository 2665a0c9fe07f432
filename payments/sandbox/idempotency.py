"""Idempotency-Key handling for the sandbox API's POSTs.

Same key and same request (method, path, JSON body) → the stored answer, replayed. Same key and a
different request → 409. The key row is inserted in the same transaction as the work, so a second
request with the key waits on the unique index until the first commits, then replays its answer:
two concurrent requests with one key do the work once. Like real providers, only a successful
answer is remembered; a refused request (4xx) leaves no trace and may be retried with the same key.
"""

import hashlib
import json
from collections.abc import Callable
from functools import wraps

from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse

from .models import SandboxIdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _fingerprint(request: HttpRequest) -> str:
    try:
        body = json.dumps(json.loads(request.body or b"{}"), sort_keys=True).encode()
    except ValueError:
        body = request.body
    return hashlib.sha256(f"{request.method} {request.path}\n".encode() + body).hexdigest()


def _replay(record: SandboxIdempotencyKey) -> JsonResponse:
    response = JsonResponse(record.response_body, status=record.response_status, safe=False)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> JsonResponse:
        key = request.headers.get(HEADER, "").strip()
        if request.method != "POST" or not key:
            return view(request, *args, **kwargs)
        if len(key) > MAX_KEY_LENGTH:
            return error("invalid_request", "Idempotency-Key is too long.", 400)
        fingerprint = _fingerprint(request)
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = SandboxIdempotencyKey.objects.create(
                        key=key, method=request.method, path=request.path, fingerprint=fingerprint
                    )
            except IntegrityError:
                record = SandboxIdempotencyKey.objects.get(key=key)
                if record.fingerprint != fingerprint:
                    return error(
                        "idempotency_key_reused",
                        "This Idempotency-Key was used with another request.",
                        409,
                    )
                return _replay(record)
            response = view(request, *args, **kwargs)
            if response.status_code >= 300:
                transaction.set_rollback(True)
                return response
            record.response_status = response.status_code
            record.response_body = json.loads(response.content)
            record.save(update_fields=["response_status", "response_body"])
            return response

    return wrapper
