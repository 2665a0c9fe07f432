"""Real processes for the fault tests: a private redis-server on a free port, uvicorn serving the app
(and so the sandbox provider) on the test database, a Celery worker on the private Redis, and the
faults themselves (SIGKILL, pg_terminate_backend). Every process is started by the test and
stopped by it; the shared PostgreSQL and Redis are never touched beyond the test database.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg2

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
ARTIFACTS = ROOT / "test-artifacts" / "faults"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], object], *, timeout: float, every: float = 0.05, what: str = ""):
    """Poll `check` until it returns something truthy (returned), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        time.sleep(every)


def database_params() -> dict:
    """Where the test database is (inside a test: settings point at it)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    return {
        "dbname": db["NAME"],
        "user": db["USER"] or "postgres",
        "password": db["PASSWORD"] or None,
        "host": db["HOST"] or "127.0.0.1",
        "port": int(db["PORT"] or 5432),
    }


def database_url() -> str:
    db = database_params()
    auth = quote(db["user"]) + (f":{quote(db['password'])}" if db["password"] else "")
    return f"postgres://{auth}@{db['host']}:{db['port']}/{db['dbname']}"


def terminate_backends(*, exclude_pids: tuple[int, ...] = ()) -> int:
    """pg_terminate_backend every other session on the test database (the web's and the worker's);
    how many were terminated. Runs on its own connection (to the maintenance database)."""
    db = database_params()
    conn = psycopg2.connect(**{**db, "dbname": "postgres"})
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid() AND pid <> ALL(%s)",
                [db["dbname"], list(exclude_pids)],
            )
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def own_backend_pid() -> int:
    """The PostgreSQL backend of this process's Django connection (opened if need be)."""
    from django.db import connection

    connection.ensure_connection()
    return connection.connection.info.backend_pid


# --- processes ----------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _stop(proc: subprocess.Popen | None, *, timeout: float = 10) -> None:
    """Stop a process we started (and its process group): TERM, then KILL."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class PrivateRedis:
    """A redis-server of our own on a free port (no persistence): the broker, cache and channel
    layer of the processes a fault test starts."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def pong() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(pong, timeout=10, what=f"redis-server on {self.port}")
        return self

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


def stack_env(*, redis_url: str, web_url: str, **extra: str) -> dict[str, str]:
    """The environment of every process a fault test starts: the test database, the private
    Redis, tasks sent to the broker (not eager), the sandbox provider at the web server."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "o2o.settings",
        "O2O_IGNORE_DOTENV": "true",
        "DJANGO_ENV": "development",
        "DEBUG": "false",
        "DATABASE_URL": database_url(),
        "CONN_MAX_AGE": "0",
        "REDIS_URL": redis_url,
        "CACHE_PREFIX": "o2o-faults",
        "CHANNELS_PREFIX": "o2o-faults",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "INPROCESS_SCHEDULER": "false",
        "SANDBOX_BASE_URL": web_url,
        "PLATFORM_BASE_URL": web_url,
        "SANDBOX_WEBHOOK_DUPLICATE_RATE": "0",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "THROTTLE_ANON": "100000/min",
        "THROTTLE_USER": "100000/min",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


class Web:
    """uvicorn serving the app through tests/faults/fault_asgi.py (the provider's capture and void
    can be held; see there). Several may run side by side: each has its `name` (its log and control
    files) and its port, kept across a restart."""

    def __init__(self, *, redis_url: str, workdir: Path, name: str = "web", **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws = f"ws://127.0.0.1:{self.port}"
        self.redis_url = redis_url
        self.env = env
        self.control = workdir / f"{name}-control.json"
        self.hits_file = self.control.with_suffix(".hits")
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Web:
        return self.launch().wait_up()

    def launch(self) -> Web:
        """Start uvicorn (it loads Django meanwhile: see wait_up)."""
        self.hold(0)
        env = stack_env(
            redis_url=self.redis_url, web_url=self.url, FAULT_CONTROL=str(self.control), **self.env
        )
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "python"), "-m", "uvicorn", "tests.faults.fault_asgi:application"]
            + ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_up(self) -> Web:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"uvicorn exited:\n{self.log.read_text()[-3000:]}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=40, every=0.2, what="uvicorn")
        return self

    def hold(self, delay: float, when: str = "before") -> None:
        """Hold the provider's capture and void calls `delay` s, `before` or `after` the work."""
        self.control.write_text(json.dumps({"delay": delay, "when": when}))
        self.hits_file.write_text("")

    def hits(self) -> list[tuple[str, str]]:
        """(action, intent) of each capture / void call that reached the provider since hold()."""
        lines = self.hits_file.read_text().splitlines()
        return [tuple(line.split()[1:3]) for line in lines if line.strip()]

    def kill(self) -> None:
        """SIGKILL the server: gone at once with its sockets, like a crashed or OOM-killed
        process, nothing closed on its way out."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


class Worker:
    """`celery -A o2o worker` on the private Redis: one prefork child, all three queues."""

    def __init__(self, *, env: dict[str, str], log: Path, name: str) -> None:
        self.env, self.log, self.name = env, log, name
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        return self.launch().wait_ready()

    def launch(self) -> Worker:
        """Start the process (it loads Django meanwhile: see wait_ready)."""
        self.log.write_text("")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "celery"), "-A", "o2o", "worker", "-Q", "money,notifications,bulk"]
            + ["-c", "1", "--pool", "prefork", "-l", "info", "-n", f"{self.name}@%h"]
            + ["--without-mingle", "--without-gossip", "--without-heartbeat"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_ready(self) -> Worker:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the worker exited:\n{self.log.read_text()[-3000:]}")
            return " ready." in self.log.read_text() and bool(self.children())

        wait_until(ready, timeout=40, every=0.1, what="the celery worker")
        return self

    def children(self) -> list[int]:
        return _children(self.proc.pid) if self.proc is not None else []

    def kill(self) -> None:
        """SIGKILL the pool child (the one running the task), then the worker itself: gone at
        once, like an OOM kill, with no chance to finish or requeue anything."""
        for child in self.children():
            os.kill(child, signal.SIGKILL)
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Warm shutdown: the task running is finished first."""
        _stop(self.proc, timeout=30)
        self.proc = None


class Broker:
    """Sends tasks to the private broker as beat would (the test's own Celery app is eager)."""

    def __init__(self, redis_url: str) -> None:
        from celery import Celery

        self.app = Celery("faults-client", broker=redis_url, set_as_current=False)

    def send(self, task: str, *, queue: str, **kwargs) -> None:
        self.app.send_task(task, kwargs=kwargs, queue=queue)

    def close(self) -> None:
        self.app.close()
