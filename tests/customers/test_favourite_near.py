""" "Tell me when a favourite cart is near" (issue #17, part 4): the beat sweep records one notice
per (favourite, shift), with its e-mail as a durable effect in the same transaction; the e-mail
names the cart and the approximate area only, and its signed link stops them without logging in."""

import threading
from datetime import timedelta
from urllib.parse import urlparse

import h3
import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test import Client
from django.utils import timezone

from customers.models import FavouriteNearNotice, FavouriteVendor
from customers.notifications import near_stop_token
from customers.services import favourite_add, favourite_notify_set
from o2o.models import Effect
from tests.factories import (
    MAPO,
    AddressFactory,
    CustomerProfileFactory,
    VendorFactory,
    VendorPositionFactory,
)
from tracking.models import VendorPosition
from tracking.near import CURSOR_KEY, favourites_near_notify, rounded_distance

# About 300 m north of MAPO (1° of latitude is ~111 km)
NEAR = (MAPO[0] + 0.0027, MAPO[1])
FAR = (MAPO[0] + 0.02, MAPO[1])  # ~2.2 km


@pytest.fixture(autouse=True)
def fresh_cursor():
    from django.core.cache import cache

    cache.delete(CURSOR_KEY)


def on_shift(at=NEAR, started=None):
    vendor = VendorFactory(name="순자네 카트")
    VendorPositionFactory(
        vendor=vendor,
        lat=at[0],
        lng=at[1],
        shift_started_at=started or timezone.now() - timedelta(hours=1),
    )
    return vendor


def wants_to_know(vendor, *, label="집", at=MAPO):
    customer = CustomerProfileFactory()
    AddressFactory(customer=customer, label=label, lat=at[0], lng=at[1])
    favourite_add(customer=customer, vendor_id=vendor.pk)
    return favourite_notify_set(customer=customer, vendor_id=vendor.pk, notify_near=True)


@pytest.mark.django_db
def test_a_near_favourite_is_told_once_per_shift_by_email(django_capture_on_commit_callbacks):
    vendor = on_shift()
    favourite = wants_to_know(vendor)
    # When the sweep runs (twice, as beat does a minute later)
    with django_capture_on_commit_callbacks(execute=True):
        assert favourites_near_notify() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert favourites_near_notify() == 0
    # Then one notice, one e-mail effect, one e-mail
    notice = FavouriteNearNotice.objects.get()
    assert notice.favourite == favourite and notice.address_label == "집"
    assert Effect.objects.filter(key=f"favourite-near:{notice.pk}").count() == 1
    [email] = mail.outbox
    assert email.to == [favourite.customer.user.email]
    assert "순자네 카트" in email.subject
    # The approximate area only: a distance rounded to 100 m from the address label
    cell_lat, cell_lng = h3.cell_to_latlng(vendor.position.public_cell)
    assert f"{notice.distance_m}m" in email.body and "집" in email.body
    assert notice.distance_m % 100 == 0
    for exact in (NEAR[0], NEAR[1], round(cell_lat, 4), round(cell_lng, 4)):
        assert str(exact) not in email.body
    # And the stop link, also for a mail app's one tap
    [stop_url] = [line for line in email.body.splitlines() if "/favourites/stop/" in line]
    assert email.extra_headers["List-Unsubscribe"] == f"<{stop_url}>"
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert Client().post(urlparse(stop_url).path).status_code == 200
    favourite.refresh_from_db()
    assert favourite.notify_near is False
    favourite_notify_set(customer=favourite.customer, vendor_id=vendor.pk, notify_near=True)
    # A new shift is told again
    VendorPosition.objects.filter(vendor=vendor).update(shift_started_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert favourites_near_notify() == 1
    assert len(mail.outbox) == 2


@pytest.mark.django_db
@pytest.mark.parametrize("why", ["far", "switched_off", "off_shift", "offline", "no_address"])
def test_nobody_is_told_when_they_should_not_be(why, django_capture_on_commit_callbacks):
    vendor = on_shift(at=FAR if why == "far" else NEAR)
    favourite = wants_to_know(vendor)
    if why == "switched_off":
        favourite_notify_set(customer=favourite.customer, vendor_id=vendor.pk, notify_near=False)
    elif why == "off_shift":
        VendorPosition.objects.filter(vendor=vendor).update(on_shift=False)
    elif why == "offline":
        VendorPosition.objects.filter(vendor=vendor).update(presence="offline")
    elif why == "no_address":
        favourite.customer.addresses.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        assert favourites_near_notify() == 0
    assert not FavouriteNearNotice.objects.exists() and not mail.outbox


@pytest.mark.django_db
def test_the_near_radius_is_a_setting_measured_from_the_public_cell(settings):
    vendor = on_shift(at=NEAR)
    wants_to_know(vendor)
    centre = h3.cell_to_latlng(vendor.position.public_cell)
    from o2o.geo import distance_m

    metres = distance_m(MAPO[0], MAPO[1], *centre)
    settings.FAVOURITE_NEAR_M = int(metres) - 1
    assert favourites_near_notify() == 0
    settings.FAVOURITE_NEAR_M = int(metres) + 1
    assert favourites_near_notify() == 1
    assert FavouriteNearNotice.objects.get().distance_m == rounded_distance(metres)


@pytest.mark.django_db
def test_each_run_is_bounded_and_the_next_one_goes_on_from_there():
    vendor = on_shift()
    favourites = [wants_to_know(vendor) for _ in range(3)]
    assert favourites_near_notify(batch=2) == 2
    assert favourites_near_notify(batch=2) == 1
    assert favourites_near_notify(batch=2) == 0
    told = set(FavouriteNearNotice.objects.values_list("favourite_id", flat=True))
    assert told == {f.pk for f in favourites}


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_racing_record_one_notice():
    vendor = on_shift()
    wants_to_know(vendor)
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def sweep():
        try:
            barrier.wait()
            results.append(favourites_near_notify())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert sorted(results) == [0, 1]
    assert FavouriteNearNotice.objects.count() == 1
    assert Effect.objects.filter(key__startswith="favourite-near:").count() == 1


# --- the stop link ----------------------------------------------------------------------------


@pytest.fixture
def client():
    return Client(headers={"accept-language": "en"})


@pytest.mark.django_db
def test_the_stop_link_works_without_logging_in_and_can_be_undone(client):
    favourite = wants_to_know(on_shift())
    url = f"/favourites/stop/{near_stop_token(favourite_id=favourite.pk)}/"
    # Opening the link (or a mail scanner prefetching it) only asks to confirm
    response = client.get(url)
    assert response.status_code == 200
    assert 'data-testid="stop-confirm"' in response.content.decode()
    favourite.refresh_from_db()
    assert favourite.notify_near is True
    # The button stops them (a form without a CSRF token of ours: the signed address is the key)
    client = Client(enforce_csrf_checks=True, headers={"accept-language": "en"})
    response = client.post(url)
    assert response.status_code == 200
    assert "no more e-mails" in response.content.decode()
    favourite.refresh_from_db()
    assert favourite.notify_near is False
    # Undo
    response = client.post(url, {"on": "1"})
    assert response.status_code == 200 and "tell you again" in response.content.decode()
    favourite.refresh_from_db()
    assert favourite.notify_near is True
    # A mail app's one-click POST (RFC 8058) stops it again
    client.post(url, {"List-Unsubscribe": "One-Click"})
    favourite.refresh_from_db()
    assert favourite.notify_near is False


@pytest.mark.django_db
def test_a_forged_or_stale_stop_link_is_a_clear_answer(client):
    favourite = wants_to_know(on_shift())
    token = near_stop_token(favourite_id=favourite.pk)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = client.get(f"/favourites/stop/{forged}/")
    assert response.status_code == 400 and "not valid" in response.content.decode()
    favourite.refresh_from_db()
    assert favourite.notify_near is True
    # The favourite removed since: nothing to stop, said plainly
    FavouriteVendor.objects.filter(pk=favourite.pk).delete()
    response = client.get(f"/favourites/stop/{token}/")
    assert (
        response.status_code == 200
        and "no longer among your favourites" in response.content.decode()
    )


@pytest.mark.django_db
def test_an_email_recorded_before_the_switch_went_off_is_not_sent(
    django_capture_on_commit_callbacks,
):
    favourite = wants_to_know(on_shift())
    assert favourites_near_notify() == 1  # the effect's kick waits for a commit that never runs
    favourite_notify_set(
        customer=favourite.customer, vendor_id=favourite.vendor_id, notify_near=False
    )
    from o2o.effects import effects_run

    effects_run(keys=[f"favourite-near:{FavouriteNearNotice.objects.get().pk}"])
    assert not mail.outbox


def test_the_sweep_is_on_beats_schedule_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["favourites-near-notify"]
    assert entry == {"task": "tracking.tasks.favourites_near_notify", "schedule": 60.0}
    from tracking import tasks

    assert tasks.favourites_near_notify.name == entry["task"]
