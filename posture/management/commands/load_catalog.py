"""manage.py load_catalog: sync framework catalogs and checks into the database."""

from django.core.management.base import BaseCommand

from posture.jobs.catalog import sync_catalogs


class Command(BaseCommand):
    help = "Load the CIS Docker / SOC 2 catalogs and the check registry into the database (idempotent)."

    def handle(self, *args, **opts):
        counts = sync_catalogs()
        self.stdout.write(f"catalogs loaded: {counts['frameworks']} frameworks, {counts['controls']} controls, "
                          f"{counts['checks']} checks")
