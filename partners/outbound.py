"""Talking to a partner's endpoint: the URL check (no SSRF), Standard Webhooks signing, one POST.

A request goes only to http(s) URLs whose host resolves to public addresses (unless
PARTNER_ALLOW_PRIVATE_URLS), and it connects to the very address that was checked (the host name
still goes in the Host header and TLS SNI), so a DNS answer that changes between the check and the
connection (rebinding) can't send it inside. Short timeouts, no redirects, at most ~2 KB of the
answer read.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from django.utils import timezone
from django.utils.translation import gettext as _
from standardwebhooks.webhooks import Webhook

from . import conf

SECRET_PREFIX = "whsec_"
USER_AGENT = "o2o-webhooks/1"


class UnsafeURL(ValueError):
    """The URL is not one we send to (scheme, host, or an address inside our network)."""


def secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(*, secrets_: list[str], msg_id: str, at: datetime, body: bytes) -> str:
    """The `webhook-signature` header: `v1,<base64>` per secret, space-separated (rotation)."""
    return " ".join(Webhook(s).sign(msg_id=msg_id, timestamp=at, data=body) for s in secrets_)


# --- the URL check --------------------------------------------------------------------------------


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def url_check(url: str, *, resolve: bool = True) -> list[str]:
    """Raise UnsafeURL unless `url` is http(s) with a host we may send to. Returns the addresses
    the host resolved to (empty when private addresses are allowed or `resolve` is off)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(_("This is not a valid URL.")) from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(_("Only http and https URLs can receive events."))
    host = parts.hostname
    if not host:
        raise UnsafeURL(_("The URL has no host."))
    if parts.username or parts.password:
        raise UnsafeURL(_("Put no user name or password in the URL; events are signed."))
    if conf.allow_private_urls() or not resolve:
        return []
    try:
        infos = socket.getaddrinfo(
            host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError) as exc:
        raise UnsafeURL(_("The URL's host name does not resolve.")) from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses or not all(_public(a) for a in addresses):
        raise UnsafeURL(
            _("The URL points inside a private network; use a public address for your endpoint.")
        )
    return addresses


# --- one POST -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    started_at: datetime
    duration_ms: int
    status_code: int | None = None
    excerpt: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(*, url: str, msg_id: str, body: bytes, secrets_: list[str]) -> Outcome:
    """POST the signed body to the endpoint. Never raises: a refusal, a timeout or a connection
    error is an Outcome with no status and the error."""
    started_at = timezone.now()
    clock = time.monotonic()

    def outcome(**kwargs) -> Outcome:
        duration = int((time.monotonic() - clock) * 1000)
        return Outcome(started_at=started_at, duration_ms=duration, **kwargs)

    try:
        addresses = url_check(url)
    except UnsafeURL as exc:
        return outcome(error=f"refused: {exc}")
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(started_at.timestamp())),
        "webhook-signature": signature(secrets_=secrets_, msg_id=msg_id, at=started_at, body=body),
    }
    target = httpx.URL(url)
    tries: list[tuple[httpx.URL, dict]] = [(target, {})]
    if addresses:
        # Connect to an address that was checked (the next one if it refuses the connection);
        # name the host in Host and in TLS (SNI and the certificate check).
        headers["host"] = target.netloc.decode("ascii")
        sni = {"sni_hostname": target.raw_host.decode("ascii")}
        tries = [(target.copy_with(host=address), sni) for address in addresses[:3]]
    budget = conf.total_timeout()
    timeout = httpx.Timeout(budget, connect=min(conf.connect_timeout(), budget))
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            for number, (where, extensions) in enumerate(tries, start=1):
                request = client.build_request(
                    "POST", where, headers=headers, content=body, extensions=extensions
                )
                try:
                    response = client.send(request, stream=True)
                    break
                except httpx.ConnectError:
                    if number == len(tries) or time.monotonic() - clock > budget:
                        raise
            try:
                excerpt, cut = _read_some(response, deadline=clock + budget)
            finally:
                response.close()
    except httpx.TimeoutException as exc:
        return outcome(error=f"timeout: {type(exc).__name__}")
    except (httpx.HTTPError, OSError) as exc:
        return outcome(error=f"{type(exc).__name__}: {exc}"[:300])
    return outcome(status_code=response.status_code, excerpt=excerpt, error=cut)


def _read_some(response: httpx.Response, *, deadline: float) -> tuple[str, str]:
    """The start of the answer (RESPONSE_EXCERPT_BYTES at most) within the time budget, and why
    it was cut short ('' if it wasn't). The status alone decides the outcome."""
    limit = conf.RESPONSE_EXCERPT_BYTES
    got = bytearray()
    cut = ""
    try:
        for chunk in response.iter_raw(chunk_size=limit):
            got += chunk
            if len(got) >= limit:
                break
            if time.monotonic() > deadline:
                cut = "the answer took too long; not read to its end"
                break
    except httpx.HTTPError as exc:
        cut = f"the answer was cut short: {type(exc).__name__}"
    return bytes(got[:limit]).decode("utf-8", errors="replace"), cut
