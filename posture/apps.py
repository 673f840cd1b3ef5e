from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _load_catalogs(sender, **kwargs) -> None:
    from posture.jobs.catalog import sync_catalogs

    sync_catalogs()


class PostureConfig(AppConfig):
    name = "posture"
    verbose_name = "posture"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Catalogs are data files: every migrate leaves the database in step with them.
        post_migrate.connect(_load_catalogs, sender=self, dispatch_uid="posture-load-catalogs")
