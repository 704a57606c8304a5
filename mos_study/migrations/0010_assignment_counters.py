"""Per-stimulus assignment counters (``Stimulus.assigned``) and the sessions' ``holds_trials``, filled for existing
studies: sessions whose lease has run out stop holding their unrated trials, and each stimulus counts its test trials
rated or held, as ``services.sessions.trial_counts(study, held(now))`` counted them."""

from datetime import timedelta

from django.db import migrations, models
from django.utils import timezone

SESSION_TIMEOUT = timedelta(hours=2)  # services.sessions.SESSION_TIMEOUT when this migration was written


def fill_counters(apps, schema_editor):
    connection = schema_editor.connection
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE mos_study_ratingsession SET holds_trials = %s WHERE finished IS NULL"
            " AND (lease_until < %s OR (lease_until IS NULL AND started < %s))",
            [False, adapt(now), adapt(now - SESSION_TIMEOUT)],
        )
        cursor.execute(
            """UPDATE mos_study_stimulus SET assigned = (
                SELECT count(*) FROM mos_study_trial t JOIN mos_study_ratingsession s ON s.id = t.session_id
                LEFT JOIN mos_study_rating r ON r.trial_id = t.id
                WHERE t.stimulus_id = mos_study_stimulus.id AND t.kind = 'trial'
                  AND (r.id IS NOT NULL OR s.finished IS NOT NULL OR s.holds_trials))"""
        )


class Migration(migrations.Migration):
    dependencies = [
        ("mos_study", "0008_run_heartbeat"),
    ]

    operations = [
        migrations.AddField(
            model_name="ratingsession",
            name="holds_trials",
            field=models.BooleanField(default=True, editable=False),
        ),
        migrations.AddField(
            model_name="stimulus",
            name="assigned",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddIndex(
            model_name="ratingsession",
            index=models.Index(
                condition=models.Q(("finished__isnull", True), ("holds_trials", True)),
                fields=["study", "lease_until"],
                name="session_holding_trials",
            ),
        ),
        migrations.RunPython(fill_counters, migrations.RunPython.noop),
    ]
