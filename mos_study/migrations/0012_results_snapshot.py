import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mos_study", "0011_pairwise_protocol"),
    ]

    operations = [
        migrations.CreateModel(
            name="ResultsSnapshot",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "archive",
                    models.BinaryField(help_text="zip of every file of the export and meta.json", null=True),
                ),
                (
                    "version",
                    models.CharField(
                        blank=True, help_text="services.exports.export_version of the ratings", max_length=200
                    ),
                ),
                ("n_ratings", models.PositiveIntegerField(default=0)),
                ("last_rating_id", models.BigIntegerField(default=0)),
                ("computed_at", models.DateTimeField(blank=True, null=True)),
                ("compute_seconds", models.FloatField(blank=True, null=True)),
                (
                    "tried_version",
                    models.CharField(blank=True, help_text="the ratings the last job read", max_length=200),
                ),
                ("tried_last_rating_id", models.BigIntegerField(default=0)),
                (
                    "dirty_since",
                    models.DateTimeField(blank=True, help_text="ratings changed after the last job began", null=True),
                ),
                (
                    "queued_at",
                    models.DateTimeField(blank=True, help_text="a job is queued or running (one at a time)", null=True),
                ),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("error", models.TextField(blank=True, help_text="why the last job failed ('' after a success)")),
                ("failed_at", models.DateTimeField(blank=True, null=True)),
                (
                    "study",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="results_snapshot",
                        to="mos_study.study",
                    ),
                ),
            ],
        ),
    ]
