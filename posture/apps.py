from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _load_catalogs(sender, **kwargs) -> None:
    from posture.jobs.catalog import sync_catalogs

    sync_catalogs()


def _ensure_role_groups(sender, **kwargs) -> None:
    """The operator and auditor groups exist, ready to put users in (admin: superusers)."""
    from django.contrib.auth.models import Group

    from posture import roles

    for name in (roles.OPERATOR, roles.AUDITOR):
        Group.objects.get_or_create(name=name)


def _ensure_current_state(sender, apps=None, **kwargs) -> None:
    """The read model of posture now is in step after every migrate (and flush): a missing
    state (a flushed database, a catalog whose severities changed) is rebuilt here, set-based,
    and a stale one re-applied, rather than by the first page someone opens."""
    from posture.jobs import current

    try:  # migrated back to before the read model (migration 0009): nothing to keep in step
        if apps is not None:
            apps.get_model("posture", "CurrentState")
    except LookupError:
        return
    current.ensure_state()


class PostureConfig(AppConfig):
    name = "posture"
    verbose_name = "posture"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Catalogs are data files: every migrate leaves the database in step with them.
        post_migrate.connect(_load_catalogs, sender=self, dispatch_uid="posture-load-catalogs")
        post_migrate.connect(_ensure_role_groups, sender=self, dispatch_uid="posture-role-groups")
        # After the catalogs (a severity change drops the read model's state): rebuild it now.
        post_migrate.connect(_ensure_current_state, sender=self, dispatch_uid="posture-current-state")
