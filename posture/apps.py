from django.apps import AppConfig


class PostureConfig(AppConfig):
    name = "posture"
    verbose_name = "posture"
    default_auto_field = "django.db.models.BigAutoField"
