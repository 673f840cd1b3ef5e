"""manage.py create_token USER --name N [--expires-days D]: a personal API token for scripts and
bootstrap, printed once on stdout (only its hash is stored; it cannot be shown again).

Validation and the ``token.created`` audit event (actor ``cli``) are those of the API and the
/tokens/ page (posture.jobs.tokens.create_token). Exit 1 with a one-line reason when the user
is unknown, inactive or has no posture role, or a value is bad; nothing is written then."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from posture.jobs.tokens import EXPIRY_MAX_DAYS, create_token


class Command(BaseCommand):
    help = "Create a personal API token for USER and print it (once)."

    def add_arguments(self, parser):
        parser.add_argument("user", help="user name of the token's owner (the token acts with their roles)")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. 'nightly export'")
        parser.add_argument("--expires-days", type=int, metavar="D",
                            help=f"days until it stops working, 1 to {EXPIRY_MAX_DAYS} (default: until revoked)")

    def handle(self, *args, user: str, name: str, expires_days: int | None, **opts):
        User = get_user_model()
        try:
            owner = User.objects.get(**{User.USERNAME_FIELD: user})
        except User.DoesNotExist:
            raise CommandError(f"no user named {user!r}") from None
        try:
            new = create_token(owner, name, expires_in_days=expires_days, actor_label="cli")
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        except PermissionDenied:
            raise CommandError(f"{owner.get_username()} has no posture role: add the account to the operator or "
                               "auditor group (or make it a superuser) first") from None
        self.stdout.write(new.token)
        expires = f", expires {new.row.expires_at:%Y-%m-%d %H:%M} UTC" if new.row.expires_at else ""
        self.stderr.write(f"token {new.row.display_prefix} ({new.row.name}) for {owner.get_username()}{expires}; "
                          "shown only now: store it")
