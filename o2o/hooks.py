"""After-commit hooks that may fail without consequence: live broadcasts and other best-effort work.

Django 5.2's `transaction.on_commit(partial(...), robust=True)` logs a failure with
`func.__qualname__`, which a `functools.partial` lacks: the logging itself raises, every later hook
of the transaction is skipped and a committed change becomes a 500. `on_commit_safe` registers a
named function instead, which catches and logs its own failure. Effects that must happen are
durable rows, not hooks (CONVENTIONS.md, "Effects").
"""

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

log = logging.getLogger(__name__)


def on_commit_safe(func: Callable[..., Any], /, **kwargs: Any) -> None:
    """Call func(**kwargs) once the current transaction commits (at once outside one); a failure
    is logged and goes no further: it stops no other hook and never reaches the caller."""
    name = getattr(func, "__qualname__", None) or repr(func)

    def after_commit() -> None:
        try:
            func(**kwargs)
        except Exception:
            arguments = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
            log.exception("after-commit %s(%s) failed", name, arguments[:300])

    after_commit.__qualname__ = f"on_commit_safe.<{name}>"
    # As on a functools.partial: tests read what a hook will do (what would be broadcast).
    after_commit.func, after_commit.keywords = func, kwargs  # type: ignore[attr-defined]
    transaction.on_commit(after_commit)
