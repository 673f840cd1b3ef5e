"""manage.py run: the run command (bin/run calls it; the work is in posture.launcher).

Started through manage.py rather than ``python -m posture.launcher`` because importing the
posture package loads the settings: a missing key or bad value would be a traceback there,
while manage.py reports it in one line."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Migrate, set up, then serve the web app with a Celery worker and beat (what bin/run does)."
    requires_system_checks: list = []

    def handle(self, *args, **options) -> None:
        from posture.launcher import main

        code = main()
        if code:
            sys.exit(code)
