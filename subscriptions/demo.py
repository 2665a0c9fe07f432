"""The demo's regulars (`make demo`'s seed): the demo customer and three neighbours subscribe to
the demo vendor's yakult, each with a card saved on the sandbox; when the vendor still has hours
today, the day's deliveries are made, ordered and charged as the beat would, so the vendor's round
(/round/) has stops on day one; otherwise they are on tomorrow's round (/round/tomorrow/).
Everything goes through the services, the sandbox called in this process. Once only."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlsplit

from django.test import override_settings
from django.utils import timezone

from customers.services import address_create, customer_profile_get_or_create
from payments import vault
from payments.demo import run_effects_now, sandbox_in_process

from .models import Subscription
from .services import ItemIn, subscription_create, subscription_preferences_set

NEIGHBOURS = [
    ("regular1@o2o.test", "이영희", "서울 마포구 망원로 42", 0.0006, 0.0004, "door"),
    ("regular2@o2o.test", "최하늘", "서울 마포구 포은로 31", -0.0005, 0.0008, "tomorrow"),
    ("regular3@o2o.test", "정복순", "서울 마포구 망원로 19", 0.0009, -0.0007, "refund"),
]
CARD_NUMBER = "4242424242424242"


def _save_card(customer: Any) -> None:
    """The customer saves the test card 4242… on the sandbox's setup page (the card holder's step
    done at the sandbox, as its page would), then the platform keeps the card."""
    from payments.sandbox import vault as sandbox_vault

    url = vault.card_setup_start(customer=customer, return_url=vault.cards_page_url())
    setup_id = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    sandbox_vault.setup_complete(setup_id=setup_id, number=CARD_NUMBER, expiry=date(2039, 12, 1))
    vault.card_setup_complete(customer=customer, setup_ref=setup_id)


def regulars_seed(*, vendor: Any, customer: Any, password: str, product: Any) -> int:
    """The demo's regulars (module docstring); the number of subscriptions made (0 when done)."""
    from o2o.accounts.models import User

    from . import delivery as flow

    if Subscription.objects.filter(vendor=vendor).exists():
        return 0
    weekdays = sorted({h.weekday for h in vendor.hours.all()})
    if not weekdays:
        return 0
    people = [(customer, "door")]
    for email, name, line1, dlat, dlng, policy in NEIGHBOURS:
        user = User.objects.filter(email=email).first() or User.objects.create_user(
            email=email, password=password, name=name
        )
        profile = customer_profile_get_or_create(user=user)
        if not profile.addresses.exists():
            address_create(
                customer=profile,
                label="집",
                line1=line1,
                lat=vendor.home_lat + dlat,
                lng=vendor.home_lng + dlng,
            )
        people.append((profile, policy))
    today = timezone.localdate()
    made = 0
    with (
        sandbox_in_process(),
        override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
    ):
        for profile, policy in people:
            if not profile.saved_cards.exists():
                _save_card(profile)
            sub = subscription_create(
                customer=profile,
                vendor=vendor,
                address_id=profile.addresses.order_by("pk").first().pk,
                plan="commit_3m" if made == 1 else "anytime",
                items=[ItemIn(product.pk, 2 if made == 0 else 1)],
                starts_on=today,
                weekdays=weekdays,
                not_at_home_policy=policy,
                card_id=profile.saved_cards.filter(is_default=True).values_list("pk", flat=True)[0],
            )
            if made == 3:  # one who asked for the wellbeing check, with a contact
                subscription_preferences_set(
                    subscription_id=sub.pk,
                    customer=profile,
                    shortage_policy=sub.shortage_policy,
                    not_at_home_policy=sub.not_at_home_policy,
                    wellbeing_check=True,
                    contact_name="정민수",
                    contact_email="son.of.regular3@o2o.test",
                    consent=True,
                )
            made += 1
        # Today's run, as the beat would do it, if the vendor works on
        now = timezone.now()
        if flow.delivery_window(vendor_id=vendor.pk, on=today, now=now) is not None:
            flow.deliveries_prepare(on=today)
            flow.deliveries_place(on=today, now=now)
            run_effects_now()
    return made
