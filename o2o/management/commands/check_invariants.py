import json

from django.core.management.base import BaseCommand, CommandError

from o2o.invariants import check_invariants


class Command(BaseCommand):
    help = (
        "Check that every journal balances, every order/payment pair agrees (past the grace "
        "window), stock is never negative and no effect is pending past its deadline or failed. "
        "Exits non-zero on any problem."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options) -> None:
        report = check_invariants()
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {"ok": report.ok, "problems": report.problems, "attention": report.attention}
                )
            )
        else:
            for check, items in report.problems.items():
                self.stdout.write(f"{check}: {len(items)}")
                for item in items[:20]:
                    self.stdout.write(f"  {item}")
            for check, items in report.attention.items():
                self.stdout.write(f"{check} (for staff): {len(items)}")
            if report.ok:
                self.stdout.write(self.style.SUCCESS("all invariants hold"))
        if not report.ok:
            raise CommandError(f"invariants broken: {report.counts()}")
