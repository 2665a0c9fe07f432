"""The vendor's daily round (subscriptions/round.py): paid regular deliveries join it accepted, in
route order from the vendor; one tap per stop, exactly once however often it is replayed, one
outcome when two phones tap the same stop (real PostgreSQL connections); "nobody at home" as the
customer chose; the wellbeing check; tomorrow's round and what to load; the API and the page."""

import threading
import uuid
from datetime import timedelta

import h3
import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from insights.models import SaleRecord
from o2o.effects import effects_run
from o2o.errors import NotAllowed
from o2o.models import Effect
from orders.models import Fulfilment, Order, OrderEvent, Status
from orders.services import Receive, order_accept
from payments.models import Payment
from subscriptions import delivery as flow
from subscriptions.models import Delivery, RoundAction, Subscription, WellbeingFlag
from subscriptions.round import Stop, Tap, _metres, round_act, round_next, round_of, route
from tests.factories import AddressFactory, CustomerProfileFactory
from tests.orders.factories import place_paid
from tests.subscriptions.test_delivery_flow import (
    five_am,
    prepared_and_placed,
    regular,
    stock_of,
    tomorrow,
)
from vendors.models import Vendor

live = pytest.mark.django_db(transaction=True)
OUT = RoundAction.Outcome


def tap(order_id, action="delivered", **kwargs):
    return Tap(client_id=uuid.uuid4(), order_id=order_id, action=action, **kwargs)


def on_round(sub, sandbox_ready=True):
    """A regular's delivery for tomorrow, ordered and paid: its order and the vendor."""
    delivery = prepared_and_placed(sub)
    assert delivery.status == Delivery.Status.ORDERED
    return Order.objects.get(pk=delivery.order_id), sub.vendor


# --- the route (pure) -----------------------------------------------------------------------------


def _stop(order_id, lat, lng, cell=None):
    return Stop(
        order_id=order_id,
        address="",
        lat=lat,
        lng=lng,
        cell=cell or f"c{order_id}",
        lines=[],
        note="",
        window_end=None,
        status="accepted",
    )


def test_the_route_takes_the_nearest_stop_next_from_the_vendor():
    # Stops along a street, east of the vendor, given in a muddled order
    stops = [_stop(i, 37.55, 126.90 + 0.001 * i) for i in (5, 2, 9, 1, 7)]
    ordered = route(stops, start=(37.55, 126.90))
    assert [s.order_id for s in ordered] == [1, 2, 5, 7, 9]
    # Each distance is from the one before (0.001° of longitude here is about 88 m)
    assert 80 <= ordered[0].distance_m <= 95
    assert 250 <= ordered[2].distance_m <= 280
    # From the other end of the street, the other way round
    back = route([_stop(i, 37.55, 126.90 + 0.001 * i) for i in (5, 2, 9)], start=(37.55, 126.92))
    assert [s.order_id for s in back] == [9, 5, 2]
    assert route([], start=None) == []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(37.50, 37.60), st.floats(126.85, 126.95), st.integers(0, 5)),
        min_size=1,
        max_size=40,
    ),
    st.tuples(st.floats(37.50, 37.60), st.floats(126.85, 126.95)),
)
def test_the_route_visits_every_stop_once_and_starts_with_the_nearest(points, start):
    stops = [_stop(i, lat, lng, cell=f"c{c}") for i, (lat, lng, c) in enumerate(points)]
    ordered = route(list(stops), start=start)
    # Every stop once
    assert sorted(s.order_id for s in ordered) == list(range(len(points)))
    # The first is the nearest to the vendor (to a metre's rounding)
    nearest = min(stops, key=lambda s: _metres(start, (s.lat, s.lng)))
    assert ordered[0].distance_m <= round(_metres(start, (nearest.lat, nearest.lng))) + 1
    # Stops sharing a cell are consecutive
    runs = [s.cell for s in ordered]
    seen_done = set()
    for i, cell in enumerate(runs):
        if i and runs[i - 1] != cell:
            assert cell not in seen_done
            seen_done.add(runs[i - 1])


def test_doors_in_one_cell_are_taken_one_after_another():
    # Two doors in one block (same cell), a third stop between the vendor and the second door
    a = _stop(1, 37.5500, 126.9010, cell="block")
    b = _stop(2, 37.5500, 126.9030, cell="block")
    c = _stop(3, 37.5500, 126.9020, cell="other")
    ordered = route([c, b, a], start=(37.55, 126.90))
    assert [s.order_id for s in ordered] == [1, 2, 3]


# --- regulars on the round ------------------------------------------------------------------------


@live
def test_a_paid_regular_delivery_is_accepted_and_on_that_days_round(sandbox):
    sub, product = regular()
    order, vendor = on_round(sub)
    # Then it is accepted by the system (nobody taps "accept" for a regular)
    assert order.status == Status.ACCEPTED and order.eta == order.window_end
    assert OrderEvent.objects.filter(order=order, to_status=Status.ACCEPTED, role="system").exists()
    # And on tomorrow's round, not today's, with what to hand over
    assert round_of(vendor=vendor, day=timezone.localdate()).stops == []
    result = round_of(vendor=vendor, day=tomorrow(), language="en")
    [stop] = result.stops
    assert stop.order_id == order.pk and stop.subscription_id == sub.pk
    assert stop.lines == [(product.name_en, 2)] and not stop.needs_code
    assert stop.address == order.delivery_address and result.items == {product.name_en: 2}


@live
def test_delivered_hands_over_once_however_often_the_tap_is_replayed(sandbox):
    sub, _product = regular()
    order, vendor = on_round(sub)
    once = tap(order.pk)
    first = round_act(vendor=vendor, tap=once)
    again = round_act(vendor=vendor, tap=once)
    assert first.pk == again.pk and first.outcome == OUT.DELIVERED and first.applied
    order.refresh_from_db()
    assert order.status in (Status.HANDED_OVER, Status.COMPLETED)
    assert OrderEvent.objects.filter(order=order, to_status=Status.HANDED_OVER).count() == 1
    assert RoundAction.objects.count() == 1
    # The money is captured at the handover, as for any order
    assert Payment.objects.get(order_id=order.pk).status == Payment.Status.CAPTURED
    # And once completed, the record has it as a regular's, once, at the door's public cell
    effects_run()
    sold = SaleRecord.objects.filter(order_id=order.pk)
    assert [(r.channel, r.kind, r.units) for r in sold] == [("regular", "sale", 2)]
    assert sold[0].cell == h3.latlng_to_cell(order.delivery_lat, order.delivery_lng, 9)
    # The stop has left the round and is among the done
    result = round_of(vendor=vendor, day=tomorrow())
    assert result.stops == [] and [a.pk for a in result.done] == [first.pk]


@live
def test_two_phones_tapping_the_same_stop_resolve_to_one_outcome(sandbox):
    sub, _product = regular(not_at_home_policy=Subscription.NotAtHome.REFUND)
    order, vendor = on_round(sub)
    barrier = threading.Barrier(2)
    results, errors = {}, []

    def phone(name, action):
        try:
            barrier.wait()
            results[name] = round_act(
                vendor=Vendor.objects.get(pk=vendor.pk), tap=tap(order.pk, action)
            )
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=phone, args=("a", "delivered")),
        threading.Thread(target=phone, args=("b", "not_home")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    outcomes = sorted(r.outcome for r in results.values())
    applied = [r for r in results.values() if r.applied]
    # One tap applied, the other recorded as superseded by it
    assert len(applied) == 1 and OUT.SUPERSEDED in outcomes
    loser = next(r for r in results.values() if not r.applied)
    order.refresh_from_db()
    if applied[0].outcome == OUT.DELIVERED:
        assert order.status in (Status.HANDED_OVER, Status.COMPLETED)
    else:
        assert applied[0].outcome == OUT.REFUNDED and order.status == Status.CANCELLED
    assert loser.detail in (applied[0].outcome, order.status) or "no longer" in loser.detail
    assert RoundAction.objects.filter(order=order, applied=True).count() == 1


@pytest.mark.parametrize(
    "policy,outcome,status",
    [
        (Subscription.NotAtHome.LEAVE_AT_DOOR, OUT.LEFT_AT_DOOR, Status.HANDED_OVER),
        (Subscription.NotAtHome.REFUND, OUT.REFUNDED, Status.CANCELLED),
    ],
)
@live
def test_nobody_at_home_does_what_the_customer_chose(sandbox, policy, outcome, status):
    sub, product = regular(not_at_home_policy=policy)
    order, vendor = on_round(sub)
    done = round_act(vendor=vendor, tap=tap(order.pk, "not_home"))
    assert done.outcome == outcome and done.applied
    order.refresh_from_db()
    if status == Status.HANDED_OVER:
        assert order.status in (Status.HANDED_OVER, Status.COMPLETED)
        handed = OrderEvent.objects.get(order=order, to_status=Status.HANDED_OVER)
        assert "left at the door" in handed.reason and handed.role == "vendor"
    else:
        assert order.status == Status.CANCELLED
        # The held money goes back, the stock back on the cart
        assert Payment.objects.get(order_id=order.pk).status in (
            Payment.Status.VOIDED,
            Payment.Status.REFUNDED,
        )
        assert stock_of(product) == 10
    told = [m for m in mail.outbox if "nobody was at home" in m.body]
    assert len(told) == 1 and sub.customer.user.email in told[0].to


@live
def test_nobody_at_home_try_tomorrow_moves_the_stop_to_the_next_round_once(sandbox):
    sub, _product = regular(not_at_home_policy=Subscription.NotAtHome.TRY_TOMORROW)
    order, vendor = on_round(sub)
    first = round_act(vendor=vendor, tap=tap(order.pk, "not_home"))
    assert first.outcome == OUT.RETRY_TOMORROW
    order.refresh_from_db()
    day_after = tomorrow() + timedelta(days=1)
    assert order.status == Status.ACCEPTED
    assert timezone.localtime(order.window_start).date() == day_after
    assert Payment.objects.get(order_id=order.pk).status == Payment.Status.AUTHORISED
    assert order.pk in [s.order_id for s in round_of(vendor=vendor, day=day_after).stops]
    # Nobody home the second time either: refunded, not moved again
    second = round_act(vendor=vendor, tap=tap(order.pk, "not_home"))
    assert second.outcome == OUT.REFUNDED
    assert Order.objects.get(pk=order.pk).status == Status.CANCELLED


@live
def test_a_one_off_delivery_needs_the_customers_code():
    sub, product = regular(number=None)
    vendor = sub.vendor
    customer = CustomerProfileFactory()
    address = AddressFactory(customer=customer)
    start = five_am(tomorrow()) + timedelta(hours=3)
    order = place_paid(
        customer=customer,
        vendor=vendor,
        items=[(product, 1)],
        receive=Receive(
            fulfilment=Fulfilment.DELIVERY,
            address_id=address.pk,
            window_start=start,
            window_end=start + timedelta(hours=2),
        ),
        now=five_am(tomorrow()),
    )
    order_accept(order_id=order.pk, vendor=vendor, eta_minutes=30)
    [stop] = round_of(vendor=vendor, day=tomorrow()).stops
    assert stop.needs_code and stop.subscription_id is None
    # Without the code: refused, nothing changed; the stop stays on the round
    refused = round_act(vendor=vendor, tap=tap(order.pk, code="0000"))
    assert refused.outcome == OUT.REFUSED and not refused.applied and refused.detail
    assert Order.objects.get(pk=order.pk).status == Status.ACCEPTED
    # With it: delivered
    order.refresh_from_db()
    done = round_act(vendor=vendor, tap=tap(order.pk, code=order.handover_code))
    assert done.outcome == OUT.DELIVERED
    assert Order.objects.get(pk=order.pk).status in (Status.HANDED_OVER, Status.COMPLETED)


@live
def test_another_vendors_stop_is_refused_and_an_id_cannot_be_reused_elsewhere(sandbox):
    sub, _product = regular()
    order, vendor = on_round(sub)
    other, _p = regular(number=None)
    with pytest.raises(NotAllowed):
        round_act(vendor=other.vendor, tap=tap(order.pk))
    assert Order.objects.get(pk=order.pk).status == Status.ACCEPTED
    assert not RoundAction.objects.exists()


# --- the wellbeing check --------------------------------------------------------------------------


def _with_wellbeing(sub):
    Subscription.objects.filter(pk=sub.pk).update(
        wellbeing_check=True,
        wellbeing_contact_name="Kim Minji",
        wellbeing_contact_email="daughter@example.test",
        wellbeing_consent_at=timezone.now(),
    )


@live
def test_a_concern_tells_the_named_contact_and_partners_and_all_well_is_only_recorded(sandbox):
    sub, _product = regular()
    _with_wellbeing(sub)
    order, vendor = on_round(sub)
    round_act(vendor=vendor, tap=tap(order.pk, wellbeing="concern", note="did not answer, TV loud"))
    flag = WellbeingFlag.objects.get()
    assert (flag.kind, flag.raised_by_id, flag.contact_told) == ("concern", vendor.user_id, True)
    sent = [m for m in mail.outbox if "daughter@example.test" in m.to]
    assert len(sent) == 1 and "TV loud" in sent[0].body and "119" in sent[0].body
    event = Effect.objects.get(kind="event.publish", payload__type="wellbeing.alert")
    assert event.payload["data"]["subscription_id"] == sub.pk
    assert "address" not in str(event.payload) and "lat" not in str(event.payload["data"])


@live
def test_all_well_is_recorded_and_no_one_is_alarmed(sandbox):
    sub, _product = regular()
    _with_wellbeing(sub)
    order, vendor = on_round(sub)
    round_act(vendor=vendor, tap=tap(order.pk, wellbeing="well"))
    assert WellbeingFlag.objects.get().kind == "well"
    assert not [m for m in mail.outbox if "daughter@example.test" in m.to]
    assert not Effect.objects.filter(payload__type="wellbeing.alert").exists()


@live
def test_deliveries_piling_up_at_the_door_raise_an_alert(sandbox):
    sub, _product = regular(not_at_home_policy=Subscription.NotAtHome.LEAVE_AT_DOOR)
    _with_wellbeing(sub)
    order, vendor = on_round(sub)
    round_act(vendor=vendor, tap=tap(order.pk, "not_home", uncollected=True))
    assert WellbeingFlag.objects.get().kind == "uncollected"
    assert [m for m in mail.outbox if "daughter@example.test" in m.to]


@live
def test_no_wellbeing_flags_without_the_subscribers_opt_in(sandbox):
    sub, _product = regular()
    order, vendor = on_round(sub)
    round_act(vendor=vendor, tap=tap(order.pk, wellbeing="concern"))
    assert not WellbeingFlag.objects.exists()


# --- a suspended vendor ---------------------------------------------------------------------------


@live
def test_a_suspended_vendors_regulars_are_told_and_never_charged(sandbox):
    sub, product = regular()
    flow.deliveries_prepare(on=tomorrow())
    Vendor.objects.filter(pk=sub.vendor_id).update(status=Vendor.Status.SUSPENDED)
    assert flow.deliveries_place(on=tomorrow(), now=five_am(tomorrow())) == {"cancelled": 1}
    delivery = Delivery.objects.get(subscription=sub)
    assert delivery.status == Delivery.Status.CANCELLED and "suspended" in delivery.reason
    assert not Order.objects.exists() and not Payment.objects.exists()
    told = [m for m in mail.outbox if "No regular delivery" in m.subject]
    assert len(told) == 1 and "Nothing was charged" in told[0].body


# --- tomorrow -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_tomorrows_round_counts_the_regulars_due_and_what_to_load():
    sub, product = regular(number=None, quantity=3, stock=2)
    # A second regular skips tomorrow; a third is paused: neither counts
    skipper, _p = regular(number=None)
    skipper.vendor = sub.vendor
    Subscription.objects.filter(pk=skipper.pk).update(vendor=sub.vendor)
    skipper.skips.create(date=tomorrow())
    result = round_next(vendor=sub.vendor, day=tomorrow(), language="en")
    assert result.regulars == 1 and result.orders == 0
    [load] = result.loads
    assert (load.name, load.regulars, load.on_cart, load.to_load) == (product.name_en, 3, 2, 1)


# --- the API and the page -------------------------------------------------------------------------


def _vendor_client(vendor, language="en"):
    client = Client(headers={"accept-language": language})
    client.force_login(vendor.user)
    return client


@live
def test_the_api_lists_the_round_and_answers_each_tap_on_its_own(sandbox):
    sub, product = regular()
    order, vendor = on_round(sub)
    client = _vendor_client(vendor)
    listed = client.get("/api/vendor/round/", {"day": tomorrow().isoformat()})
    assert listed.status_code == 200
    [stop] = listed.json()["stops"]
    assert stop["order_id"] == order.pk and stop["regular"] and not stop["needs_code"]
    assert stop["lines"] == [{"name": product.name_en, "quantity": 2}]
    good = str(uuid.uuid4())
    body = {
        "actions": [
            {"id": "not-a-uuid", "order_id": order.pk, "action": "delivered"},
            {"id": good, "order_id": order.pk, "action": "delivered"},
            {"id": str(uuid.uuid4()), "order_id": 999999, "action": "delivered"},
        ]
    }
    answer = client.post("/api/vendor/round/actions/", body, content_type="application/json")
    assert answer.status_code == 200
    bad, ok, missing = answer.json()["results"]
    assert "id" in bad["error"]
    assert ok["id"] == good and ok["outcome"] == "delivered" and ok["outcome_label"]
    assert "error" in missing
    # The same batch again (the phone never heard the answer): the same answer, nothing more
    again = client.post("/api/vendor/round/actions/", body, content_type="application/json")
    assert again.json()["results"][1] == ok
    assert RoundAction.objects.filter(applied=True).count() == 1


@pytest.mark.django_db
def test_the_api_bounds_a_batch_and_refuses_non_vendors():
    sub, _product = regular(number=None)
    client = _vendor_client(sub.vendor)
    too_many = {"actions": [{"id": str(uuid.uuid4())} for _ in range(101)]}
    assert (
        client.post(
            "/api/vendor/round/actions/", too_many, content_type="application/json"
        ).status_code
        == 400
    )
    assert client.get("/api/vendor/round/", {"lat": "37.5"}).status_code == 400
    assert client.get("/api/vendor/round/", {"day": "2001-01-01"}).status_code == 400
    customer = Client()
    customer.force_login(sub.customer.user)
    assert customer.get("/api/vendor/round/").status_code == 403
    assert customer.get("/round/").status_code == 302


@pytest.mark.parametrize("language", ["ko", "en"])
@live
def test_the_round_page_lists_stops_and_a_tap_without_script_works(sandbox, language):
    sub, product = regular()
    order, vendor = on_round(sub)
    # The round shows the day's stops: make tomorrow's today for the page
    Order.objects.filter(pk=order.pk).update(
        window_start=timezone.now() + timedelta(minutes=5),
        window_end=timezone.now() + timedelta(hours=2),
    )
    client = _vendor_client(vendor, language)
    page = client.get("/round/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-testid="stop-{order.pk}"' in html and order.delivery_address in html
    tap_id = page.context["tap_id"]
    posted = client.post("/round/tap/", {"id": str(tap_id), "tap": f"delivered:{order.pk}"})
    assert posted.status_code == 302
    assert Order.objects.get(pk=order.pk).status in (Status.HANDED_OVER, Status.COMPLETED)
    after = client.get("/round/").content.decode()
    assert f'data-testid="stop-{order.pk}"' not in after
    assert client.get("/round/tomorrow/").status_code == 200
    assert client.get("/round/sw.js").status_code == 200
    # The same tap posted again (a double submit): nothing more happens
    client.post("/round/tap/", {"id": str(tap_id), "tap": f"delivered:{order.pk}"})
    assert RoundAction.objects.count() == 1
    # A tap that can't be read says so
    garbled = client.post("/round/tap/", {"id": "x", "tap": "delivered:abc"}, follow=True)
    assert garbled.status_code == 200 and RoundAction.objects.count() == 1


def test_stop_cards_escape_what_customers_wrote():
    from subscriptions.round_html import stops_html

    stop = _stop(7, 37.55, 126.9)
    stop.address = '<script>alert("x")</script> 3층'
    stop.note = "<b>ring</b>"
    stop.lines = [("<i>yakult</i>", 2)]
    words = dict.fromkeys(
        [
            "regular",
            "order",
            "note",
            "if_not_home",
            "door",
            "tomorrow",
            "refund",
            "code",
            "wellbeing",
            "well",
            "concern",
            "uncollected",
            "note_optional",
            "delivered",
            "not_home",
        ],
        "<w>",
    )
    html = str(stops_html([stop], words))
    assert "<script>" not in html and "<b>" not in html and "<i>" not in html and "<w>" not in html
    assert "&lt;script&gt;" in html and 'value="delivered:7"' in html and 'name="code-7"' in html


@pytest.mark.django_db
def test_todays_delivery_once_made_is_no_longer_among_the_next():
    from subscriptions.selectors import upcoming_dates, upcoming_deliveries_of

    sub, _product = regular(number=None)
    today = timezone.localdate()
    assert upcoming_dates(subscription=sub)[0] == today
    Delivery.objects.create(subscription=sub, date=today, status=Delivery.Status.SKIPPED)
    assert upcoming_dates(subscription=sub)[0] == today + timedelta(days=1)
    assert upcoming_deliveries_of(subscriptions=[sub])[sub.pk][0].date == today + timedelta(days=1)


@pytest.mark.django_db
def test_preferences_are_the_subscribers_own_and_the_check_needs_consent():
    sub, _product = regular(number=None)
    url = f"/api/subscriptions/{sub.pk}/preferences/"
    body = {
        "shortage_policy": "skip",
        "not_at_home_policy": "refund",
        "wellbeing_check": True,
        "contact_email": "family@example.test",
    }
    # Someone else: as if there were no such subscription
    stranger = Client()
    stranger.force_login(CustomerProfileFactory().user)
    assert stranger.post(url, body, content_type="application/json").status_code == 404
    assert Client().post(url, body, content_type="application/json").status_code in (401, 403)
    owner = Client()
    owner.force_login(sub.customer.user)
    # Without the subscriber's agreement: refused with a reason, nothing changed
    refused = owner.post(url, body, content_type="application/json")
    assert refused.status_code == 400 and "agreement" in refused.content.decode()
    bad = owner.post(url, {**body, "not_at_home_policy": "bin"}, content_type="application/json")
    assert bad.status_code == 400
    sub.refresh_from_db()
    assert not sub.wellbeing_check and sub.not_at_home_policy == "door"
    # With it: saved, with when they agreed
    done = owner.post(url, {**body, "consent": True}, content_type="application/json")
    assert done.status_code == 200 and done.json()["wellbeing_check"] is True
    sub.refresh_from_db()
    assert sub.wellbeing_consent_at is not None and sub.not_at_home_policy == "refund"


@live
def test_a_tap_with_a_time_without_offset_is_taken_not_a_500(sandbox):
    sub, _product = regular()
    order, vendor = on_round(sub)
    client = _vendor_client(vendor)
    posted = client.post(
        "/round/tap/",
        {"id": str(uuid.uuid4()), "tap": f"delivered:{order.pk}", "tapped_at": "2026-01-01T08:00"},
    )
    assert posted.status_code == 302
    assert RoundAction.objects.get().outcome == OUT.DELIVERED
    # Nonsense in the fields: a message, never a 500
    for tap_value, when in (
        ("delivered:x", ""),
        ("fly:1", ""),
        ("delivered:1", "2026-13-45T99:00"),
    ):
        answer = client.post(
            "/round/tap/", {"id": str(uuid.uuid4()), "tap": tap_value, "tapped_at": when}
        )
        assert answer.status_code == 302
