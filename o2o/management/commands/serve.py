"""Serve the product: uvicorn (HTTP + websockets) on one ASGI app, plus, on the embedded default,
the in-process scheduler that stands in for Celery beat."""

import os

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

from o2o.scheduler import InProcessScheduler


class Command(BaseCommand):
    help = "Serve HTTP and websockets with uvicorn; runs periodic work in-process when embedded."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--reload", action="store_true", help="Restart on code changes.")
        parser.add_argument(
            "--simulate",
            action="store_true",
            help="Move the demo vendors in this process (the in-memory channel layer needs that).",
        )

    def handle(self, *args, **options):
        # The sandbox gateway is served by this very server: unless told otherwise, the platform
        # calls it, and it sends webhooks, at the address being served (`make demo PORT=…`).
        host = options["host"]
        if host in ("0.0.0.0", "::"):  # noqa: S104 - served on every interface: call loopback
            host = "127.0.0.1"
        here = f"http://{host}:{options['port']}"
        for name in ("SANDBOX_BASE_URL", "PLATFORM_BASE_URL"):
            if name not in os.environ:
                os.environ[name] = here  # for a --reload child process
                setattr(settings, name, here)
        scheduler = None
        if settings.INPROCESS_SCHEDULER:
            scheduler = InProcessScheduler()
            scheduler.start()
            self.stdout.write(
                f"In-process scheduler: {len(scheduler.schedule)} periodic job(s) "
                "(Celery beat's schedule, run here because there is no broker)."
            )
        simulator = None
        if options["simulate"]:
            from tracking.simulator import SimulatorThread

            simulator = SimulatorThread()
            simulator.start()
            self.stdout.write("Simulating the demo vendors' rounds (pings every 5 s).")
        self.stdout.write(f"Serving on http://{options['host']}:{options['port']}/")
        try:
            uvicorn.run(
                "o2o.asgi:application",
                host=options["host"],
                port=options["port"],
                reload=options["reload"],
                log_level="info",
                proxy_headers=True,
                ws_ping_interval=20,
                ws_per_message_deflate=settings.WS_PER_MESSAGE_DEFLATE,
                timeout_graceful_shutdown=settings.SHUTDOWN_TIMEOUT_S,
            )
        finally:
            for thread in (scheduler, simulator):
                if thread:
                    thread.stop()
