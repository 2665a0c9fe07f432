"""The one call site of every money movement.

For now ledger_record only logs: the double-entry ledger (accounts, balanced entries enforced by the
database) comes with the next issue and will replace this body. Callers stay as they are: it is
called exactly once per movement, inside the transaction that records the movement — on capture
and on each refund that succeeded. Authorising moves no money and is not recorded.
"""

import logging
from typing import Literal

log = logging.getLogger(__name__)

LedgerKind = Literal["capture", "refund"]


def ledger_record(*, payment_id: int, kind: LedgerKind, amount: int, currency: str) -> None:
    """Record one money movement of a payment (amount in minor units, positive)."""
    log.info("ledger: payment %s %s %s %s", payment_id, kind, amount, currency)
