from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _reinstall_triggers(sender, using="default", **kwargs) -> None:
    # SQLite drops a table's triggers when a migration rebuilds the table; putting
    # them back after every migrate keeps the distribution counts maintained.
    from django.db import connections

    from annotation import sql

    sql.install(connections[using])
    _grant_admin_permissions(using)


def _grant_admin_permissions(using: str) -> None:
    # The role groups come from data migrations; a flush (tests, `manage.py flush`)
    # empties the table and is followed by post_migrate, so they are ensured here.
    # Only "admins" holds model permissions: everything in this app, users, groups
    # and API tokens (permissions exist only after migrate, hence here). Experts and
    # operators are checked by group name in the views and need none.
    from django.contrib.auth.models import Group, Permission

    from annotation.roles import ADMINS_GROUP, ROLE_GROUPS

    for name in ROLE_GROUPS:
        Group.objects.using(using).get_or_create(name=name)
    group = Group.objects.using(using).get(name=ADMINS_GROUP)
    wanted = Permission.objects.using(using).filter(
        content_type__app_label__in=["annotation", "auth", "authtoken"]
    )
    group.permissions.add(*wanted)


class AnnotationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "annotation"
    verbose_name = "SpermGrade annotation"

    def ready(self) -> None:
        post_migrate.connect(
            _reinstall_triggers, sender=self, dispatch_uid="annotation_triggers"
        )
        from annotation.services.jobs import job_lost
        from annotation.services.panel_claim import statistics_lost
        from annotation.services.recordings import preview_lost, recording_lost
        from jobs.reaper import kind_register

        kind_register("job", job_lost)
        kind_register("recording", recording_lost)
        kind_register("preview", preview_lost)
        kind_register("statistics", statistics_lost)
