"""The options of a new study, defined once: the admin's form (``forms.CreateStudyForm``), the command
(``manage.py create_study``) and the service (``study_setup.create_study``) are all derived from ``STUDY_OPTIONS``.

Each ``StudyOption`` says its type, default, bounds and help; ``check_options`` applies the defaults and the bounds
for the service, so a value refused by the form or the command is refused with the same words by the service.
"""

from dataclasses import dataclass
from datetime import datetime

from .errors import StudyError

# The kinds of value: how the form shows an option and how the command reads it.
SLUG, TEXT, LONG_TEXT, URL, NAMES, INTEGER, FLAG = "slug", "text", "long_text", "url", "names", "integer", "flag"
DATETIME, CHOICE = "datetime", "choice"  # an ISO date and time (local time zone unless given); one of ``choices``
LANGUAGES = (("", "the rater's browser (English or German)"), ("en", "English"), ("de", "German"))
PROTOCOLS = (("acr", "ACR: one image at a time, scores 1-5"), ("pairwise", "pairwise: two versions, choose the better"))
PAIR_DESIGNS = (
    ("active", "active: the pairs least certain from the comparisons so far"),
    ("random", "random pairs"),
    ("full", "every pair of an image's methods"),
)


@dataclass(frozen=True)
class StudyOption:
    name: str  # the keyword of create_study; the form field's name; --name-with-dashes on the command line
    kind: str  # one of the kinds above
    help: str = ""
    default: object = None  # the service's default (None where the option is required or optional-empty)
    required: bool = False
    minimum: int | None = None
    max_length: int | None = None
    suggested: object = None  # what the admin's form shows filled in (a suggestion; the default stays the default)
    label: str = ""  # the form's label, where Django's from the name reads badly
    maximum: int | None = None
    choices: tuple = ()  # (value, label) pairs of a CHOICE option

    @property
    def words(self):
        return self.name.replace("_", " ")

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")


STUDY_OPTIONS = (
    StudyOption(
        "name", SLUG, "unique short name (letters, digits, - and _), e.g. bsd100-mos", required=True, max_length=100
    ),
    StudyOption(
        "title", TEXT, "the researchers' title (default: the name); raters never see it", default="", max_length=200
    ),
    StudyOption(
        "public_title",
        TEXT,
        "the title raters see: keep it neutral, naming no dataset or method",
        default="Image quality study",
        max_length=200,
        suggested="Image quality study",
    ),
    StudyOption("datasets", NAMES, "comma-separated, e.g. Set5,Set14,BSD100", required=True, suggested="BSD100"),
    StudyOption(
        "methods",
        NAMES,
        "comma-separated names from the method registry, e.g. nn,bicubic,srresnet-mse",
        required=True,
        suggested="nn,bicubic,srresnet-mse,srgan-vgg54",
    ),
    StudyOption(
        "include_hr",
        FLAG,
        "also show the HR originals",
        default=False,
        suggested=True,
        label="Include the HR originals",
    ),
    StudyOption(
        "protocol",
        CHOICE,
        "acr: each trial one image rated 1-5 (the paper's MOS); pairwise: each trial two versions of one image, "
        "the rater chooses the better (scaled by Thurstone / Bradley-Terry)",
        default="acr",
        choices=PROTOCOLS,
    ),
    StudyOption(
        "pair_design",
        CHOICE,
        "pairwise studies: how each session chooses its pairs",
        default="active",
        choices=PAIR_DESIGNS,
    ),
    StudyOption(
        "allow_tie",
        FLAG,
        "pairwise studies: raters may answer 'no preference' (half a win each in the scaling)",
        default=False,
        label="Allow 'no preference'",
    ),
    StudyOption(
        "images_per_session",
        INTEGER,
        "0: every stimulus in each session (pairwise: trials, i.e. pairs, per session; 0: one pair per test image)",
        default=0,
        minimum=0,
    ),
    StudyOption(
        "ratings_per_stimulus",
        INTEGER,
        "ratings each stimulus should get (the paper: 26; pairwise: comparisons each stimulus takes part in)",
        default=26,
        minimum=1,
    ),
    StudyOption(
        "calibration_images", INTEGER, "test images each shown as NN (score 1) and HR (score 5)", default=0, minimum=0
    ),
    StudyOption("repeated_trials", INTEGER, "trials shown twice per session (test-retest)", default=0, minimum=0),
    StudyOption(
        "gold_trials",
        INTEGER,
        "hidden trials of known answer per session, shown as any test trial (P.910 crowdsourcing): the NN version "
        "of an image (expected 1-2) or the HR image (expected 4-5); needs the nn and hr outputs",
        default=0,
        minimum=0,
    ),
    StudyOption(
        "gold_pass_percent",
        INTEGER,
        "a rater who scores fewer of the gold trials right (percent) is screened out of the results",
        default=100,
        minimum=0,
        maximum=100,
        label="Gold trials to pass (%)",
    ),
    StudyOption(
        "lease_minutes",
        INTEGER,
        "minutes a session holds its images without a rating or heartbeat (the session's time plus a margin); "
        "abandoned sessions then give them back",
        default=45,
        minimum=1,
    ),
    StudyOption(
        "min_view_ms",
        INTEGER,
        "minimum viewing time per image in ms: earlier keys are ignored, earlier answers refused (0: none)",
        default=300,
        minimum=0,
        label="Minimum viewing time (ms)",
    ),
    StudyOption(
        "grey_background",
        FLAG,
        "show the images on a neutral mid-grey page (BT.500 / P.910 viewing practice)",
        default=False,
        label="Mid-grey background",
    ),
    StudyOption("exclude_phones", FLAG, "refuse phones before the consent form", default=False, label="Exclude phones"),
    StudyOption(
        "window_fits_images",
        FLAG,
        "refuse, before the consent form, windows smaller than the largest image at one image pixel per device pixel",
        default=False,
        label="Window must fit the largest image",
    ),
    StudyOption(
        "closes_at",
        DATETIME,
        "scheduled close (ISO date and time): from then on no new raters, raters in a session finish",
        label="Closes at",
    ),
    StudyOption("language", CHOICE, "language of the rater pages", default="", choices=LANGUAGES),
    StudyOption("instructions", LONG_TEXT, "shown to raters before they start", default=""),
    StudyOption("consent_text", LONG_TEXT, "what raters agree to (empty: the standard sentence)", default=""),
    StudyOption("completion_url", URL, "panel page linked beside the completion code", default=""),
    StudyOption("seed", INTEGER, "seed for the choice of calibration images (empty: random)"),
)
OPTIONS_BY_NAME = {option.name: option for option in STUDY_OPTIONS}


def check_options(values):
    """``values`` (keyword arguments of create_study) with the defaults filled in and the bounds checked.

    Raises ``StudyError`` for an unknown option or a value out of bounds.
    """
    unknown = set(values) - set(OPTIONS_BY_NAME)
    if unknown:
        raise StudyError(f"unknown study options: {', '.join(sorted(unknown))}")
    checked = {}
    for option in STUDY_OPTIONS:
        value = values.get(option.name)
        if value is None or (value == "" and option.kind == CHOICE):  # absent, or a blank form field: the default
            value = option.default
        if option.minimum is not None and value is not None and value < option.minimum:
            bound = "0 or more" if option.minimum == 0 else f"at least {option.minimum}"
            raise StudyError(f"{option.words} must be {bound}, not {value}")
        if option.maximum is not None and value is not None and value > option.maximum:
            raise StudyError(f"{option.words} must be at most {option.maximum}, not {value}")
        if option.kind == CHOICE and value not in {choice for choice, _ in option.choices}:
            raise StudyError(f"{option.words} must be one of {', '.join(repr(c) for c, _ in option.choices)}")
        if option.kind == DATETIME and value is not None:
            value = parse_moment(value)
        checked[option.name] = value
    return checked


def parse_moment(value):
    """A DATETIME option's value: an aware datetime (an ISO string or a naive datetime is read in the local zone)."""
    from django.utils import timezone

    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise StudyError(f"not an ISO date and time: {value!r} (e.g. 2026-05-01T18:00)") from None
    if not isinstance(value, datetime):
        raise StudyError(f"not a date and time: {value!r}")
    return value if timezone.is_aware(value) else timezone.make_aware(value)
