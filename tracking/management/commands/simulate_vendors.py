import time

from django.core.management.base import BaseCommand
from django.utils import timezone

from tracking.simulator import Simulation


class Command(BaseCommand):
    help = "Move the approved demo vendors along routes, through the real ping_record path."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=5.0, help="Seconds between pings.")
        parser.add_argument("--steps", type=int, default=0, help="Stop after N steps (0: never).")

    def handle(self, *args, **options):
        sim = Simulation(interval_s=options["interval"])
        self.stdout.write(f"Simulating {len(sim.riders)} vendors every {options['interval']}s.")
        step = 0
        while not options["steps"] or step < options["steps"]:
            started = time.monotonic()
            counts = sim.step(timezone.now())
            step += 1
            self.stdout.write(
                f"step {step}: {counts['accepted']} accepted, {counts['rejected']} rejected"
            )
            if options["steps"] and step >= options["steps"]:
                break  # done: no point waiting for a step that will not come
            time.sleep(max(0.0, options["interval"] - (time.monotonic() - started)))
