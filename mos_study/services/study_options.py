"""The options of a new study, defined once: the admin's form (``forms.CreateStudyForm``), the command
(``manage.py create_study``) and the service (``study_setup.create_study``) are all derived from ``STUDY_OPTIONS``.

Each ``StudyOption`` says its type, default, bounds and help; ``check_options`` applies the defaults and the bounds
for the service, so a value refused by the form or the command is refused with the same words by the service.
"""

from dataclasses import dataclass

from .errors import StudyError

# The kinds of value: how the form shows an option and how the command reads it.
SLUG, TEXT, LONG_TEXT, URL, NAMES, INTEGER, FLAG = "slug", "text", "long_text", "url", "names", "integer", "flag"


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
    StudyOption("title", TEXT, "shown to raters (default: the name)", default="", max_length=200),
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
    StudyOption("images_per_session", INTEGER, "0: every stimulus in each session", default=0, minimum=0),
    StudyOption(
        "ratings_per_stimulus", INTEGER, "ratings each stimulus should get (the paper: 26)", default=26, minimum=1
    ),
    StudyOption(
        "calibration_images", INTEGER, "test images each shown as NN (score 1) and HR (score 5)", default=0, minimum=0
    ),
    StudyOption("repeated_trials", INTEGER, "trials shown twice per session (test-retest)", default=0, minimum=0),
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
    StudyOption("instructions", LONG_TEXT, "shown to raters before they start", default=""),
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
        value = option.default if value is None else value  # absent or empty (a blank form field): the default
        if option.minimum is not None and value is not None and value < option.minimum:
            bound = "0 or more" if option.minimum == 0 else f"at least {option.minimum}"
            raise StudyError(f"{option.words} must be {bound}, not {value}")
        checked[option.name] = value
    return checked
