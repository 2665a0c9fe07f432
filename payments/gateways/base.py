"""The one interface the platform talks to payment providers through.

Every call that changes something at the provider carries an idempotency key chosen by the caller,
so that sending it again (after a timeout, a crash, a race) does it once. Provider answers come back
as the plain values below, with the provider's states mapped onto a small common set.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class IntentStatus(StrEnum):
    PENDING = "pending"  # waiting for the card (or for the card holder's confirmation)
    AUTHORISED = "authorised"
    CAPTURED = "captured"
    VOIDED = "voided"
    FAILED = "failed"


class PayoutState(StrEnum):
    PENDING = "pending"  # accepted, on its way to the bank
    PAID = "paid"
    FAILED = "failed"  # the bank refused it, or sent it back


class GatewayError(Exception):
    """Base of what adapters raise."""


class GatewayUnavailable(GatewayError):
    """No answer in time, the connection failed, or the provider answered with a server error."""


class GatewayRefused(GatewayError):
    """The provider answered and said no (4xx): bad request, wrong state, key reused…"""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class WebhookSignatureError(GatewayError):
    """The webhook's signature is missing, forged or outside the time tolerance, or its body is
    not an event."""


@dataclass(frozen=True)
class ProviderRefund:
    ref: str
    amount: int
    succeeded: bool
    reference: str = ""


@dataclass(frozen=True)
class ProviderIntent:
    ref: str
    status: IntentStatus
    amount: int
    currency: str
    amount_captured: int = 0
    amount_refunded: int = 0
    # What the provider charged for the capture (minor units, its own figure; 0 until captured).
    # The platform bears it: booked as provider_fees when the capture is applied, never refunded.
    fee: int = 0
    checkout_url: str = ""
    failure_code: str = ""
    failure_message: str = ""
    card_brand: str = ""
    card_last4: str = ""
    refunds: tuple[ProviderRefund, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class PayoutDestination:
    bank: str
    account_number: str
    holder: str


@dataclass(frozen=True)
class ProviderPayout:
    ref: str
    status: PayoutState
    amount: int
    currency: str
    reference: str = ""
    failure_code: str = ""
    failure_message: str = ""


class DeclineKind(StrEnum):
    """What kind of no an off-session charge got, which decides whether it is tried again."""

    HARD = "hard"  # never again with this card (stolen, closed, declined outright)
    SOFT = "soft"  # the same card may work later (insufficient funds, issuer unavailable)
    AUTHENTICATION_REQUIRED = "authentication_required"  # the card holder must confirm it


@dataclass(frozen=True)
class ProviderCustomer:
    """The platform's customer at the provider: the owner of saved cards."""

    ref: str
    reference: str = ""


@dataclass(frozen=True)
class ProviderPaymentMethod:
    """A card saved at the provider (its token), as the provider describes it."""

    ref: str
    customer_ref: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    detached: bool = False


@dataclass(frozen=True)
class ProviderSetup:
    """A hosted page that saves a card without charging it. `payment_method` is set once the card
    holder saved one (`succeeded`)."""

    ref: str
    customer_ref: str
    url: str
    succeeded: bool
    payment_method: ProviderPaymentMethod | None = None


@dataclass(frozen=True)
class OffSessionCharge:
    """The outcome of charging a saved card without the card holder. `intent.status` is
    AUTHORISED or CAPTURED when it went through; PENDING otherwise, with intent.failure_code and
    `decline_kind`: HARD or SOFT (the intent waits for another try), or AUTHENTICATION_REQUIRED
    (the card holder confirms on `action_url`, the intent's checkout page)."""

    intent: ProviderIntent
    decline_kind: DeclineKind | None = None

    @property
    def action_url(self) -> str:
        if self.decline_kind == DeclineKind.AUTHENTICATION_REQUIRED:
            return self.intent.checkout_url
        return ""


@dataclass(frozen=True)
class WebhookNotice:
    """What a verified webhook says happened. The platform does not trust the rest of the body:
    it fetches the intent again."""

    event_id: str
    type: str
    intent_ref: str
    payload: dict


class PaymentGateway(ABC):
    name: str

    @abstractmethod
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
        """Ask the provider for a payment the customer then authorises on its checkout page. A
        declined card leaves it waiting for another one (PENDING, with the decline as its
        failure_code) until `expires_at`, when it fails."""

    @abstractmethod
    def get_intent(self, *, ref: str) -> ProviderIntent:
        """The provider's current view of the intent: the truth."""

    @abstractmethod
    def capture(self, *, ref: str, amount: int | None, idempotency_key: str) -> ProviderIntent:
        """Take the authorised money (all of it, or `amount` of it, once)."""

    @abstractmethod
    def void(self, *, ref: str, idempotency_key: str) -> ProviderIntent:
        """Release an authorisation that will not be captured."""

    @abstractmethod
    def refund(
        self, *, ref: str, amount: int, reference: str, idempotency_key: str
    ) -> ProviderRefund:
        """Give back part or all of what was captured."""

    @abstractmethod
    def verify_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> WebhookNotice:
        """Check the signature (and its age) and say what the event is about, or raise
        WebhookSignatureError. `headers` keys are lower case."""

    # --- payouts (money out to a vendor's bank account) ------------------------------------------

    @abstractmethod
    def payout_create(
        self,
        *,
        amount: int,
        currency: str,
        destination: PayoutDestination,
        reference: str,
        idempotency_key: str,
    ) -> ProviderPayout:
        """Send `amount` to the bank account, once per idempotency key (sending again returns the
        same payout). The answer may already be final (PAID, FAILED) or PENDING."""

    @abstractmethod
    def payout_get(self, *, ref: str) -> ProviderPayout:
        """The provider's current view of a payout: the truth."""

    # --- the provider's own records, for reconciliation -----------------------------------------

    @abstractmethod
    def intents_list(
        self, *, created_from: datetime, created_to: datetime
    ) -> Iterator[ProviderIntent]:
        """Every intent the provider created in [created_from, created_to), page after page."""

    @abstractmethod
    def payouts_list(
        self, *, created_from: datetime, created_to: datetime
    ) -> Iterator[ProviderPayout]:
        """Every payout the provider created in [created_from, created_to), page after page."""

    # --- the customer vault: saved cards and off-session charges --------------------------------

    @abstractmethod
    def customer_create(
        self, *, reference: str, email: str, idempotency_key: str
    ) -> ProviderCustomer:
        """A customer at the provider to save cards for, once per idempotency key."""

    @abstractmethod
    def setup_create(
        self, *, customer_ref: str, return_url: str, idempotency_key: str
    ) -> ProviderSetup:
        """A hosted page (ProviderSetup.url) where the card holder saves a card, charging nothing;
        the browser then comes back to return_url (the provider adds the setup's ref)."""

    @abstractmethod
    def setup_get(self, *, ref: str) -> ProviderSetup:
        """The provider's view of a setup: whether a card was saved, and which."""

    @abstractmethod
    def payment_methods_list(self, *, customer_ref: str) -> list[ProviderPaymentMethod]:
        """The customer's saved cards that can still be charged."""

    @abstractmethod
    def payment_method_detach(self, *, ref: str, idempotency_key: str) -> ProviderPaymentMethod:
        """Forget a saved card: it can't be charged any more."""

    @abstractmethod
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
        """Charge a saved card with the card holder absent. With `intent_ref` (an intent whose
        last try was declined) that intent is tried again instead of a new one being created.
        A decline is an answer, not an exception: see OffSessionCharge."""
