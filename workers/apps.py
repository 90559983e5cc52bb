from django.apps import AppConfig


class WorkersConfig(AppConfig):
    """Registered only so ``workers/management/commands`` are found by manage.py."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "workers"
    verbose_name = "SpermGrade workers"
