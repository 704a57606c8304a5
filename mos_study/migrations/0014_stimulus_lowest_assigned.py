"""Partial indexes a session start reads through (issue 17): the test stimuli by (study, assigned, id), fewest
assigned first, and the calibration and gold stimuli by study."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mos_study", "0013_metric_value"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="stimulus",
            index=models.Index(
                condition=models.Q(("is_calibration", False), ("is_gold", False)),
                fields=["study", "assigned", "id"],
                name="stimulus_test_by_assigned",
            ),
        ),
        migrations.AddIndex(
            model_name="stimulus",
            index=models.Index(
                condition=models.Q(("is_calibration", True), ("is_gold", True), _connector="OR"),
                fields=["study"],
                name="stimulus_anchor",
            ),
        ),
    ]
