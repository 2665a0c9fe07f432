"""Durable effects: work that must follow a committed change is a row written in that change.

    with transaction.atomic():
        ...the change...
        effect_add(kind="order.capture", key=f"order:{order.pk}:capture", payload={"order_id": ...})

The row commits with the change or not at all. After the commit the relay is kicked (the effect
runs at once, in-process when Celery is eager, else as a task on the handler's queue); beat sweeps
every few seconds (`effects_sweep`), so nothing depends on an in-memory callback or a broker
message. A relay claims due rows with a lease (`SELECT ... FOR UPDATE SKIP LOCKED`, so two relays
never run the same row at once), runs the handler outside any transaction, and records the try.
A handler that raises is tried again with backoff (or on its own schedule); `GiveUp` stops at
once, and running out of tries marks the row FAILED for staff (admin, check_invariants). A relay
killed mid-run leaves its lease to run out: the next sweep runs the effect again. So a handler
runs at least once and must be idempotent; the money handlers are (the gateway sees an idempotency
key derived from the effect's subject, and every status change is a guarded UPDATE), and handlers
declared `atomic` mark their row done in their own transaction, so they take effect exactly once.

Why not django-celery-outbox: it relays *task sends* (a row is done once the message is on the
broker), so a task that fails after that is lost again; and it pulls in structlog, sentry and
datadog. Here a row is done only when its effect succeeded.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from .batching import WindowBatcher
from .hooks import on_commit_safe

log = logging.getLogger(__name__)

MAX_ERROR = 2000


class GiveUp(Exception):
    """Raised by a handler: retrying can't help (refused for good); the row becomes FAILED."""


class LeaseLost(Exception):
    """An atomic handler's try finished after its lease ran out (another relay has the effect)."""


class Defer(Exception):
    """Raised by a handler: not yet (something must happen first); try again after `after`
    seconds without counting a try."""

    def __init__(self, message: str = "", *, after: float = 5.0) -> None:
        super().__init__(message)
        self.after = after


@dataclass(frozen=True)
class Handler:
    kind: str
    func: Callable[[dict], object]
    queue: str = "bulk"
    # Delays (seconds) after the 1st, 2nd, ... failed try; None: exponential backoff.
    schedule: tuple[float, ...] | None = None
    max_attempts: int = 25
    backoff_base: float = 2.0
    backoff_cap: float = 600.0
    lease: timedelta = timedelta(seconds=120)
    deadline: timedelta = timedelta(hours=1)
    atomic: bool = False
    tags: tuple[str, ...] = field(default=())

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        if self.schedule is not None:
            return self.schedule[min(attempt, len(self.schedule)) - 1]
        base = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security


REGISTRY: dict[str, Handler] = {}


def effect_handler(kind: str, **options) -> Callable:
    """Register the function that carries out effects of `kind`. It takes the payload (a dict).
    Options: queue, schedule, max_attempts, backoff_base, backoff_cap, lease, deadline, atomic."""

    def register(func: Callable[[dict], object]) -> Callable[[dict], object]:
        if kind in REGISTRY and REGISTRY[kind].func is not func:
            raise RuntimeError(f"two handlers for effect kind {kind!r}")
        REGISTRY[kind] = Handler(kind=kind, func=func, **options)
        return func

    return register


def handler_for(kind: str) -> Handler | None:
    return REGISTRY.get(kind)


# --- writing effects (inside the change's transaction) --------------------------------------------


def effect_add(
    *, kind: str, key: str, payload: dict | None = None, run_at: datetime | None = None
) -> None:
    """Write an effect in the current transaction (required). A key already written (by this
    change repeated, or a concurrent one) is kept as it is: each key runs once."""
    from .models import Effect

    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        raise RuntimeError("effect_add belongs inside the transaction of the change")
    handler = REGISTRY.get(kind)
    now = timezone.now()
    key = key[:200]
    Effect.objects.bulk_create(
        [
            Effect(
                kind=kind,
                key=key,
                payload=payload or {},
                next_attempt_at=run_at or now,
                deadline=(run_at or now) + (handler.deadline if handler else timedelta(hours=1)),
            )
        ],
        ignore_conflicts=True,
    )
    if run_at is None or run_at <= now:
        # A failed kick is only logged: the row is committed and the sweep runs it.
        on_commit_safe(effects_kick, keys={key: kind})


def effects_kick(keys: dict[str, str]) -> None:
    """Run now (eager Celery: the embedded default and the tests), or hand the keys to the
    process's kick batcher, which sends one relay message per queue per KICK_WINDOW_S."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        effects_run(keys=list(keys))
        return
    for key, kind in keys.items():
        handler = REGISTRY.get(kind)
        batcher.add(handler.queue if handler else "bulk", key)


class KickBatcher(WindowBatcher):
    """Coalesces the kicks of a process: committed effects are announced to their queue's
    relay in one message per queue per window, not one each (a transition writes 3-4 effects;
    each Celery publish costs ~2 ms of CPU in the web process). A kick lost with the process
    costs nothing but time: the sweep runs every due effect within seconds."""

    thread_name = "o2o-effect-kicks"

    def __init__(self, window_s: float = 0.005) -> None:
        super().__init__(window_s)
        self.sent = 0

    def merge(self, old: list[str] | None, new: str) -> list[str]:
        return [*(old or ()), new]

    def deliver(self, batch: dict) -> None:
        from .tasks import effects_relay

        for queue, keys in batch.items():
            try:
                effects_relay.apply_async(kwargs={"keys": keys}, queue=queue)
                self.sent += 1
            except Exception:  # noqa: BLE001 - the broker is away: the sweep runs them
                log.warning(
                    "effects: %d kicks to %s not sent; the sweep runs them", len(keys), queue
                )


batcher = KickBatcher()


# --- events with a per-aggregate sequence ----------------------------------------------------------


def sequence_next(*, aggregate: str, aggregate_id: int) -> int:
    """The next sequence number of an aggregate, in the current transaction (the row lock of the
    upsert orders concurrent writers of the same aggregate)."""
    from .models import AggregateSequence

    table = AggregateSequence._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (aggregate, aggregate_id, last) VALUES (%s, %s, 1) "  # noqa: S608
            f"ON CONFLICT (aggregate, aggregate_id) DO UPDATE SET last = {table}.last + 1 "
            "RETURNING last",
            [aggregate, aggregate_id],
        )
        return int(cursor.fetchone()[0])


EVENT_KIND = "event.publish"


def event_emit(*, type: str, aggregate: str, aggregate_id: int, data: dict) -> int:  # noqa: A002
    """Record a domain event (for partners) in the current transaction: an effect of kind
    `event.publish` whose payload carries the event with its sequence number within its aggregate.
    `data` must survive a JSON round trip and never hold an exact position. Returns the sequence."""
    seq = sequence_next(aggregate=aggregate, aggregate_id=aggregate_id)
    event_id = f"evt_{aggregate}_{aggregate_id}_{seq}"
    effect_add(
        kind=EVENT_KIND,
        key=event_id,
        payload={
            "id": event_id,
            "type": type,
            "aggregate": aggregate,
            "aggregate_id": aggregate_id,
            "sequence": seq,
            "occurred_at": timezone.now().isoformat(),
            "data": data,
        },
    )
    return seq


# --- the relay ---------------------------------------------------------------------------------------


def _due(now: datetime):
    from .models import Effect

    return Effect.objects.filter(status=Effect.Status.PENDING, next_attempt_at__lte=now).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now)
    )


def _claim(*, keys, kinds, limit: int, now: datetime, exclude: Iterable[int] = ()) -> list:
    from .models import Effect, EffectAttempt

    with transaction.atomic():
        rows = _due(now)
        if keys is not None:
            rows = rows.filter(key__in=list(keys))
        if kinds is not None:
            rows = rows.filter(kind__in=list(kinds))
        if exclude:
            rows = rows.exclude(pk__in=list(exclude))
        claimed = list(
            rows.select_for_update(skip_locked=True).order_by("next_attempt_at", "pk")[:limit]
        )
        # A try's number goes on from the effect's history: staff running it again
        # (effect_retry_now) give it a fresh count of tries, not a second try number 1.
        last_try = dict(
            EffectAttempt.objects.filter(effect__in=claimed)
            .values_list("effect_id")
            .annotate(n=Max("number"))
            .order_by()
        )
        for effect in claimed:
            handler = REGISTRY.get(effect.kind)
            lease = handler.lease if handler else timedelta(seconds=120)
            effect.attempts += 1
            effect.try_number = last_try.get(effect.pk, 0) + 1
            effect.locked_until = now + lease
            Effect.objects.filter(pk=effect.pk).update(
                attempts=F("attempts") + 1, locked_until=effect.locked_until
            )
        EffectAttempt.objects.bulk_create(
            [EffectAttempt(effect=e, number=e.try_number, started_at=now) for e in claimed]
        )
    return claimed


def _finish(effect, *, status: str | None, outcome: str, error: str = "", after: float = 0) -> bool:
    """Record the try's outcome, if the lease is still ours (same count of tries); whether it was."""
    from .models import Effect, EffectAttempt

    now = timezone.now()
    fields: dict = {"locked_until": None, "last_error": error[:MAX_ERROR]}
    if status == Effect.Status.DONE:
        fields.update(status=status, done_at=now)
    elif status == Effect.Status.FAILED:
        fields.update(status=status)
    else:
        fields.update(next_attempt_at=now + timedelta(seconds=after))
    if outcome == "deferred":
        fields["attempts"] = F("attempts") - 1
    mine = Effect.objects.filter(
        pk=effect.pk, status=Effect.Status.PENDING, attempts=effect.attempts
    ).update(**fields)
    attempt = EffectAttempt.objects.filter(effect_id=effect.pk, number=effect.try_number)
    if outcome == "deferred":
        attempt.delete()
    elif mine:
        attempt.update(finished_at=now, outcome=outcome, error=error[:MAX_ERROR])
    return bool(mine)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR]


def _heal_connection() -> None:
    """After a database error the connection may be broken (server restarted, backend killed):
    drop it so the next query reconnects."""
    try:
        if connection.in_atomic_block:
            return
        if connection.connection is not None and not connection.is_usable():
            connection.close()
    except Exception:  # noqa: BLE001
        connection.close()


def _execute(effect) -> str:
    from .models import Effect

    handler = REGISTRY.get(effect.kind)
    if handler is None:
        _finish(effect, status=None, outcome="retry", error="no handler", after=60)
        return "retry"
    try:
        if handler.atomic:
            with transaction.atomic():
                handler.func(effect.payload)
                if not _finish(effect, status=Effect.Status.DONE, outcome="done"):
                    # Our lease ran out and another relay took the effect over: its try counts,
                    # ours is rolled back, so the effect still takes place once.
                    raise LeaseLost(f"effect {effect.key}: lease lost; this try is rolled back")
            return "done"
        handler.func(effect.payload)
    except Defer as exc:
        _safe_finish(effect, status=None, outcome="deferred", error=str(exc), after=exc.after)
        return "deferred"
    except GiveUp as exc:
        log.error("effect %s %s given up: %s", effect.kind, effect.key, exc)
        _safe_finish(effect, status=Effect.Status.FAILED, outcome="failed", error=_describe(exc))
        return "failed"
    except Exception as exc:  # noqa: BLE001 - every other failure is tried again
        if isinstance(exc, DatabaseError):
            _heal_connection()
        if effect.attempts >= handler.max_attempts:
            log.error(
                "effect %s %s failed %s times: %r", effect.kind, effect.key, effect.attempts, exc
            )
            _safe_finish(
                effect, status=Effect.Status.FAILED, outcome="failed", error=_describe(exc)
            )
            return "failed"
        after = handler.delay_after(effect.attempts)
        log.warning(
            "effect %s %s try %s failed (%s); again in %.0f s",
            effect.kind,
            effect.key,
            effect.attempts,
            _describe(exc),
            after,
        )
        _safe_finish(effect, status=None, outcome="retry", error=_describe(exc), after=after)
        return "retry"
    _safe_finish(effect, status=Effect.Status.DONE, outcome="done")
    return "done"


def _safe_finish(effect, **kwargs) -> None:
    try:
        _finish(effect, **kwargs)
    except DatabaseError:
        # The database went away after the handler ran: the lease runs out and the effect runs
        # again (handlers are idempotent).
        _heal_connection()
        log.warning("effect %s: outcome not recorded; it runs again", effect.key, exc_info=True)


def effects_run(
    *,
    keys: Iterable[str] | None = None,
    kinds: Iterable[str] | None = None,
    limit: int = 50,
    now: datetime | None = None,
    budget_s: float | None = None,
) -> dict[str, int]:
    """Run up to `limit` due effects (only `keys` / `kinds` when given), each at most once.
    Returns how many ended done / retry / failed / deferred.

    Each effect is claimed just before it runs, one at a time: a relay that dies (SIGKILL, time
    limit) leaves only the effect it was running leased until the lease runs out, never a batch
    it had claimed but not started (bench/faults.py found a killed sweep stranding 47).
    `budget_s`: stop claiming after this many seconds."""
    counts = {"done": 0, "retry": 0, "failed": 0, "deferred": 0}
    ran: list[int] = []
    # A relay stops claiming once its time budget is spent (a task's time limit must never cut
    # an effect short): what is left is the next sweep's.
    stop_at = time.monotonic() + budget_s if budget_s is not None else None
    while len(ran) < limit and (stop_at is None or time.monotonic() < stop_at):
        claimed = _claim(keys=keys, kinds=kinds, limit=1, now=now or timezone.now(), exclude=ran)
        if not claimed:
            break
        ran.append(claimed[0].pk)
        counts[_execute(claimed[0])] += 1
    return counts


def effects_due_queues(*, now: datetime | None = None) -> dict[str, int]:
    """How many effects are due per handler queue (the sweep sends one relay per queue)."""
    from django.db.models import Count

    queues: dict[str, int] = {}
    for kind, n in (
        _due(now or timezone.now()).values_list("kind").annotate(n=Count("pk")).order_by()
    ):
        handler = REGISTRY.get(kind)
        queue = handler.queue if handler else "bulk"
        queues[queue] = queues.get(queue, 0) + n
    return queues


def kinds_of_queue(queue: str) -> list[str]:
    return [kind for kind, handler in REGISTRY.items() if handler.queue == queue]


def effects_overdue(*, now: datetime | None = None):
    """Effects still pending past their deadline, or given up (check_invariants, admin)."""
    from .models import Effect

    now = now or timezone.now()
    return Effect.objects.filter(
        Q(status=Effect.Status.PENDING, deadline__lt=now) | Q(status=Effect.Status.FAILED)
    )


def effect_retry_now(*, effect_id: int) -> bool:
    """Staff: run a FAILED (or waiting) effect again now, with a fresh count of tries. One a relay
    is running right now (its lease still live) is left to it: two runs at once are what the lease
    prevents."""
    from .models import Effect

    now = timezone.now()
    return bool(
        Effect.objects.filter(pk=effect_id)
        .exclude(status=Effect.Status.DONE)
        .exclude(status=Effect.Status.PENDING, locked_until__gt=now)
        .update(
            status=Effect.Status.PENDING,
            next_attempt_at=timezone.now(),
            locked_until=None,
            attempts=0,
            deadline=timezone.now() + timedelta(hours=1),
        )
    )


def effects_purge(*, older_than: timedelta = timedelta(days=7), batch: int = 5_000) -> int:
    """Delete effects done more than `older_than` ago, in bounded batches (their tries go with
    them). Pending and failed ones are kept: they are still owed, or waiting for staff."""
    from .models import Effect

    cutoff = timezone.now() - older_than
    deleted = 0
    while True:
        ids = list(
            Effect.objects.filter(status=Effect.Status.DONE, done_at__lt=cutoff).values_list(
                "pk", flat=True
            )[:batch]
        )
        if not ids:
            return deleted
        deleted += (
            Effect.objects.filter(pk__in=ids, status=Effect.Status.DONE)
            .delete()[1]
            .get("o2o.Effect", 0)
        )
