"""The websocket ingest batcher: sockets submit pings and each gets its own result; pings are
recorded in batches (at most MAX_BATCH, at most MAX_WAIT_S after the first), and a batch that
fails answers every waiting socket with an error instead of leaving it hanging."""

import asyncio

import h3
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.utils import timezone

from tests.factories import MAPO, VendorFactory
from tests.tracking.conftest import EAST_500M
from tests.tracking.ws import VENDOR, communicator, session_cookie
from tracking import ingest, services
from tracking.ingest import PingBatcher
from tracking.models import Ping
from tracking.services import PingIn, Reject

with_db = pytest.mark.django_db(transaction=True)


def _on_shift(**kwargs):
    vendor = VendorFactory(**kwargs)
    services.shift_start(vendor=vendor, actor=vendor.user)
    return vendor


def _ping(vendor_id: int, lat=MAPO[0], lng=MAPO[1], seconds_ago: float = 0.0) -> PingIn:
    when = timezone.now() - timezone.timedelta(seconds=seconds_ago)
    return PingIn(vendor_id=vendor_id, lat=lat, lng=lng, accuracy_m=10.0, recorded_at=when)


@with_db
def test_each_socket_gets_its_own_result_from_one_batch():
    # given five vendors on shift, one of them sending a bad fix
    vendors = [_on_shift() for _ in range(5)]
    spots = [MAPO, EAST_500M, MAPO, EAST_500M, (91, 0)]
    batcher = PingBatcher(max_wait_s=0.05)

    async def main():
        # when their sockets submit at about the same time
        return await asyncio.gather(
            *(batcher.submit(_ping(v.pk, *spot)) for v, spot in zip(vendors, spots, strict=True))
        )

    results = async_to_sync(main)()
    # then they were recorded as one batch and each got the answer for its own ping
    assert batcher.batch_sizes == [5]
    cells = [h3.latlng_to_cell(*s, settings.PUBLIC_CELL_RES) for s in spots[:4]]
    assert [r.public_cell for r in results[:4]] == cells
    assert all(r.accepted for r in results[:4])
    assert (results[4].accepted, results[4].reason) == (False, Reject.BAD_COORDINATES)
    assert Ping.objects.count() == 4


@with_db
def test_a_full_batch_goes_at_once_and_the_rest_waits_for_the_next():
    vendors = [_on_shift() for _ in range(25)]
    # a long wait: only the size can trigger the first two flushes
    batcher = PingBatcher(max_batch=10, max_wait_s=0.3)

    async def main():
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.gather(*(batcher.submit(_ping(v.pk)) for v in vendors))
        return results, loop.time() - started

    results, took = async_to_sync(main)()
    assert batcher.batch_sizes == [10, 10, 5]
    assert all(r.accepted for r in results)
    assert Ping.objects.count() == 25
    assert took >= 0.3  # the last five waited for the timer, not for more pings


def test_a_failing_flush_answers_every_waiting_socket_with_an_error():
    calls = []

    def broken(pings):
        calls.append(len(pings))
        raise RuntimeError("database went away")

    def short(pings):
        return []  # a recorder that lost results: never a hang, never a wrong answer

    async def main(record):
        batcher = PingBatcher(record, max_wait_s=0.01)
        results = await asyncio.wait_for(
            asyncio.gather(*(batcher.submit(_ping(i)) for i in range(7))), timeout=5
        )
        # and the batcher still works for the next pings
        return results, await asyncio.wait_for(batcher.submit(_ping(99)), timeout=5)

    for record in (broken, short):
        results, after = async_to_sync(main)(record)
        assert [r.reason for r in results] == [Reject.SERVER_ERROR] * 7
        assert after.reason == Reject.SERVER_ERROR and after.message
    assert calls == [7, 1]


@with_db
def test_a_batch_that_fails_is_retried_ping_by_ping_so_good_pings_are_kept():
    # given two vendors and, between their pings, one that breaks the batch (no such vendor id)
    a, b = _on_shift(), _on_shift()
    poisoned = PingIn(vendor_id="x", lat=MAPO[0], lng=MAPO[1], accuracy_m=10, recorded_at=None)
    # when they are recorded through the batcher's recorder
    results = ingest.record_pings([_ping(a.pk), poisoned, _ping(b.pk, *EAST_500M)])
    # then only the poisoned one failed
    assert [r.accepted for r in results] == [True, False, True]
    assert results[1].reason == Reject.SERVER_ERROR
    assert set(Ping.objects.values_list("vendor_id", flat=True)) == {a.pk, b.pk}


@pytest.mark.redis
@with_db
def test_phones_of_several_vendors_each_get_their_own_answer_through_the_socket():
    vendors = [_on_shift() for _ in range(4)]
    cookies = [session_cookie(v.user) for v in vendors]
    spots = [MAPO, EAST_500M, MAPO, (91, 0)]

    async def main():
        phones = [communicator(VENDOR, c) for c in cookies]
        for phone in phones:
            assert (await phone.connect(timeout=5))[0]
        stamps = [int(timezone.now().timestamp() * 1000) - i for i in range(4)]
        for phone, spot, ts in zip(phones, spots, stamps, strict=True):
            body = {"type": "ping", "lat": spot[0], "lng": spot[1], "accuracy": 8, "ts": ts}
            await phone.send_json_to(body)
        answers = [await phone.receive_json_from(timeout=5) for phone in phones]
        batches = list(ingest.batcher().batch_sizes)
        for phone in phones:
            await phone.disconnect(timeout=0.1)
        return stamps, answers, batches

    stamps, answers, batches = async_to_sync(main)()
    for (spot, ts), answer in zip(zip(spots[:3], stamps, strict=False), answers, strict=False):
        cell = h3.latlng_to_cell(*spot, settings.PUBLIC_CELL_RES)
        assert answer == {"type": "ack", "ts": ts, "cell": cell}
    assert (answers[3]["type"], answers[3]["reason"], answers[3]["ts"]) == (
        "rejected",
        Reject.BAD_COORDINATES,
        stamps[3],
    )
    assert sum(batches) == 4 and len(batches) < 4  # batched, not one transaction per socket


@pytest.mark.redis
@with_db
def test_a_phone_is_told_of_a_server_error_and_not_left_waiting():
    vendor = _on_shift()
    cookie = session_cookie(vendor.user)

    def broken(pings):
        raise RuntimeError("database went away")

    async def main():
        # this process's batcher cannot reach the database
        ingest._batchers[asyncio.get_running_loop()] = PingBatcher(broken)
        phone = communicator(VENDOR, cookie)
        assert (await phone.connect(timeout=5))[0]
        ts = int(timezone.now().timestamp() * 1000)
        await phone.send_json_to(
            {"type": "ping", "lat": MAPO[0], "lng": MAPO[1], "accuracy": 8, "ts": ts}
        )
        answer = await phone.receive_json_from(timeout=5)
        await phone.disconnect(timeout=0.1)
        return ts, answer

    ts, answer = async_to_sync(main)()
    # not "rejected" (refused for good): an error, so the phone can send it again
    assert (answer["type"], answer["ts"], answer["reason"]) == ("error", ts, "server_error")
    assert answer["message"]
    assert not Ping.objects.exists()


def test_beyond_the_pending_bound_a_ping_is_answered_send_again_at_once():
    release = __import__("threading").Event()
    recorded: list[int] = []

    def slow(pings):
        release.wait(5)
        recorded.extend(p.vendor_id for p in pings)
        return [services.PingResult(accepted=True, public_cell="x")] * len(pings)

    async def main():
        batcher = PingBatcher(slow, max_batch=2, max_wait_s=0.0, max_pending=3)
        # given a ping being recorded (slowly) and three more waiting
        first = [asyncio.ensure_future(batcher.submit(_ping(0)))]
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(batcher.submit(_ping(i))) for i in range(1, 4)]
        await asyncio.sleep(0.01)
        assert len(recorded) == 0 and batcher.shed == 0
        # when one more comes, it is answered at once: not recorded, send it again
        shed = await asyncio.wait_for(batcher.submit(_ping(5)), timeout=1)
        assert (shed.accepted, shed.reason) == (False, Reject.SERVER_ERROR) and shed.message
        release.set()
        results = await asyncio.wait_for(asyncio.gather(*first, *waiting), timeout=5)
        assert all(r.accepted for r in results)
        # and once the queue drained, pings are taken again
        assert (await asyncio.wait_for(batcher.submit(_ping(6)), timeout=5)).accepted
        return batcher.shed

    assert async_to_sync(main)() == 1
    assert sorted(recorded) == [0, 1, 2, 3, 6]
