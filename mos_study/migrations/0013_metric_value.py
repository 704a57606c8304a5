# Issue 19: MetricValue, the extra quality metrics of an output (sr_models.quality), one per output, name,
# convention and border.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mos_study", "0012_results_snapshot"),
    ]

    operations = [
        migrations.CreateModel(
            name="MetricValue",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=40)),
                ("convention", models.CharField(max_length=40)),
                ("crop_border", models.PositiveSmallIntegerField(default=4)),
                ("value", models.FloatField()),
                ("weights_note", models.CharField(blank=True, max_length=60)),
                ("source", models.CharField(blank=True, max_length=300)),
                (
                    "output",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="metric_values",
                        to="mos_study.output",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("output", "name", "convention", "crop_border"), name="unique_metric_value"
                    )
                ],
            },
        ),
    ]
