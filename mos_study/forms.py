"""Forms: the rater's consent, and a researcher's new study (used by the admin)."""

import argparse

from django import forms
from django.utils.translation import gettext_lazy as _

from benchmarks.cli_args import comma_list

from .services import study_options as options
from .services.study_options import STUDY_OPTIONS
from .services.study_setup import name_taken


class ConsentForm(forms.Form):
    consent = forms.BooleanField(
        label=_("I have read the instructions and agree to take part; my ratings are stored without my name."),
        error_messages={"required": _("Please tick the box to agree before you start.")},
    )
    participant_id = forms.CharField(max_length=200, required=False, widget=forms.HiddenInput)


class CreateStudyForm(forms.Form):
    """The options of a new study, as ``manage.py create_study`` takes them: one field per
    ``services.study_options.STUDY_OPTIONS`` entry."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for option in STUDY_OPTIONS:
            self.fields[option.name] = option_field(option)

    def clean_name(self):
        name = self.cleaned_data["name"]
        if name_taken(name):
            raise forms.ValidationError(f"a study named {name!r} already exists")
        return name

    def clean_datasets(self):
        return self.clean_list("datasets")

    def clean_methods(self):
        return self.clean_list("methods")

    def clean_list(self, field):
        try:
            return comma_list(self.cleaned_data[field])
        except argparse.ArgumentTypeError:
            raise forms.ValidationError(f"name at least one of the {field}") from None


def option_field(option):
    """The form field of one study option."""
    common = {"help_text": option.help, "label": option.label or None}
    if option.kind == options.SLUG:
        return forms.SlugField(max_length=option.max_length, **common)
    if option.kind == options.TEXT:
        return forms.CharField(
            max_length=option.max_length, required=option.required, initial=option.suggested, **common
        )
    if option.kind == options.LONG_TEXT:
        return forms.CharField(widget=forms.Textarea, required=option.required, **common)
    if option.kind == options.URL:
        return forms.URLField(required=option.required, assume_scheme="https", **common)
    if option.kind == options.NAMES:
        return forms.CharField(initial=option.suggested, **common)
    if option.kind == options.FLAG:
        return forms.BooleanField(required=False, initial=option.suggested, **common)
    if option.kind == options.DATETIME:
        return forms.DateTimeField(required=False, **common)
    if option.kind == options.CHOICE:
        return forms.ChoiceField(choices=option.choices, required=False, initial=option.default, **common)
    if option.kind == options.INTEGER:
        return forms.IntegerField(
            min_value=option.minimum,
            max_value=option.maximum,
            initial=option.default,
            required=False,
            **common,  # empty: the default
        )
    raise ValueError(f"study option {option.name!r} has an unknown kind {option.kind!r}")
