"""manage.py seed_history [--hosts N --containers M --images K --days D --seed S ...]: a
realistic seeded history for development (tests/support/seed.py).

Development only: it refuses to run with POSTURE_ENV=production, and on a database that
holds hosts it did not seed (a real fleet's history must never be mixed with made-up scans)
unless ``--force``. Seeded hosts are named ``{prefix}-NNN`` with URLs under .fleet.example."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from posture.models import DockerHost

SEEDED_URL = ".fleet.example"


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def _share(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Seed a realistic history of daily scans (development databases only)."

    def add_arguments(self, parser):
        parser.add_argument("--hosts", type=_positive, default=3)
        parser.add_argument("--containers", type=_positive, default=6, help="per host")
        parser.add_argument("--images", type=_positive, default=3, help="image repositories per host")
        parser.add_argument("--days", type=_positive, default=30)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--end", type=date.fromisoformat, help="last seeded day, YYYY-MM-DD (default: yesterday)")
        parser.add_argument("--churn", type=_share, default=0.03, help="share of containers redeployed per day")
        parser.add_argument("--missed", type=_share, default=0.02, help="share of host-days without a scan")
        parser.add_argument("--exceptions", type=int, default=4)
        parser.add_argument("--attestations", type=int, default=3)
        parser.add_argument("--prefix", default="seed", help="host names: PREFIX-000, PREFIX-001, ...")
        parser.add_argument("--workers", type=_positive, default=1, help="processes (PostgreSQL only)")
        parser.add_argument("--force", action="store_true", help="seed even next to hosts it did not make")

    def handle(self, *args, force=False, **opts):
        if settings.PRODUCTION:
            raise CommandError("seed_history makes up scans: it never runs with POSTURE_ENV=production")
        try:
            from tests.support.seed import SeedSpec, host_name, seed
        except ImportError as exc:
            raise CommandError(f"seed_history needs the source checkout's tests/support/seed.py ({exc})") from None
        real = DockerHost.objects.exclude(url__endswith=SEEDED_URL)
        if real.exists() and not force:
            names = ", ".join(real.order_by("name").values_list("name", flat=True)[:5])
            raise CommandError(f"this database has hosts seed_history did not make ({names}...): "
                               "it will not mix made-up history with theirs (--force to do it anyway)")
        if opts["workers"] > 1 and settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
            raise CommandError("--workers needs PostgreSQL (SQLite has one writer)")
        spec = SeedSpec(hosts=opts["hosts"], containers=opts["containers"], images=opts["images"], days=opts["days"],
                        seed=opts["seed"], end=opts["end"], churn=opts["churn"], missed=opts["missed"],
                        exceptions=opts["exceptions"], attestations=opts["attestations"], prefix=opts["prefix"],
                        workers=opts["workers"])
        taken = DockerHost.objects.filter(name__in=[host_name(spec, i) for i in range(spec.hosts)])
        if taken.exists():
            raise CommandError(f"hosts named {spec.prefix}-NNN exist already ({taken.first().name}): "
                               "choose another --prefix")
        result = seed(spec)
        self.stdout.write(
            f"seeded {spec.hosts} hosts x {spec.days} days ({spec.first_day} .. {spec.last_day}): "
            f"{len(result.scans)} scans, {len(result.failed)} failed, {len(result.gaps)} collection gaps, "
            f"{len(result.exceptions)} exceptions, {len(result.attestations)} attestations in {result.seconds:.1f}s")
