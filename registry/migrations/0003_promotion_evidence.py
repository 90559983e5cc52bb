"""An automatic promotion decision keeps the paired comparison it rested on."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0002_prediction_trigger_and_schedules"),
    ]

    operations = [
        migrations.AddField(
            model_name="versionevent",
            name="evidence",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text=(
                    "an automatic decision's paired comparison with the version "
                    "active then (registry.comparison)"
                ),
            ),
        ),
    ]
