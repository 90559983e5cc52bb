"""Group "operators": staff who upload and process recordings (views_recordings).

They need no model permissions: the recording pages check membership of the group
by name, and operators do not use the Django admin.
"""

from django.db import migrations

OPERATORS = "operators"


def create_operators_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name=OPERATORS)


def remove_operators_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=OPERATORS).delete()


class Migration(migrations.Migration):
    dependencies = [("annotation", "0002_groups_triggers")]

    operations = [
        migrations.RunPython(create_operators_group, remove_operators_group),
    ]
