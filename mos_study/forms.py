"""Forms: the rater's consent, and a researcher's new study (used by the admin)."""
import argparse

from django import forms

from benchmarks.cli_args import comma_list

from .models import Study


class ConsentForm(forms.Form):
    consent = forms.BooleanField(
        label="I have read the instructions and agree to take part; my ratings are stored without my name.",
        error_messages={"required": "Please tick the box to agree before you start."},
    )
    participant_id = forms.CharField(max_length=200, required=False, widget=forms.HiddenInput)


class CreateStudyForm(forms.Form):
    """The options of ``manage.py create_study``."""

    name = forms.SlugField(max_length=100, help_text="unique short name, e.g. bsd100-mos")
    title = forms.CharField(max_length=200, required=False)
    datasets = forms.CharField(initial="BSD100", help_text="comma-separated, e.g. Set5,Set14,BSD100")
    methods = forms.CharField(
        initial="nn,bicubic,srresnet-mse,srgan-vgg54", help_text="comma-separated names from the method registry"
    )
    include_hr = forms.BooleanField(required=False, initial=True, label="Include the HR originals")
    images_per_session = forms.IntegerField(min_value=0, initial=0, help_text="0: every stimulus in each session")
    ratings_per_stimulus = forms.IntegerField(min_value=1, initial=26)
    calibration_images = forms.IntegerField(min_value=0, initial=0, help_text="each shown as NN (1) and HR (5)")
    repeated_trials = forms.IntegerField(min_value=0, initial=0, help_text="trials shown twice (test-retest)")
    instructions = forms.CharField(widget=forms.Textarea, required=False)
    completion_url = forms.URLField(
        required=False, assume_scheme="https", help_text="panel page linked beside the completion code"
    )

    def clean_name(self):
        name = self.cleaned_data["name"]
        if Study.objects.filter(name=name).exists():
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
