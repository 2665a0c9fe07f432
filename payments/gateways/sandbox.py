"""The sandbox gateway's adapter: HTTP to settings.SANDBOX_BASE_URL with httpx.

Timeouts: connect PAYMENT_HTTP_CONNECT_TIMEOUT (2 s), read PAYMENT_HTTP_READ_TIMEOUT (5 s). A request
that could not be sent, or that the server dropped or answered 502/503/504, is sent again (up to
PAYMENT_HTTP_RETRIES more times) with the same Idempotency-Key, so the provider does it once. A read
timeout is not retried: the answer is late, not lost, and the caller is told at once.
"""

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

import httpx

from payments.sandbox import signing

from .base import (
    DeclineKind,
    GatewayRefused,
    GatewayUnavailable,
    IntentStatus,
    OffSessionCharge,
    PaymentGateway,
    PayoutDestination,
    PayoutState,
    ProviderCustomer,
    ProviderIntent,
    ProviderPaymentMethod,
    ProviderPayout,
    ProviderRefund,
    ProviderSetup,
    WebhookNotice,
    WebhookSignatureError,
)

log = logging.getLogger(__name__)

STATUSES = {
    "requires_payment_method": IntentStatus.PENDING,
    "requires_action": IntentStatus.PENDING,
    "authorised": IntentStatus.AUTHORISED,
    "captured": IntentStatus.CAPTURED,
    "voided": IntentStatus.VOIDED,
    "failed": IntentStatus.FAILED,
}
RETRY_STATUSES = {502, 503, 504}
RETRY_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


def _refund(data: dict) -> ProviderRefund:
    try:
        return _parse_refund(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GatewayUnavailable(f"the sandbox's refund makes no sense: {exc!r}") from exc


def _intent(data: dict) -> ProviderIntent:
    try:
        return _parse_intent(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GatewayUnavailable(f"the sandbox's intent makes no sense: {exc!r}") from exc


def _parse_refund(data: dict) -> ProviderRefund:
    return ProviderRefund(
        ref=data["id"],
        amount=int(data["amount"]),
        succeeded=data.get("status") == "succeeded",
        reference=data.get("reference") or "",
    )


def _parse_intent(data: dict) -> ProviderIntent:
    card = data.get("payment_method") or {}
    fee = int(data.get("fee") or 0)
    if not 0 <= fee <= int(data.get("amount_captured") or 0):
        raise ValueError(f"a fee of {fee} for what was captured")
    return ProviderIntent(
        ref=data["id"],
        status=STATUSES[data["status"]],
        amount=int(data["amount"]),
        currency=data["currency"],
        amount_captured=int(data.get("amount_captured") or 0),
        amount_refunded=int(data.get("amount_refunded") or 0),
        fee=fee,
        checkout_url=data.get("checkout_url") or "",
        failure_code=data.get("failure_code") or "",
        failure_message=data.get("failure_message") or "",
        card_brand=card.get("brand") or "",
        card_last4=card.get("last4") or "",
        refunds=tuple(_parse_refund(r) for r in data.get("refunds") or ()),
    )


def _parse_payout(data: dict) -> ProviderPayout:
    return ProviderPayout(
        ref=data["id"],
        status=PayoutState(data["status"]),
        amount=int(data["amount"]),
        currency=data["currency"],
        reference=data.get("reference") or "",
        failure_code=data.get("failure_code") or "",
        failure_message=data.get("failure_message") or "",
    )


def _payout(data: dict) -> ProviderPayout:
    try:
        return _parse_payout(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GatewayUnavailable(f"the sandbox's payout makes no sense: {exc!r}") from exc


def _parse_payment_method(data: dict) -> ProviderPaymentMethod:
    card = data["card"]
    return ProviderPaymentMethod(
        ref=data["id"],
        customer_ref=data["customer"],
        brand=card.get("brand") or "",
        last4=card["last4"],
        exp_month=int(card["exp_month"]),
        exp_year=int(card["exp_year"]),
        detached=bool(data.get("detached")),
    )


def _parsed(parse: Callable, data: dict, what: str):  # noqa: ANN202 - whatever `parse` returns
    try:
        return parse(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GatewayUnavailable(f"the sandbox's {what} makes no sense: {exc!r}") from exc


def _parse_setup(data: dict) -> ProviderSetup:
    pm = data.get("payment_method")
    return ProviderSetup(
        ref=data["id"],
        customer_ref=data["customer"],
        url=data["url"],
        succeeded=data["status"] == "succeeded",
        payment_method=_parse_payment_method(pm) if pm else None,
    )


def _parse_charge(data: dict) -> OffSessionCharge:
    intent = _parse_intent(data)
    kind = data.get("decline_kind")
    failed = intent.status in (IntentStatus.PENDING, IntentStatus.FAILED)
    return OffSessionCharge(
        intent=intent, decline_kind=DeclineKind(kind) if failed and kind else None
    )


class SandboxGateway(PaymentGateway):
    name = "sandbox"

    def __init__(
        self,
        *,
        base_url: str,
        secret_key: str,
        webhook_secret: str,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        retries: int = 2,
        webhook_tolerance: int = 300,
        retry_pause: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.webhook_secret = webhook_secret
        self.webhook_tolerance = webhook_tolerance
        self.retries = retries
        self.retry_pause = retry_pause
        self.client = httpx.Client(
            base_url=base_url.rstrip("/") + "/sandbox/api/v1/",
            headers={"Authorization": f"Bearer {secret_key}", "User-Agent": "o2o-platform/1"},
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            transport=transport,
        )

    def _call(
        self, method: str, path: str, *, body: dict | None = None, key: str | None = None
    ) -> dict:
        headers = {"Idempotency-Key": key} if key else {}
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.client.request(method, path, json=body, headers=headers)
            except RETRY_ERRORS as exc:
                if last:
                    raise GatewayUnavailable(f"sandbox unreachable: {exc!r}") from exc
            except httpx.HTTPError as exc:  # read/write/pool timeouts and the rest
                raise GatewayUnavailable(f"sandbox did not answer: {exc!r}") from exc
            else:
                if response.status_code not in RETRY_STATUSES:
                    return self._answer(response)
                if last:
                    raise GatewayUnavailable(f"sandbox answered {response.status_code}")
            log.warning("sandbox %s %s: retrying (attempt %d)", method, path, attempt + 2)
            time.sleep(self.retry_pause * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _answer(response: httpx.Response) -> dict:
        try:
            data = response.json()
        except ValueError as exc:
            raise GatewayUnavailable(f"sandbox answered {response.status_code}, not JSON") from exc
        if response.status_code >= 500:
            raise GatewayUnavailable(f"sandbox answered {response.status_code}")
        if response.status_code >= 400:
            err = (data.get("error") if isinstance(data, dict) else None) or {}
            raise GatewayRefused(
                err.get("code") or "refused",
                err.get("message") or f"HTTP {response.status_code}",
                response.status_code,
            )
        return data

    def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        reference: str,
        description: str,
        return_url: str,
        webhook_url: str,
        idempotency_key: str,
        expires_at: datetime | None = None,
    ) -> ProviderIntent:
        body = {
            "amount": amount,
            "currency": currency,
            "reference": reference,
            "description": description,
            "return_url": return_url,
            "webhook_url": webhook_url,
        }
        if expires_at is not None:
            body["expires_at"] = int(expires_at.timestamp())
        return _intent(self._call("POST", "intents", body=body, key=idempotency_key))

    def get_intent(self, *, ref: str) -> ProviderIntent:
        return _intent(self._call("GET", f"intents/{ref}"))

    def capture(self, *, ref: str, amount: int | None, idempotency_key: str) -> ProviderIntent:
        body = {} if amount is None else {"amount": amount}
        return _intent(self._call("POST", f"intents/{ref}/capture", body=body, key=idempotency_key))

    def void(self, *, ref: str, idempotency_key: str) -> ProviderIntent:
        return _intent(self._call("POST", f"intents/{ref}/void", body={}, key=idempotency_key))

    def refund(
        self, *, ref: str, amount: int, reference: str, idempotency_key: str
    ) -> ProviderRefund:
        body = {"intent": ref, "amount": amount, "reference": reference}
        return _refund(self._call("POST", "refunds", body=body, key=idempotency_key))

    def verify_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> WebhookNotice:
        try:
            signing.verify(
                secret=self.webhook_secret,
                header=headers.get(signing.HEADER.lower()),
                body=body,
                tolerance=self.webhook_tolerance,
            )
        except signing.SignatureError as exc:
            raise WebhookSignatureError(str(exc)) from exc
        try:
            event = json.loads(body)
            obj = event["data"]["object"]
            intent_ref = obj["intent"] if obj.get("object") == "refund" else obj["id"]
            notice = WebhookNotice(
                event_id=str(event["id"]),
                type=str(event["type"]),
                intent_ref=str(intent_ref),
                payload=event,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WebhookSignatureError("the body is not a sandbox event") from exc
        return notice

    def payout_create(
        self,
        *,
        amount: int,
        currency: str,
        destination: PayoutDestination,
        reference: str,
        idempotency_key: str,
    ) -> ProviderPayout:
        body = {
            "amount": amount,
            "currency": currency,
            "reference": reference,
            "destination": {
                "bank": destination.bank,
                "account_number": destination.account_number,
                "holder": destination.holder,
            },
        }
        return _payout(self._call("POST", "payouts", body=body, key=idempotency_key))

    def payout_get(self, *, ref: str) -> ProviderPayout:
        return _payout(self._call("GET", f"payouts/{ref}"))

    def _pages(
        self,
        path: str,
        parse: Callable[[dict], object],
        created_from: datetime,
        created_to: datetime,
    ) -> Iterator:
        params = {"created_from": created_from.isoformat(), "created_to": created_to.isoformat()}
        cursor = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = self._call("GET", path + "?" + str(httpx.QueryParams(query)))
            try:
                rows, cursor = page["data"], page.get("next_cursor")
            except (KeyError, TypeError) as exc:
                raise GatewayUnavailable(f"the sandbox's list makes no sense: {exc!r}") from exc
            for row in rows:
                yield parse(row)
            if not page.get("has_more") or not cursor:
                return

    def intents_list(
        self, *, created_from: datetime, created_to: datetime
    ) -> Iterator[ProviderIntent]:
        return self._pages("intents", _intent, created_from, created_to)

    def payouts_list(
        self, *, created_from: datetime, created_to: datetime
    ) -> Iterator[ProviderPayout]:
        return self._pages("payouts", _payout, created_from, created_to)

    # --- the customer vault ------------------------------------------------------------------

    def customer_create(
        self, *, reference: str, email: str, idempotency_key: str
    ) -> ProviderCustomer:
        body = {"reference": reference, "email": email}
        data = self._call("POST", "customers", body=body, key=idempotency_key)
        return _parsed(
            lambda d: ProviderCustomer(ref=d["id"], reference=d.get("reference") or ""),
            data,
            "customer",
        )

    def setup_create(
        self, *, customer_ref: str, return_url: str, idempotency_key: str
    ) -> ProviderSetup:
        body = {"customer": customer_ref, "return_url": return_url}
        data = self._call("POST", "setup_sessions", body=body, key=idempotency_key)
        return _parsed(_parse_setup, data, "setup session")

    def setup_get(self, *, ref: str) -> ProviderSetup:
        return _parsed(_parse_setup, self._call("GET", f"setup_sessions/{ref}"), "setup session")

    def payment_methods_list(self, *, customer_ref: str) -> list[ProviderPaymentMethod]:
        page = self._call("GET", f"customers/{customer_ref}/payment_methods")
        return _parsed(
            lambda d: [_parse_payment_method(row) for row in d["data"]], page, "card list"
        )

    def payment_method_detach(self, *, ref: str, idempotency_key: str) -> ProviderPaymentMethod:
        data = self._call("POST", f"payment_methods/{ref}/detach", body={}, key=idempotency_key)
        return _parsed(_parse_payment_method, data, "payment method")

    def charge_off_session(
        self,
        *,
        amount: int,
        currency: str,
        customer_ref: str,
        payment_method_ref: str,
        reference: str,
        description: str,
        return_url: str,
        webhook_url: str,
        idempotency_key: str,
        capture: bool = False,
        intent_ref: str = "",
    ) -> OffSessionCharge:
        if intent_ref:
            body: dict = {"payment_method": payment_method_ref, "capture": capture}
            data = self._call(
                "POST", f"intents/{intent_ref}/confirm", body=body, key=idempotency_key
            )
        else:
            body = {
                "amount": amount,
                "currency": currency,
                "customer": customer_ref,
                "payment_method": payment_method_ref,
                "off_session": True,
                "capture": capture,
                "reference": reference,
                "description": description,
                "return_url": return_url,
                "webhook_url": webhook_url,
            }
            data = self._call("POST", "intents", body=body, key=idempotency_key)
        return _parsed(_parse_charge, data, "intent")
