"""manage.py verify_chain [NAME]: kept as an alias of ``manage.py verify [--host NAME]``."""

from __future__ import annotations

from posture.management.commands.verify import Command as Verify


class Command(Verify):
    help = "Alias of 'verify': evidence chains and verdicts of every host (or NAME); exit 1 if tampered."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="one host (default: all)")

    def handle(self, *args, name=None, **opts):
        return super().handle(host=name)
