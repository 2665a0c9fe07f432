"""The sandbox's webhook signature, as its merchants verify it (like a provider's SDK would).

Header: `Sandbox-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. Several v1
values may appear (while a secret is being rotated); one matching is enough. A signature older or
newer than the tolerance is refused, so a captured delivery can't be replayed later.
"""

import hashlib
import hmac
import re
import time

HEADER = "Sandbox-Signature"
# t: ASCII digits only (str.isdigit() is also true for "²" and "①", which int() can't read), and
# few enough that the tolerance check's float arithmetic can't overflow; that check does the rest.
TIMESTAMP = re.compile(r"[0-9]{1,15}")


class SignatureError(ValueError):
    """The signature is missing, malformed, wrong or outside the time tolerance."""


def compute(*, secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def header_value(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={compute(secret=secret, timestamp=t, body=body)}"


def verify(
    *, secret: str, header: str | None, body: bytes, tolerance: int, now: float | None = None
) -> int:
    """Check the header against the body; return its timestamp or raise SignatureError."""
    if not secret:
        raise SignatureError("no webhook secret is configured")
    if not header:
        raise SignatureError("the signature header is missing")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and TIMESTAMP.fullmatch(value):
            timestamp = int(value)
        elif name == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("the signature header is malformed")
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise SignatureError("the signature timestamp is outside the tolerance")
    expected = compute(secret=secret, timestamp=timestamp, body=body)
    # As bytes: compare_digest refuses str with non-ASCII characters (TypeError).
    if not any(hmac.compare_digest(expected.encode(), c.encode()) for c in candidates):
        raise SignatureError("the signature does not match")
    return timestamp
