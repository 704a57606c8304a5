"""The records srmos keeps: benchmark outputs and their metrics, and MOS studies with their ratings.

Benchmark side: a ``Method`` run on a ``TestImage`` gives an ``Output`` (a content-addressed PNG whose name says
nothing about the method); each ``BenchmarkRun`` records the outputs it made or reused and their ``Metric`` rows.
Study side: a ``Study`` shows ``Stimulus`` items (one output each, or the HR original through the reference method
``hr``) to ``Rater``s; each ``RatingSession`` is an ordered list of ``Trial``s and each trial gets at most one
``Rating`` (ACR studies) or ``Comparison`` (pairwise studies: two stimuli per trial).
"""

import secrets

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

HR_METHOD = "hr"  # the reference condition: the original high-resolution image
METHOD_NAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._:+-]*$", "a method name is letters, digits and . _ : + - (no spaces or slashes)"
)


def new_token():
    """An unguessable URL token (128 bits) that never starts with "-", so it can follow a flag on a command line."""
    while True:
        token = secrets.token_urlsafe(16)
        if not token.startswith("-"):
            return token


PUBLIC_TITLE = "Image quality study"  # what raters see unless the researcher writes a neutral title of their own
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: codes are read and typed by people


def new_code(length=10):
    """A completion code that people copy without confusion: 10 of 31 letters and digits (about 50 bits)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


# --------------------------------------------------------------------------- benchmark side


class Method(models.Model):
    class Kind(models.TextChoices):
        BUILTIN = "builtin", "built-in (sr_models registry)"
        EXTERNAL = "external", "imported outputs"
        PLUGIN = "plugin", "Python plugin"
        REFERENCE = "reference", "HR reference"

    # Registry names (srgan-vgg54), imported names (my-model+ft) and plugin paths (pkg.mod:func) are all valid.
    name = models.CharField(max_length=200, unique=True, validators=[METHOD_NAME_VALIDATOR])
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.BUILTIN)
    description = models.TextField(blank=True)
    plugin_path = models.CharField(max_length=300, blank=True, help_text="module:callable for plugin methods")
    # Who uploaded it (the dashboard's upload sets it); only they may upload outputs under this name again. Methods
    # made by commands (built-in, imported by the operator) have none.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="methods"
    )
    # The method's provenance.csv row from its last benchmark run (benchmarks.tables.PROVENANCE_COLUMNS): where the
    # weights came from, so studies and exports mark srmos-trained and stand-in-feature models as the tables do.
    provenance = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class TestImage(models.Model):
    __test__ = False  # not a pytest test class

    dataset = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    hr_sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    channels = models.PositiveSmallIntegerField(default=3)

    class Meta:
        ordering = ["dataset", "name"]
        constraints = [models.UniqueConstraint(fields=["dataset", "name"], name="unique_test_image")]

    def __str__(self):
        return f"{self.dataset}/{self.name}"


class Output(models.Model):
    """One method's x4 output for one test image, stored once under its content hash."""

    method = models.ForeignKey(Method, on_delete=models.PROTECT, related_name="outputs")
    image = models.ForeignKey(TestImage, on_delete=models.PROTECT, related_name="outputs")
    sha256 = models.CharField(max_length=64, db_index=True)
    file = models.CharField(max_length=500, help_text="path of the PNG, relative to MEDIA_ROOT")
    weights_sha256 = models.CharField(max_length=64, blank=True, default="")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image", "method"]
        constraints = [
            models.UniqueConstraint(fields=["method", "image", "weights_sha256"], name="unique_output"),
        ]

    def __str__(self):
        return f"{self.method} on {self.image}"


class BenchmarkRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"  # the command was interrupted (Ctrl-C, SIGTERM)

    datasets = models.JSONField(default=list)
    methods = models.JSONField(default=list)
    output_dir = models.CharField(max_length=500)
    y_convention = models.CharField(max_length=20, default="integer")
    crop_border = models.PositiveSmallIntegerField(default=4)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    error = models.TextField(blank=True)
    outputs = models.ManyToManyField(Output, blank=True, related_name="runs")
    started = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    # Stamped by the command while it waits for the run's jobs (services.benchmark.Heartbeat); a running run whose
    # heartbeat is older than SRMOS_RUN_STALE_AFTER_S lost its command (killed) and is marked failed when next listed.
    heartbeat = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started"]

    def __str__(self):
        return f"run {self.pk} ({self.status})"


class Metric(models.Model):
    output = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="metrics")
    y_convention = models.CharField(max_length=20, default="integer")
    crop_border = models.PositiveSmallIntegerField(default=4)
    psnr_y = models.FloatField()
    ssim_y = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["output", "y_convention", "crop_border"], name="unique_metric"),
        ]


class MetricValue(models.Model):
    """One extra quality metric of an output (``sr_models.quality``: lpips_alex, niqe, ...), as the benchmark computed
    it: ``convention`` is the metric's own (its ``space``, e.g. ``rgb01``, ``y-integer``), ``weights_note``
    ``"stand-in"`` where a learned metric ran on stand-in backbone weights."""

    output = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="metric_values")
    name = models.CharField(max_length=40)
    convention = models.CharField(max_length=40)
    crop_border = models.PositiveSmallIntegerField(default=4)
    value = models.FloatField()
    weights_note = models.CharField(max_length=60, blank=True)
    source = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["output", "name", "convention", "crop_border"], name="unique_metric_value"),
        ]

    def __str__(self):
        return f"{self.name} of {self.output_id}: {self.value:g}"


# --------------------------------------------------------------------------- study side


class Study(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        PREPARING = "preparing"  # outputs are being made by the task mos_study.prepare_study: no raters yet
        OPEN = "open"
        PAUSED = "paused"  # no new raters; raters in a session finish it and get their completion code
        CLOSED = "closed"  # no new raters; raters in a session finish or are screened out (on_close)
        FAILED = "failed"  # the preparation failed: preparation_error says why

    class OnClose(models.TextChoices):
        FINISH = "finish", "raters in a session may finish it"
        SCREEN_OUT = "screen_out", "raters in a session get a screen-out code"

    class Protocol(models.TextChoices):
        ACR = "acr", "ACR: one image, scores 1-5"
        PAIRWISE = "pairwise", "pairwise: two versions of one image, the better one chosen"

    class PairDesign(models.TextChoices):
        ACTIVE = "active", "active: the pairs whose order is least certain so far"
        RANDOM = "random", "random pairs"
        FULL = "full", "every pair of each image's methods"

    name = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200, blank=True, help_text="the researchers' title (raters never see it)")
    public_title = models.CharField(
        max_length=200, default=PUBLIC_TITLE, help_text="the title raters see: keep it neutral (no dataset or method)"
    )
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    closes_at = models.DateTimeField(
        null=True, blank=True, help_text="from then on the study takes no new raters (raters in a session finish)"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="studies"
    )
    researchers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="shared_studies")
    images_per_session = models.PositiveIntegerField(default=0, help_text="0: every stimulus once per session")
    ratings_per_stimulus = models.PositiveIntegerField(default=26)
    calibration_images = models.PositiveIntegerField(default=0)
    repeated_trials = models.PositiveIntegerField(default=0, help_text="trials shown twice per session (test-retest)")
    instructions = models.TextField(blank=True)
    consent_text = models.TextField(blank=True, help_text="what raters agree to (empty: the standard sentence)")
    gold_trials = models.PositiveIntegerField(
        default=0, help_text="hidden trials of known answer per session (NN expected 1-2, HR expected 4-5)"
    )
    gold_pass_percent = models.PositiveSmallIntegerField(
        default=100, help_text="raters scoring fewer gold trials right (in percent) are screened out"
    )
    exclude_phones = models.BooleanField(default=False, help_text="phones are refused before the consent form")
    window_fits_images = models.BooleanField(
        default=False, help_text="windows smaller than the largest image (at 1:1 device pixels) are refused"
    )
    language = models.CharField(
        max_length=10, blank=True, help_text="language of the rater pages (empty: the browser's, en or de)"
    )
    lease_minutes = models.PositiveIntegerField(
        default=45, help_text="how long a session holds its images without activity (session time + margin)"
    )
    min_view_ms = models.PositiveIntegerField(default=300, help_text="answers sooner after the image are refused")
    grey_background = models.BooleanField(default=False, help_text="mid-grey page behind the images (BT.500/P.910)")
    on_close = models.CharField(max_length=20, choices=OnClose.choices, default=OnClose.FINISH)
    protocol = models.CharField(max_length=20, choices=Protocol.choices, default=Protocol.ACR)
    # Pairwise studies only: how sessions choose their pairs, and whether raters may answer "no preference"
    # (half a win each in the scaling).
    pair_design = models.CharField(max_length=20, choices=PairDesign.choices, default=PairDesign.ACTIVE)
    allow_tie = models.BooleanField(default=False, help_text="pairwise: raters may answer 'no preference'")
    config = models.JSONField(default=dict, blank=True)
    preparation_error = models.TextField(blank=True, help_text="why making the study's outputs failed")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "studies"

    def __str__(self):
        return self.name


class Stimulus(models.Model):
    """One image shown in one study; ``token`` is the only name a rater ever sees."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="stimuli")
    output = models.ForeignKey(Output, on_delete=models.PROTECT, related_name="stimuli")
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    is_calibration = models.BooleanField(default=False)
    # A gold stimulus is a hidden trial of known answer (P.910 crowdsourcing): calibration_score holds its expected
    # score (1: NN, expected 1-2; 5: HR, expected 4-5); raters see it as any test trial.
    is_gold = models.BooleanField(default=False)
    calibration_score = models.PositiveSmallIntegerField(null=True, blank=True)
    # Test trials (kind "trial") of this stimulus that are rated or held by a session (``RatingSession.holds_trials``
    # or finished): what ``services.sessions`` balances on, kept in the transactions that change it, so that a
    # session start reads the lowest counters (index below) instead of counting the study's trials.
    assigned = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        verbose_name_plural = "stimuli"
        constraints = [
            models.UniqueConstraint(fields=["study", "output", "is_calibration", "is_gold"], name="unique_stimulus"),
            models.CheckConstraint(
                condition=Q(calibration_score__isnull=True) | Q(calibration_score__gte=1, calibration_score__lte=5),
                name="calibration_score_1_to_5",
            ),
        ]
        indexes = [
            # A session start reads only the test stimuli of the lowest counts (ORDER BY assigned ... LIMIT), and
            # the calibration and gold stimuli apart: a few rows, however many stimuli the study has.
            models.Index(
                fields=["study", "assigned", "id"],
                condition=Q(is_calibration=False, is_gold=False),
                name="stimulus_test_by_assigned",
            ),
            models.Index(fields=["study"], condition=Q(is_calibration=True) | Q(is_gold=True), name="stimulus_anchor"),
        ]

    def __str__(self):
        return f"{self.study}: {self.output}"


class Rater(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="raters")
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    participant_id = models.CharField(max_length=200, blank=True, help_text="panel id, e.g. PROLIFIC_PID")
    panel_study_id = models.CharField(max_length=200, blank=True, help_text="the panel's STUDY_ID")
    panel_session_id = models.CharField(max_length=200, blank=True, help_text="the panel's SESSION_ID")
    consented_at = models.DateTimeField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study", "participant_id"], condition=~Q(participant_id=""), name="unique_participant"
            ),
        ]

    def __str__(self):
        return self.participant_id or f"rater {self.pk}"


class RatingSession(models.Model):
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="sessions")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="sessions")
    seed = models.BigIntegerField(help_text="seed of this session's random order")
    completion_code = models.CharField(max_length=64, default=new_code, editable=False, db_index=True)
    screen_out_code = models.CharField(max_length=64, default=new_code, editable=False)
    started = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True, help_text="unrated trials are held until then")
    last_seen = models.DateTimeField(null=True, blank=True, help_text="the rater's last rating or heartbeat")
    fast_answers = models.PositiveIntegerField(default=0, help_text="answers refused as faster than min_view_ms")
    viewing = models.JSONField(default=dict, blank=True, help_text="screen, window, devicePixelRatio, zoom, UA")
    # Whether the unrated trials are in their stimuli's ``assigned``: true from the start; a session start clears it
    # once the lease has run out (the trials go to others), a rating or heartbeat of the rater who came back sets it.
    holds_trials = models.BooleanField(default=True, editable=False)

    class Meta:
        indexes = [
            # The sessions whose leases a session start may find run out: few, however large the study.
            models.Index(
                fields=["study", "lease_until"],
                condition=Q(holds_trials=True, finished__isnull=True),
                name="session_holding_trials",
            )
        ]

    def __str__(self):
        return f"session {self.pk} of {self.rater}"


class Trial(models.Model):
    class Kind(models.TextChoices):
        CALIBRATION = "calibration"
        TRIAL = "trial"
        REPEAT = "repeat"
        GOLD = "gold"  # a hidden trial of known answer: shown as any test trial, judged only in screening
        PAIR = "pair"  # a pairwise study's test pair (its "trial"; balanced by services.pairwise_sessions)

    session = models.ForeignKey(RatingSession, on_delete=models.CASCADE, related_name="trials")
    position = models.PositiveIntegerField()
    stimulus = models.ForeignKey(Stimulus, on_delete=models.PROTECT, related_name="trials")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.TRIAL)
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    # Pairwise trials show ``stimulus`` (A) and ``stimulus_b`` (B) of one test image; ``left_is_a`` (random per
    # trial) puts A on the left. Each side's image has its own opaque token, so the page knows neither which side
    # is A nor either method. ACR trials leave these empty.
    stimulus_b = models.ForeignKey(
        Stimulus, null=True, blank=True, on_delete=models.PROTECT, related_name="trials_as_b"
    )
    left_is_a = models.BooleanField(default=True)
    image_token_a = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    image_token_b = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)

    class Meta:
        ordering = ["session", "position"]
        constraints = [models.UniqueConstraint(fields=["session", "position"], name="unique_trial_position")]


class Rating(models.Model):
    """A rater's score for one trial: one per trial, an integer from 1 (bad) to 5 (excellent)."""

    trial = models.OneToOneField(Trial, on_delete=models.CASCADE, related_name="rating")
    score = models.PositiveSmallIntegerField()
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(score__gte=1, score__lte=5), name="score_1_to_5")]


class Comparison(models.Model):
    """A rater's choice on one pairwise trial: one per trial, ``a`` or ``b`` (the trial's stimulus or stimulus_b
    preferred) or ``tie`` (no preference, where the study allows it)."""

    class Choice(models.TextChoices):
        A = "a"
        B = "b"
        TIE = "tie"

    trial = models.OneToOneField(Trial, on_delete=models.CASCADE, related_name="comparison")
    choice = models.CharField(max_length=3, choices=Choice.choices)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(choice__in=["a", "b", "tie"]), name="choice_a_b_tie")]


class DeviceRefusal(models.Model):
    """A browser the study refused before the consent form (a phone, a window smaller than the largest image)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="device_refusals")
    reason = models.CharField(max_length=40)
    viewing = models.JSONField(default=dict, blank=True, help_text="screen, window, devicePixelRatio, UA")
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.study}: {self.reason}"


class ResultsSnapshot(models.Model):
    """The dashboard's last finished results of a study and the state of the job that recomputes them
    (``services.results_cache``, task ``mos_study.compute_results``): the results page serves ``archive`` at once and
    says how fresh it is; a failed job leaves the last good result in place and records its error."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="results_snapshot")
    archive = models.BinaryField(null=True, help_text="zip of every file of the export and meta.json")
    version = models.CharField(max_length=200, blank=True, help_text="services.exports.export_version of the ratings")
    n_ratings = models.PositiveIntegerField(default=0)
    last_rating_id = models.BigIntegerField(default=0)
    computed_at = models.DateTimeField(null=True, blank=True)
    compute_seconds = models.FloatField(null=True, blank=True)
    tried_version = models.CharField(max_length=200, blank=True, help_text="the ratings the last job read")
    tried_last_rating_id = models.BigIntegerField(default=0)
    dirty_since = models.DateTimeField(null=True, blank=True, help_text="ratings changed after the last job began")
    queued_at = models.DateTimeField(null=True, blank=True, help_text="a job is queued or running (one at a time)")
    started_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="why the last job failed ('' after a success)")
    failed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"results of {self.study}"
