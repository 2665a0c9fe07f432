from django.core.management.base import BaseCommand

from insights.summaries import summaries_rebuild


class Command(BaseCommand):
    help = "Rebuild the sales and miss summaries from the whole record (one transaction)."

    def handle(self, *args, **options):
        counts = summaries_rebuild()
        self.stdout.write(
            "summaries rebuilt: {sales_rows} sales rows, {buyer_rows} buyer rows, "
            "{miss_rows} miss rows".format(**counts)
        )
