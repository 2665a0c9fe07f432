"""How the sandbox shows its records in API answers and webhook bodies (plain JSON values)."""

from .models import (
    SandboxCustomer,
    SandboxIntent,
    SandboxPaymentMethod,
    SandboxPayout,
    SandboxRefund,
    SandboxSetupSession,
)


def refund_data(refund: SandboxRefund) -> dict:
    return {
        "id": refund.id,
        "object": "refund",
        "intent": refund.intent_id,
        "amount": refund.amount,
        "reference": refund.reference,
        "status": refund.status,
        "created": int(refund.created_at.timestamp()),
    }


def intent_data(intent: SandboxIntent) -> dict:
    card = (
        {"id": intent.payment_method_id, "brand": intent.card_brand, "last4": intent.card_last4}
        if intent.card_last4
        else None
    )
    return {
        "id": intent.id,
        "object": "intent",
        "status": intent.status,
        "amount": intent.amount,
        "currency": intent.currency,
        "amount_captured": intent.amount_captured,
        "amount_refunded": intent.amount_refunded,
        "fee": intent.fee,
        "reference": intent.reference,
        "description": intent.description,
        "checkout_url": intent.checkout_url,
        "return_url": intent.return_url,
        "failure_code": intent.failure_code or None,
        "failure_message": intent.failure_message or None,
        # Declined tries so far (each leaves the intent waiting for another card until expires).
        "declines": intent.declines,
        "expires_at": int(intent.expires_at.timestamp()) if intent.expires_at else None,
        "payment_method": card,
        "customer": intent.customer_id,
        "off_session": intent.off_session,
        # Why the last try failed, as a merchant decides on retrying: "hard" (never again with
        # this card), "soft" (try later) or "authentication_required" (the card holder must
        # confirm on checkout_url); None while nothing failed.
        "decline_kind": intent.decline_kind or None,
        "refunds": [refund_data(r) for r in intent.refunds.order_by("created_at", "id")],
        "created": int(intent.created_at.timestamp()),
        "updated": int(intent.updated_at.timestamp()),
    }


def payout_data(payout: SandboxPayout) -> dict:
    return {
        "id": payout.id,
        "object": "payout",
        "status": payout.status,
        "amount": payout.amount,
        "currency": payout.currency,
        "reference": payout.reference,
        "destination": {
            "bank": payout.bank,
            "account_number": payout.account_number,
            "holder": payout.holder,
        },
        "failure_code": payout.failure_code or None,
        "failure_message": payout.failure_message or None,
        "created": int(payout.created_at.timestamp()),
        "updated": int(payout.updated_at.timestamp()),
    }


def customer_data(customer: SandboxCustomer) -> dict:
    return {
        "id": customer.id,
        "object": "customer",
        "reference": customer.reference,
        "email": customer.email,
        "name": customer.name,
        "created": int(customer.created_at.timestamp()),
    }


def payment_method_data(pm: SandboxPaymentMethod) -> dict:
    """A saved card as the merchant sees it: never its number."""
    return {
        "id": pm.id,
        "object": "payment_method",
        "customer": pm.customer_id,
        "card": {
            "brand": pm.brand,
            "last4": pm.last4,
            "exp_month": pm.exp_month,
            "exp_year": pm.exp_year,
        },
        "detached": pm.detached_at is not None,
        "created": int(pm.created_at.timestamp()),
    }


def setup_data(session: SandboxSetupSession) -> dict:
    return {
        "id": session.id,
        "object": "setup_session",
        "customer": session.customer_id,
        "status": session.status,
        "url": session.url,
        "return_url": session.return_url,
        "payment_method": payment_method_data(session.payment_method)
        if session.payment_method
        else None,
        "created": int(session.created_at.timestamp()),
    }
