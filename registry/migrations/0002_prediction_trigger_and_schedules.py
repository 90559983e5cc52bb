"""The prediction immutability trigger and the two retraining schedules
(django-celery-beat rows, editable under Periodic tasks in the admin)."""

import json

from django.db import migrations


def install_trigger(apps, schema_editor):
    from registry import sql

    sql.install(schema_editor.connection)


def schedules_create(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour="2",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    every_10_min, _ = IntervalSchedule.objects.get_or_create(every=10, period="minutes")
    PeriodicTask.objects.get_or_create(
        name="Retrain nightly (02:00 UTC) when votes changed",
        defaults={
            "task": "workers.tasks.retrain_when_due",
            "crontab": nightly,
            "kwargs": json.dumps({"trigger": "nightly", "profile": "clinic"}),
            "queue": "cpu",
            "description": "Starts a run of the profile in kwargs if any vote "
            "changed since the last snapshot and no run is active.",
        },
    )
    PeriodicTask.objects.get_or_create(
        name="Retrain when 20 clips became fully voted",
        defaults={
            "task": "workers.tasks.retrain_when_due",
            "interval": every_10_min,
            "kwargs": json.dumps(
                {"trigger": "votes", "profile": "clinic", "min_new_clips": 20}
            ),
            "queue": "cpu",
            "description": "Checked every 10 minutes (a few counts): starts a run "
            "once min_new_clips clips reached VOTES_PER_CLIP since the last "
            "snapshot.",
        },
    )


def schedules_delete(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task="workers.tasks.retrain_when_due").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(install_trigger, migrations.RunPython.noop),
        migrations.RunPython(schedules_create, schedules_delete),
    ]
