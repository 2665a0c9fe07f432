"""The durable-effects core (o2o.effects): a row written in the change's transaction (or not at all),
kicked after the commit, run by a relay that leases it, records each try, retries with backoff or
on the handler's schedule, gives up when told or out of tries, defers without counting, runs a
dead relay's effect again once its lease ran out, and never lets two relays run one effect at
once; staff see the effects in admin and run one again."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from o2o import effects
from o2o.effects import (
    Defer,
    GiveUp,
    Handler,
    effect_add,
    effect_handler,
    effect_retry_now,
    effects_overdue,
    effects_run,
    sequence_next,
)
from o2o.invariants import check_invariants
from o2o.models import AggregateSequence, Effect, EffectAttempt

KIND = "tests.effect"
LEASE = timedelta(seconds=120)


class Boom(Exception):
    pass


@pytest.fixture
def handler():
    """Registers the test kind's handler; `calls` holds each payload it was given. Set
    `behaviour` to a callable run on each call (raise to fail)."""

    class Recorder:
        calls: list[dict] = []
        behaviour = None
        options: dict = {}

        def register(self, **options) -> Recorder:
            effects.REGISTRY.pop(KIND, None)
            effect_handler(KIND, **options)(self.func)
            return self

        def func(self, payload: dict) -> None:
            self.calls.append(payload)
            if self.behaviour is not None:
                self.behaviour(payload)

    recorder = Recorder()
    recorder.calls = []
    recorder.register()
    try:
        yield recorder
    finally:
        effects.REGISTRY.pop(KIND, None)


@pytest.fixture
def kicks(monkeypatch) -> list[dict]:
    """The after-commit kicks, recorded instead of run."""
    sent: list[dict] = []
    monkeypatch.setattr(effects, "effects_kick", lambda keys: sent.append(dict(keys)))
    return sent


def add(key: str = "k1", payload: dict | None = None, **kwargs) -> Effect:
    with transaction.atomic():
        effect_add(kind=KIND, key=key, payload=payload or {"n": 1}, **kwargs)
    return Effect.objects.get(key=key)


def outcomes(key: str) -> list[str]:
    return list(
        EffectAttempt.objects.filter(effect__key=key)
        .order_by("number")
        .values_list("outcome", flat=True)
    )


# --- writing ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_effect_is_written_only_inside_the_change_s_transaction(handler):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        effect_add(kind=KIND, key="outside", payload={})
    assert not Effect.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_leaves_no_effect_and_no_kick(handler, kicks):
    # When the change fails after writing its effect
    with pytest.raises(Boom), transaction.atomic():
        effect_add(kind=KIND, key="rolled-back", payload={"n": 1})
        raise Boom
    # Then there is no row, nothing was kicked, nothing ran
    assert not Effect.objects.exists()
    assert kicks == []
    assert handler.calls == []
    # While a committed one is kicked once, after the commit
    with transaction.atomic():
        effect_add(kind=KIND, key="committed", payload={"n": 1})
        assert kicks == []
    assert kicks == [{"committed": KIND}]


@pytest.mark.django_db(transaction=True)
def test_a_committed_effect_runs_at_once_and_records_its_try(handler):
    # Given eager Celery (the embedded default and the tests): the kick runs the relay here
    effect = add(payload={"order_id": 7})
    effect.refresh_from_db()
    assert (effect.status, effect.attempts, effect.locked_until) == (Effect.Status.DONE, 1, None)
    assert effect.done_at is not None
    assert handler.calls == [{"order_id": 7}]
    attempt = EffectAttempt.objects.get(effect=effect)
    assert (attempt.number, attempt.outcome, attempt.error) == (1, "done", "")
    assert attempt.finished_at >= attempt.started_at


@pytest.mark.django_db(transaction=True)
def test_a_key_runs_once_however_often_it_is_written(handler):
    # When the same key is written twice in one change, and again by a later change
    with transaction.atomic():
        effect_add(kind=KIND, key="once", payload={"n": 1})
        effect_add(kind=KIND, key="once", payload={"n": 2})
    add("once", payload={"n": 3})
    # Then one row, the first payload, run once, still done
    effect = Effect.objects.get()
    assert (effect.payload, effect.status, effect.attempts) == ({"n": 1}, Effect.Status.DONE, 1)
    assert handler.calls == [{"n": 1}]
    assert effects_run(now=timezone.now() + timedelta(days=1)) == dict.fromkeys(
        ("done", "retry", "failed", "deferred"), 0
    )
    assert len(handler.calls) == 1


@pytest.mark.django_db(transaction=True)
def test_an_effect_for_later_is_not_kicked_and_runs_when_due(handler, kicks):
    later = timezone.now() + timedelta(minutes=10)
    effect = add("later", run_at=later)
    assert kicks == []
    assert effects_run() == dict.fromkeys(("done", "retry", "failed", "deferred"), 0)
    assert effects_run(now=later + timedelta(seconds=1))["done"] == 1
    effect.refresh_from_db()
    assert effect.status == Effect.Status.DONE
    assert effect.deadline == later + effects.REGISTRY[KIND].deadline


# --- retries ------------------------------------------------------------------------------------


def test_backoff_doubles_with_jitter_up_to_its_cap():
    handler = Handler(kind="x", func=lambda p: None, backoff_base=2.0, backoff_cap=60.0)
    for attempt, base in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 32), (6, 60), (12, 60)]:
        delays = [handler.delay_after(attempt) for _ in range(50)]
        assert all(0.8 * base <= d <= 1.2 * base for d in delays), (attempt, min(delays))
        assert len(set(delays)) > 1  # jittered: relays retrying together spread out


def test_a_schedule_gives_the_delays_and_keeps_its_last():
    handler = Handler(kind="x", func=lambda p: None, schedule=(0, 5, 300, 1800))
    assert [handler.delay_after(n) for n in range(1, 7)] == [0, 5, 300, 1800, 1800, 1800]


@pytest.mark.django_db(transaction=True)
def test_a_failing_handler_is_tried_again_after_its_backoff_then_fails_for_staff(handler):
    handler.register(max_attempts=3, backoff_base=10.0, backoff_cap=100.0)

    def fail(payload):
        raise Boom("provider down")

    handler.behaviour = fail
    # When the first try fails (run by the kick)
    before = timezone.now()
    effect = add("flaky")
    # Then it waits its backoff (10 s, give or take the jitter), the try and error recorded
    assert (effect.status, effect.attempts, effect.locked_until) == (Effect.Status.PENDING, 1, None)
    assert before + timedelta(seconds=8) <= effect.next_attempt_at
    assert effect.next_attempt_at <= timezone.now() + timedelta(seconds=12)
    assert effect.last_error == "Boom: provider down"
    assert outcomes("flaky") == ["retry"]
    # And it is not due before then
    assert effects_run()["retry"] == 0
    # When its time comes it is tried again: 20 s later
    before = timezone.now()
    assert effects_run(now=effect.next_attempt_at + timedelta(seconds=1))["retry"] == 1
    effect.refresh_from_db()
    assert before + timedelta(seconds=16) <= effect.next_attempt_at
    assert effect.next_attempt_at <= timezone.now() + timedelta(seconds=24)
    # And after its last try it is FAILED, for staff: listed apart, not a broken invariant
    assert effects_run(now=effect.next_attempt_at + timedelta(seconds=1))["failed"] == 1
    effect.refresh_from_db()
    assert (effect.status, effect.attempts) == (Effect.Status.FAILED, 3)
    assert outcomes("flaky") == ["retry", "retry", "failed"]
    assert list(effects_overdue()) == [effect]
    report = check_invariants()
    assert report.ok
    assert report.attention == {"effect_failed": ["flaky: Boom: provider down"]}
    assert effects_run(now=timezone.now() + timedelta(days=1))["retry"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_handler_on_a_schedule_is_tried_again_on_it(handler):
    handler.register(schedule=(0, 300))

    def fail(payload):
        raise Boom("no")

    handler.behaviour = fail
    effect = add("scheduled")
    assert effect.next_attempt_at <= timezone.now()  # 0 s: again at the next sweep
    effects_run()
    effect.refresh_from_db()
    assert effect.attempts == 2
    assert effect.next_attempt_at >= timezone.now() + timedelta(seconds=295)


@pytest.mark.django_db(transaction=True)
def test_give_up_fails_at_once(handler):
    def refuse(payload):
        raise GiveUp("card expired")

    handler.behaviour = refuse
    effect = add("refused")
    assert (effect.status, effect.attempts) == (Effect.Status.FAILED, 1)
    assert effect.last_error == "GiveUp: card expired"
    assert outcomes("refused") == ["failed"]
    assert effects_run(now=timezone.now() + timedelta(days=1))["failed"] == 0
    assert len(handler.calls) == 1


@pytest.mark.django_db(transaction=True)
def test_defer_waits_without_counting_a_try(handler):
    handler.register(max_attempts=2)

    def not_yet(payload):
        raise Defer("the payment is not settled yet", after=30)

    handler.behaviour = not_yet
    # When the handler defers, again and again (more often than it may fail)
    before = timezone.now()
    effect = add("deferred")
    for _ in range(3):
        assert effects_run(now=effect.next_attempt_at + timedelta(seconds=1))["deferred"] == 1
        effect.refresh_from_db()
    # Then no try is counted nor kept, and it waits as asked
    assert (effect.status, effect.attempts) == (Effect.Status.PENDING, 0)
    assert outcomes("deferred") == []
    assert effect.next_attempt_at >= before + timedelta(seconds=30)
    assert effect.last_error == "the payment is not settled yet"
    # And once it can go, it is done
    handler.behaviour = None
    assert effects_run(now=effect.next_attempt_at + timedelta(seconds=1))["done"] == 1
    assert outcomes("deferred") == ["done"]


# --- leases -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_dead_relay_s_effect_runs_again_once_its_lease_ran_out(handler, kicks):
    # Given a relay that claimed the effect and died before running it (killed worker)
    add("orphan")
    t0 = timezone.now()
    (claimed,) = effects._claim(keys=["orphan"], kinds=None, limit=10, now=t0)
    # Then nobody runs it while the lease lasts
    assert effects_run(now=t0 + LEASE - timedelta(seconds=1))["done"] == 0
    assert handler.calls == []
    # And the sweep after the lease runs it
    assert effects_run(now=t0 + LEASE + timedelta(seconds=1))["done"] == 1
    assert handler.calls == [{"n": 1}]
    assert outcomes("orphan") == ["running", "done"]  # the dead relay's try, never finished
    # And the dead relay, were it to wake up, records nothing over the live try
    effects._finish(claimed, status=None, outcome="retry", error="late", after=60)
    effect = Effect.objects.get(key="orphan")
    assert (effect.status, effect.last_error) == (Effect.Status.DONE, "")


@pytest.mark.django_db(transaction=True)
def test_a_late_done_of_a_relay_whose_lease_ran_out_does_not_end_the_live_try(handler, kicks):
    add("slow")
    t0 = timezone.now()
    (slow,) = effects._claim(keys=["slow"], kinds=None, limit=10, now=t0)

    def fail(payload):
        raise Boom("down")

    handler.behaviour = fail
    # When another relay runs it after the lease (and fails), then the first relay finishes
    assert effects_run(now=t0 + LEASE + timedelta(seconds=1))["retry"] == 1
    effects._finish(slow, status=Effect.Status.DONE, outcome="done")
    # Then the effect is still to be retried: the live try's record stands
    effect = Effect.objects.get(key="slow")
    assert (effect.status, effect.attempts) == (Effect.Status.PENDING, 2)
    assert outcomes("slow") == ["running", "retry"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_atomic_handler_whose_lease_ran_out_does_not_take_effect_twice(handler, kicks):
    # Given an atomic handler (its work commits with its "done"), whose first run stalls past its
    # lease (a lock wait, a paused VM)
    stalled, release = threading.Event(), threading.Event()

    def work(payload):
        if len(handler.calls) == 1:
            stalled.set()
            assert release.wait(10)
        sequence_next(aggregate="tests-effect", aggregate_id=1)

    handler.register(atomic=True)
    handler.behaviour = work
    add("atomic")  # (not kicked: the relays below run it)
    t0 = timezone.now()

    def first_relay():
        try:
            effects_run(keys=["atomic"], now=t0)
        finally:
            connection.close()

    thread = threading.Thread(target=first_relay)
    thread.start()
    try:
        assert stalled.wait(10)
        # When another relay runs it once the lease ran out, and then the first one wakes up
        assert effects_run(keys=["atomic"], now=t0 + LEASE + timedelta(seconds=1))["done"] == 1
    finally:
        release.set()
        thread.join(15)
    # Then its work happened once: the stale run's transaction was rolled back
    assert AggregateSequence.objects.get(aggregate="tests-effect", aggregate_id=1).last == 1
    effect = Effect.objects.get(key="atomic")
    assert (effect.status, effect.attempts) == (Effect.Status.DONE, 2)
    assert outcomes("atomic") == ["running", "done"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_relays_never_run_the_same_effect_at_once(handler, kicks):
    # Given many due effects and a handler that takes a moment
    running: set[str] = set()
    overlaps: list[str] = []
    ran_by: dict[str, list[str]] = {}
    lock = threading.Lock()

    def work(payload):
        key, relay = payload["key"], threading.current_thread().name
        with lock:
            if key in running:
                overlaps.append(key)
            running.add(key)
            ran_by.setdefault(key, []).append(relay)
        time.sleep(0.02)
        with lock:
            running.discard(key)

    handler.behaviour = work
    keys = [f"many-{n}" for n in range(24)]
    with transaction.atomic():
        for key in keys:
            effect_add(kind=KIND, key=key, payload={"key": key})
    # When two relays, each with its own connection, sweep them at the same time
    start = threading.Barrier(2)

    def relay():
        try:
            start.wait(5)
            while sum(effects_run(kinds=[KIND], limit=3).values()):
                pass
        finally:
            connection.close()

    threads = [threading.Thread(target=relay, name=f"relay-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Then each effect ran once, never twice at the same time, and both relays had work
    assert overlaps == []
    assert sorted(ran_by) == sorted(keys)
    assert all(len(relays) == 1 for relays in ran_by.values()), ran_by
    assert {r for relays in ran_by.values() for r in relays} == {"relay-0", "relay-1"}
    assert Effect.objects.filter(status=Effect.Status.DONE).count() == len(keys)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_relay_skips_a_row_another_one_is_claiming_instead_of_waiting(handler, kicks):
    add("busy", payload={"key": "busy"})
    add("free", payload={"key": "free"})
    locked, release = threading.Event(), threading.Event()

    def claiming_relay():
        # holds the row's lock, as a relay between its SELECT ... FOR UPDATE and its COMMIT
        try:
            with transaction.atomic():
                Effect.objects.select_for_update().get(key="busy")
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=claiming_relay)
    thread.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        counts = effects_run(kinds=[KIND])
        waited = time.monotonic() - started
    finally:
        release.set()
        thread.join(15)
    assert counts["done"] == 1 and waited < 2, (counts, waited)
    assert handler.calls == [{"key": "free"}]
    assert Effect.objects.get(key="busy").status == Effect.Status.PENDING


# --- staff --------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_staff_run_a_failed_effect_again_with_a_fresh_count(handler):
    def refuse(payload):
        raise GiveUp("no payout account")

    handler.behaviour = refuse
    effect = add("stuck")
    assert effect.status == Effect.Status.FAILED
    # When staff run it again (the account is fixed meanwhile)
    handler.behaviour = None
    assert effect_retry_now(effect_id=effect.pk) is True
    effect.refresh_from_db()
    assert (effect.status, effect.attempts, effect.locked_until) == (Effect.Status.PENDING, 0, None)
    assert effect.next_attempt_at <= timezone.now()
    assert effect.deadline > timezone.now()
    # Then the next sweep runs it
    assert effects_run()["done"] == 1
    effect.refresh_from_db()
    assert effect.status == Effect.Status.DONE
    # And a done effect is not run again
    assert effect_retry_now(effect_id=effect.pk) is False
    assert Effect.objects.get(pk=effect.pk).status == Effect.Status.DONE


@pytest.mark.django_db(transaction=True)
def test_the_admin_lists_effects_with_their_tries_and_runs_one_again(handler, staff):
    def refuse(payload):
        raise GiveUp("refused by the provider")

    handler.behaviour = refuse
    failed = add("admin-failed")
    for n in range(3):
        add(f"admin-other-{n}")
    client = Client(headers={"accept-language": "en"})
    client.force_login(staff)
    # The list: as many queries for 4 effects as for 14 (no query per row)
    with CaptureQueriesContext(connection) as few:
        page = client.get("/admin/o2o/effect/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "admin-failed" in html and "admin-other-2" in html
    for n in range(10):
        add(f"admin-more-{n}")
    with CaptureQueriesContext(connection) as many:
        assert client.get("/admin/o2o/effect/").status_code == 200
    assert len(many) == len(few)
    assert client.get("/admin/o2o/effect/?status__exact=failed").status_code == 200
    # The effect's page shows its tries and the error
    detail = client.get(f"/admin/o2o/effect/{failed.pk}/change/")
    assert detail.status_code == 200
    assert "GiveUp: refused by the provider" in detail.content.decode()
    # The action runs it again
    handler.behaviour = None
    done = client.post(
        "/admin/o2o/effect/",
        {"action": "retry_now", "_selected_action": [failed.pk]},
        follow=True,
    )
    assert done.status_code == 200
    assert "1 effect will run again within seconds." in done.content.decode()
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (Effect.Status.PENDING, 0)
    close_old_connections()


@pytest.mark.django_db
def test_run_again_now_leaves_an_effect_a_relay_is_running_to_it():
    from o2o.effects import effect_retry_now
    from tests.factories import EffectFactory

    # Given an effect a relay claimed a moment ago (its lease still live)
    running = EffectFactory(attempts=1, locked_until=timezone.now() + timedelta(minutes=2))
    # When staff ask to run it again now
    assert effect_retry_now(effect_id=running.pk) is False
    # Then the relay keeps it: same try count, same lease
    running.refresh_from_db()
    assert running.attempts == 1 and running.locked_until is not None


@pytest.mark.django_db
def test_with_a_broker_the_kicks_of_a_moment_go_out_as_one_message_per_queue(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    from o2o import tasks

    # Given tasks go to a broker (recorded here at the publish call)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(
        tasks.effects_relay,
        "apply_async",
        lambda kwargs, queue: sent.append((queue, kwargs["keys"])),
    )
    # When 30 changes commit at once, each with an e-mail (notifications) and a capture (money)
    keys = {"notifications": set(), "money": set()}
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(30):
            effects.effect_add(kind="order.email", key=f"kick:mail:{n}")
            effects.effect_add(kind="order.capture", key=f"kick:capture:{n}")
            keys["notifications"].add(f"kick:mail:{n}")
            keys["money"].add(f"kick:capture:{n}")
    # Then every key is announced to its queue's relay, in a few messages, not 60
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sum(len(k) for _q, k in sent) < 60:
        time.sleep(0.01)
    got = {"notifications": set(), "money": set()}
    for queue, batch in sent:
        got[queue].update(batch)
    assert got == keys
    assert len(sent) <= 6, [len(b) for _q, b in sent]


@pytest.mark.django_db(transaction=True)
def test_a_relay_stops_claiming_when_its_time_budget_is_spent(handler, kicks):
    # Given five due effects whose handler takes 0.2 s each
    handler.behaviour = lambda payload: time.sleep(0.2)
    for n in range(5):
        add(key=f"slow-{n}")
    # When a relay with a 0.3 s budget runs
    counts = effects_run(kinds=[KIND], budget_s=0.3)
    # Then it ran two and left the rest, unclaimed, for the next sweep
    assert counts["done"] == 2
    left = Effect.objects.filter(status="pending")
    assert left.count() == 3 and not left.filter(locked_until__isnull=False).exists()
