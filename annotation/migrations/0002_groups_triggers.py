"""Groups "experts" and "admins", the settings singleton, and the counting triggers."""

from django.db import migrations

GROUPS = ("experts", "admins")


def create_groups_and_settings(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    for name in GROUPS:
        group_model.objects.get_or_create(name=name)
    apps.get_model("annotation", "SiteSetting").objects.get_or_create(pk=1)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


def install_triggers(apps, schema_editor):
    from annotation import sql

    sql.install(schema_editor.connection)
    sql.recount(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(create_groups_and_settings, remove_groups),
        migrations.RunPython(install_triggers, migrations.RunPython.noop),
    ]
