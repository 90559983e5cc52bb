from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _after_migrate(sender, using="default", **kwargs) -> None:
    from django.contrib.auth.models import Group, Permission
    from django.db import connections

    from annotation.roles import ADMINS_GROUP
    from registry import sql

    sql.install(connections[using])
    # Admins manage the registry and the retraining schedules in the admin.
    group, _ = Group.objects.using(using).get_or_create(name=ADMINS_GROUP)
    group.permissions.add(
        *Permission.objects.using(using).filter(
            content_type__app_label__in=["registry", "django_celery_beat"]
        )
    )


class RegistryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "registry"
    verbose_name = "SpermGrade model registry"

    def ready(self) -> None:
        post_migrate.connect(
            _after_migrate, sender=self, dispatch_uid="registry_after_migrate"
        )
        from jobs.reaper import kind_register
        from registry.services import lost

        kind_register("run", lost.run_lost)
        kind_register("fold", lost.fold_lost)
        kind_register("register", lost.register_lost)
        kind_register("predict", lost.predict_lost)
