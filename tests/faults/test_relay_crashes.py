"""The relay killed at random points (hypothesis): a crash nothing catches (a BaseException, as a
SIGKILL would end the process), a database error, or the relay's PostgreSQL connection really
terminated (pg_terminate_backend) at any of: just after the claim, the handler's start, after its
external action, after its local write, the recording of the try. After each, time moves on past
the lease and the backoff and the sweep runs again, until nothing is due. Then every effect is
done and its action happened exactly once: an atomic handler's database write once (its
transaction commits with the effect's completion or not at all), a non-atomic handler's external
action once at the provider (which may be called again, with the same idempotency key) and its
guarded local write once."""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter
from datetime import timedelta

import psycopg2
import pytest
from django.db import (
    DatabaseError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.utils import timezone
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from o2o import effects
from o2o.effects import effect_add, effect_handler, effects_run, sequence_next
from o2o.models import AggregateSequence, Effect, EffectAttempt

from .stack import database_params

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NON_ATOMIC = "faults.pay"  # like a capture: a provider call, then a guarded local write
ATOMIC = "faults.count"  # like payment.status_changed: a database write only, in the transaction
KINDS = (NON_ATOMIC, ATOMIC)
POINTS = ("claimed", "handler_start", "after_external", "after_local", "finish")
FAULTS = ("crash", "db_error", "terminate")
RUNS = itertools.count()


class Crash(BaseException):
    """The relay's process dies here (nothing catches a BaseException, as nothing survives a
    SIGKILL); its open transaction is rolled back by the server."""


class Provider:
    """An external system with idempotency keys, as payment providers have: a call with a key it
    has seen does nothing again. Outside the database: no rollback undoes it."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()

    def charge(self, *, idempotency_key: str) -> None:
        self.calls[idempotency_key] += 1
        if idempotency_key not in self.applied:
            self.applied[idempotency_key] += 1


class Injector:
    """Fires the planned fault at the n-th visit of a point: {(point, n): fault}."""

    def __init__(self, plan: dict[tuple[str, int], str], killer) -> None:
        self.plan, self.killer = dict(plan), killer
        self.visits: Counter[str] = Counter()
        self.fired: list[tuple[str, int, str]] = []

    def at(self, point: str) -> None:
        n = self.visits[point]
        self.visits[point] += 1
        fault = self.plan.pop((point, n), None)
        if fault is None:
            return
        self.fired.append((point, n, fault))
        if fault == "crash":
            raise Crash(point)
        if fault == "db_error":
            raise OperationalError(f"injected at {point}")
        # terminate: the relay's connection is cut for real; its next query fails
        if connection.connection is not None:
            self.killer(connection.connection.info.backend_pid)


class World:
    """What the handlers act on, and the injector of the current example."""

    def __init__(self) -> None:
        self.provider = Provider()
        self.injector = Injector({}, killer=lambda pid: None)


@pytest.fixture
def world(monkeypatch):
    world = World()
    admin = psycopg2.connect(**{**database_params(), "dbname": "postgres"})
    admin.autocommit = True

    def terminate(pid: int) -> None:
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", [pid])

    world.terminate = terminate

    def pay(payload: dict) -> None:
        world.injector.at("handler_start")
        ref = payload["ref"]
        if AggregateSequence.objects.filter(aggregate="faults-local", aggregate_id=ref).exists():
            return  # recorded already: the provider is not asked again
        world.provider.charge(idempotency_key=f"faults-{ref}")
        world.injector.at("after_external")
        AggregateSequence.objects.get_or_create(aggregate="faults-local", aggregate_id=ref)
        world.injector.at("after_local")

    def count(payload: dict) -> None:
        world.injector.at("handler_start")
        sequence_next(aggregate="faults-atomic", aggregate_id=payload["ref"])
        world.injector.at("after_local")

    real_claim, real_finish = effects._claim, effects._finish

    def claim(**kwargs):
        claimed = real_claim(**kwargs)
        world.injector.at("claimed")
        return claimed

    def finish(effect, **kwargs):
        world.injector.at("finish")
        return real_finish(effect, **kwargs)

    effect_handler(NON_ATOMIC, queue="money", max_attempts=40)(pay)
    effect_handler(ATOMIC, queue="money", max_attempts=40, atomic=True)(count)
    monkeypatch.setattr(effects, "_claim", claim)
    monkeypatch.setattr(effects, "_finish", finish)
    try:
        yield world
    finally:
        for kind in KINDS:
            effects.REGISTRY.pop(kind, None)
        admin.close()
        close_old_connections()


plans = st.dictionaries(
    st.tuples(st.sampled_from(POINTS), st.integers(0, 3)), st.sampled_from(FAULTS), max_size=6
)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=plans, atomic=st.lists(st.booleans(), min_size=1, max_size=3))
def test_a_relay_killed_anywhere_still_runs_each_effect_exactly_once(world, plan, atomic):
    run = next(RUNS)
    refs = [run * 10 + i for i in range(len(atomic))]
    kinds = [ATOMIC if a else NON_ATOMIC for a in atomic]
    keys = [f"faults:{run}:{i}" for i in range(len(atomic))]
    world.injector = Injector(plan, killer=world.terminate)
    # Given effects written in one change; its commit kicks the relay (in-process: eager Celery)
    try:
        with transaction.atomic():
            for key, kind, ref in zip(keys, kinds, refs, strict=True):
                effect_add(kind=kind, key=key, payload={"ref": ref})
    except Crash:
        pass  # died right after the commit: the effects are written, the kick is lost
    close_old_connections()  # as Celery does around each task: a broken connection is dropped
    # When the sweep runs again and again, time moving on past every lease and backoff
    now = timezone.now()
    for step in range(1, 40):
        if not Effect.objects.filter(key__in=keys, status=Effect.Status.PENDING).exists():
            break
        # (the relay, a Celery task, may die or fail: the next sweep is another process)
        with contextlib.suppress(Crash, DatabaseError):
            effects_run(kinds=KINDS, now=now + timedelta(minutes=15 * step))
        close_old_connections()
    note(f"faults fired: {world.injector.fired}")
    for point, _n, fault in world.injector.fired:
        event(f"{fault} at {point}")
    # Then every effect is done, and its action happened exactly once
    done = dict(Effect.objects.filter(key__in=keys).values_list("key", "status"))
    assert done == dict.fromkeys(keys, Effect.Status.DONE)
    for kind, ref, key in zip(kinds, refs, keys, strict=True):
        if kind == ATOMIC:
            # its database write once: rolled back with every try that did not record done
            last = AggregateSequence.objects.get(aggregate="faults-atomic", aggregate_id=ref).last
            assert last == 1, (key, last)
        else:
            # the provider did it once (asked again only with the same idempotency key), and
            # the local record was written once
            assert world.provider.applied[f"faults-{ref}"] == 1, key
            assert world.provider.calls[f"faults-{ref}"] >= 1, key
            assert (
                AggregateSequence.objects.filter(aggregate="faults-local", aggregate_id=ref).count()
                == 1
            )
        # And its tries are on record: one done, the others retried or cut off
        tries = Counter(
            EffectAttempt.objects.filter(effect__key=key).values_list("outcome", flat=True)
        )
        assert tries["done"] == 1, (key, tries)
