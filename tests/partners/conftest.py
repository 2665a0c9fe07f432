"""Shared pieces of the partner tests: a real HTTP server on 127.0.0.1 that records what it is
sent and answers what the test chooses, and helpers that emit, publish and deliver events through
the real effects relay."""

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction

from o2o.effects import EVENT_KIND, effects_run, event_emit
from partners.services import DELIVER_KIND, DISABLED_EMAIL_KIND

_ids = itertools.count(900_001)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """A partner's endpoint. `answers` are used in turn (then `default`), unless `respond` (a
    function of the request) decides."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: list[Answer] = []
        self.default = Answer()
        self.respond: Callable[[Received], Answer | int] | None = None
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                got = Received(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                )
                answer = receiver._answer(got)
                time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def _answer(self, got: Received) -> Answer:
        with self._lock:
            self.requests.append(got)
            if self.respond is not None:
                answer = self.respond(got)
            elif self.answers:
                answer = self.answers.pop(0)
            else:
                answer = self.default
        return Answer(status=answer) if isinstance(answer, int) else answer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def ids(self) -> list[str]:
        return [r.id for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def emit(
    *,
    type: str = "order.placed",  # noqa: A002
    aggregate: str = "order",
    aggregate_id: int | None = None,
    data: dict | None = None,
) -> str:
    """Emit one event as a service does (inside its transaction); returns the event id."""
    aggregate_id = aggregate_id or next(_ids)
    with transaction.atomic():
        seq = event_emit(type=type, aggregate=aggregate, aggregate_id=aggregate_id, data=data or {})
    return f"evt_{aggregate}_{aggregate_id}_{seq}"


def publish() -> dict[str, int]:
    """Run the due `event.publish` effects: events stored, deliveries fanned out."""
    return effects_run(kinds=[EVENT_KIND])


def deliver(now: datetime | None = None) -> dict[str, int]:
    """Run the deliveries due by `now`."""
    return effects_run(kinds=[DELIVER_KIND], now=now)


def send_emails() -> dict[str, int]:
    return effects_run(kinds=[DISABLED_EMAIL_KIND])
