"""The wellbeing check asked for by someone close to a subscriber (issue 15, item 5): a family
member or the district office asks; only the subscriber's consent turns it on.

    wellbeing_request_make   anyone (signed in or not) names the subscriber by e-mail, says who
                             they are and how to reach them. The answer is the same whether the
                             address belongs to a subscriber or not (nothing leaks); a request is
                             stored, and the subscriber e-mailed a link, only when it does and
                             they have a live subscription. Bounded: WELLBEING_REQUESTS_PER_DAY per
                             subscriber and per asker's e-mail, extra ones silently dropped.
    wellbeing_request_answer the subscriber, signed in, agrees for one of their subscriptions (the
                             check turns on with the asker as the contact, consent recorded now)
                             or declines; once, guarded in SQL, within WELLBEING_REQUEST_DAYS. The
                             asker is told by e-mail when the subscriber agrees (never of a "no").
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import CustomerProfile
from o2o.effects import effect_add
from o2o.errors import Conflict, DomainError, NotAllowed

from .models import Subscription, WellbeingRequest

EMAIL = "subscription.wellbeing_request_email"
LIVE = (Subscription.Status.ACTIVE, Subscription.Status.PAUSED)
R = WellbeingRequest.Status


def _clean_email(value: str, field: str) -> str:
    value = (value or "").strip()
    try:
        validate_email(value)
    except ValidationError as exc:
        raise DomainError(_("Enter a valid e-mail address."), code=field) from exc
    return value


@transaction.atomic
def wellbeing_request_make(
    *,
    subscriber_email: str,
    requester_name: str,
    requester_email: str,
    relation: str,
    message: str = "",
) -> WellbeingRequest | None:
    """Ask a subscriber for the wellbeing check. Returns the request, or None when nothing was
    stored (no such subscriber, no live subscription, or over the day's limit): callers answer the
    asker the same either way."""
    subscriber_email = _clean_email(subscriber_email, "subscriber_email")
    requester_email = _clean_email(requester_email, "requester_email")
    requester_name = (requester_name or "").strip()
    if not requester_name:
        raise DomainError(_("Say who you are."), code="requester_name")
    if relation not in WellbeingRequest.Relation.values:
        raise DomainError(_("Choose how you know them."), code="relation")
    if subscriber_email.lower() == requester_email.lower():
        raise DomainError(
            _("Subscribers turn the check on themselves, on their subscription's page."),
            code="subscriber_email",
        )
    customer = CustomerProfile.objects.filter(user__email__iexact=subscriber_email).first()
    if customer is None or not customer.subscriptions.filter(status__in=LIVE).exists():
        return None
    since = timezone.now() - timedelta(days=1)
    limit = settings.WELLBEING_REQUESTS_PER_DAY
    recent = WellbeingRequest.objects.filter(created_at__gte=since)
    if (
        recent.filter(customer=customer).count() >= limit
        or recent.filter(requester_email__iexact=requester_email).count() >= limit
    ):
        return None
    request = WellbeingRequest.objects.create(
        customer=customer,
        token=uuid.uuid4(),
        requester_name=requester_name[:100],
        requester_email=requester_email,
        relation=relation,
        message=(message or "").strip()[:300],
    )
    effect_add(
        kind=EMAIL,
        key=f"wellbeing_request:{request.pk}:ask",
        payload={"request_id": request.pk, "what": "ask"},
    )
    return request


def wellbeing_request_for(*, token: uuid.UUID, customer: CustomerProfile) -> WellbeingRequest:
    """The subscriber's own request by its token; anyone else's is "no such request"."""
    request = WellbeingRequest.objects.filter(token=token, customer=customer).first()
    if request is None:
        raise NotAllowed(_("No such request."), code="not_found")
    return request


def expired(request: WellbeingRequest) -> bool:
    return request.created_at < timezone.now() - timedelta(days=settings.WELLBEING_REQUEST_DAYS)


@transaction.atomic
def wellbeing_request_answer(
    *,
    token: uuid.UUID,
    customer: CustomerProfile,
    agree: bool,
    subscription_id: int | None = None,
) -> WellbeingRequest:
    """The subscriber's answer, once. Agreeing needs one of their live subscriptions: its check
    turns on with the asker as the contact, the consent recorded now."""
    request = wellbeing_request_for(token=token, customer=customer)
    if request.status != R.PENDING:
        raise Conflict(_("You have answered this request already."))
    if expired(request):
        raise Conflict(_("This request has expired. Ask them to send it again."))
    now = timezone.now()
    fields: dict = {"status": R.DECLINED, "decided_at": now}
    if agree:
        subscription = (
            Subscription.objects.filter(
                pk=subscription_id, customer=customer, status__in=LIVE
            ).first()
            if subscription_id is not None
            else None
        )
        if subscription is None:
            raise DomainError(_("Choose one of your subscriptions."), code="subscription_id")
        Subscription.objects.filter(pk=subscription.pk, status__in=LIVE).update(
            wellbeing_check=True,
            wellbeing_contact_name=request.requester_name,
            wellbeing_contact_email=request.requester_email,
            wellbeing_consent_at=now,
        )
        fields.update(status=R.ACCEPTED, subscription=subscription)
    answered = WellbeingRequest.objects.filter(pk=request.pk, status=R.PENDING).update(**fields)
    if not answered:
        raise Conflict(_("You have answered this request already."))
    if agree:
        effect_add(
            kind=EMAIL,
            key=f"wellbeing_request:{request.pk}:answer",
            payload={"request_id": request.pk, "what": "answer"},
        )
    return WellbeingRequest.objects.get(pk=request.pk)
