from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from sr_models.errors import SRMOSError

from . import models
from .admin_scope import VisibleOnly
from .forms import CreateStudyForm
from .services import progress, sessions, study_setup
from .services.study_planning import PLANNED_FIELDS, planning_hint_from


@admin.register(models.Method)
class MethodAdmin(VisibleOnly, admin.ModelAdmin):
    list_display = ["name", "kind", "created"]
    list_filter = ["kind"]


@admin.register(models.TestImage)
class TestImageAdmin(VisibleOnly, admin.ModelAdmin):
    list_display = ["dataset", "name", "width", "height"]
    list_filter = ["dataset"]


@admin.register(models.Output)
class OutputAdmin(VisibleOnly, admin.ModelAdmin):
    list_display = ["method", "image", "sha256", "created"]
    list_filter = ["method", "image__dataset"]


@admin.register(models.BenchmarkRun)
class BenchmarkRunAdmin(VisibleOnly, admin.ModelAdmin):
    list_display = ["pk", "status", "started", "heartbeat", "finished"]
    list_filter = ["status"]

    def changelist_view(self, request, extra_context=None):
        from .services.benchmark import mark_abandoned_runs

        mark_abandoned_runs()  # a run whose command was killed shows as failed, not "running" forever
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from .services.benchmark import mark_abandoned_runs

        mark_abandoned_runs()
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(models.Metric)
class MetricAdmin(VisibleOnly, admin.ModelAdmin):
    list_display = ["output", "y_convention", "crop_border", "psnr_y", "ssim_y"]


@admin.register(models.MetricValue)
class MetricValueAdmin(VisibleOnly, admin.ModelAdmin):
    list_display = ["output", "name", "convention", "crop_border", "value", "weights_note"]
    list_filter = ["name", "weights_note"]


# --------------------------------------------------------------------------- studies


class StimulusInline(admin.TabularInline):
    model = models.Stimulus
    fields = ["output", "is_calibration", "calibration_score", "token"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class StudyChangeForm(forms.ModelForm):
    """The study's change form: the completion URL lives in ``config`` and is edited as a field of its own."""

    completion_url = forms.URLField(required=False, assume_scheme="https", help_text="panel page beside the code")

    class Meta:
        model = models.Study
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["completion_url"].initial = (self.instance.config or {}).get("completion_url", "")

    def save(self, commit=True):
        study = super().save(commit=False)
        study.config = {**(study.config or {}), "completion_url": self.cleaned_data.get("completion_url", "")}
        if commit:
            study.save()
            self.save_m2m()
        return study


# What an existing study's change page may edit: words raters read, where they go, who sees it, when it closes.
# Everything else (stimuli, calibration, gold and repeated trials, sessions) was fixed when the study was made.
STUDY_EDITABLE = [
    "title",
    "public_title",
    "instructions",
    "consent_text",
    "completion_url",
    "language",
    "closes_at",
    "researchers",
]


@admin.register(models.Study)
class StudyAdmin(VisibleOnly, admin.ModelAdmin):
    form = StudyChangeForm
    list_display = ["name", "title", "status", "owner", "ratings_per_stimulus", "created", "dashboard_link"]
    list_filter = ["status"]
    search_fields = ["name", "title"]
    filter_horizontal = ["researchers"]
    readonly_fields = ["token", "config", "preparation_error", "created", "rater_link"]
    inlines = [StimulusInline]
    actions = ["open_studies", "pause_studies", "close_studies", "close_screen_out", "release_abandoned"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        editable = set(STUDY_EDITABLE)
        fields = [f.name for f in self.model._meta.get_fields() if f.concrete and not f.auto_created]
        return [*self.readonly_fields, *(f for f in fields if f not in editable and f not in self.readonly_fields)]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return fields if "completion_url" in fields else [*fields, "completion_url"]

    def get_urls(self):
        create = path("create/", self.admin_site.admin_view(self.create_view), name="mos_study_study_create")
        return [create, *super().get_urls()]

    def add_view(self, request, form_url="", extra_context=None):
        # A study is made from benchmark outputs, never as an empty row.
        return redirect("admin:mos_study_study_create")

    def create_view(self, request):
        """The admin's form for ``create_study``. Where outputs are missing it returns at once with the study
        preparing: a Celery task makes them (``tasks.prepare_study``), no benchmark runs in the request."""
        if not self.has_add_permission(request):
            return redirect("admin:index")
        planned = {k: v for k, v in request.GET.items() if k in PLANNED_FIELDS}  # the planning hint's values
        form = CreateStudyForm(request.POST if request.method == "POST" else None, initial=planned)
        if request.method == "POST" and form.is_valid():
            try:
                study = study_setup.create_study(**form.cleaned_data, owner=request.user)
            except SRMOSError as error:
                form.add_error(None, str(error))
            else:
                if study.status == models.Study.Status.FAILED:
                    form.add_error(None, f"Study {study.name} could not be prepared: {study.preparation_error}")
                else:
                    self.say_created(request, study)
                    return redirect("admin:mos_study_study_change", study.pk)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "opts": self.model._meta,
            "title": "Create a study from benchmark outputs",
            "plan": planning_hint_from(request.POST if request.method == "POST" else request.GET),
        }
        return render(request, "admin/mos_study/study/create.html", context)

    def say_created(self, request, study):
        link = self.link(request, study)
        if study.status == models.Study.Status.PREPARING:
            messages.success(
                request,
                f"Study {study.name} is being prepared: a worker makes its missing outputs, "
                f"then it opens to raters. Rater link: {link}",
            )
        else:
            messages.success(request, f"Study {study.name} created. Rater link: {link}")

    def get_queryset(self, request):
        if request.user.is_superuser:
            return super().get_queryset(request)
        return progress.visible_studies(request.user)

    def link(self, request, study):
        return request.build_absolute_uri(reverse("mos_study:start", args=[study.token]))

    @admin.display(description="rater link")
    def rater_link(self, study):
        if not study.pk:
            return "-"
        preview = reverse("mos_study:preview", args=[study.pk])
        link = reverse("mos_study:start", args=[study.token])
        return format_html('{} (<a href="{}">preview as a rater</a>)', link, preview)

    @admin.display(description="dashboard")
    def dashboard_link(self, study):
        return format_html('<a href="{}">progress</a>', reverse("mos_study:study_detail", args=[study.pk]))

    @admin.action(description="Open the selected studies to raters")
    def open_studies(self, request, queryset):
        # A study still preparing (or failed) has no stimuli yet: only its task opens it.
        unprepared = [models.Study.Status.PREPARING, models.Study.Status.FAILED]
        self.set_status(queryset.exclude(status__in=unprepared), models.Study.Status.OPEN)

    @admin.action(description="Pause the selected studies (no new raters; raters in a session finish)")
    def pause_studies(self, request, queryset):
        self.set_status(queryset.filter(status=models.Study.Status.OPEN), models.Study.Status.PAUSED)

    @admin.action(description="Close the selected studies (no new raters; raters in a session may finish)")
    def close_studies(self, request, queryset):
        return self.close(request, queryset, models.Study.OnClose.FINISH, "close_studies")

    @admin.action(description="Close the selected studies, raters in a session get a screen-out code")
    def close_screen_out(self, request, queryset):
        return self.close(request, queryset, models.Study.OnClose.SCREEN_OUT, "close_screen_out")

    def close(self, request, queryset, on_close, action):
        """Close after a confirmation page that says how many raters are in a session and what happens to them."""
        if request.POST.get("confirm") != "yes":
            studies = [(study, sessions.live_sessions(study, timezone.now()).count()) for study in queryset]
            context = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Close studies?",
                "studies": studies,
                "action": action,
                "screen_out": on_close == models.Study.OnClose.SCREEN_OUT,
                "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            }
            return render(request, "admin/mos_study/study/confirm_close.html", context)
        models.Study.objects.filter(pk__in=queryset.values("pk")).update(
            status=models.Study.Status.CLOSED, on_close=on_close
        )
        messages.success(request, f"Closed {queryset.count()} studies.")
        return None

    @admin.action(description="Release abandoned sessions (idle 10 minutes) of the selected studies")
    def release_abandoned(self, request, queryset):
        released = sum(sessions.release_abandoned(study) for study in queryset)
        messages.success(request, f"Released {released} abandoned sessions: their unrated images go to new raters.")

    def set_status(self, queryset, status):
        # The researcher's queryset is distinct(); update through the primary keys.
        models.Study.objects.filter(pk__in=queryset.values("pk")).update(status=status)


@admin.register(models.Stimulus)
class StimulusAdmin(VisibleOnly, admin.ModelAdmin):
    list_display = ["study", "output", "is_calibration", "calibration_score"]
    list_filter = ["study", "is_calibration", "output__method"]
    readonly_fields = ["token"]


class KeepsCounters:
    """Raters and sessions deleted or edited here change what their study's stimuli hold (``Stimulus.assigned``,
    kept by the services): the study's counters are counted again from its trials."""

    def save_model(self, request, obj, form, change):
        if isinstance(obj, models.RatingSession):
            obj.holds_trials = True  # a lease edited here counts as given (or run out) from its new end
        super().save_model(request, obj, form, change)
        sessions.recount_assigned(obj.study)

    def delete_model(self, request, obj):
        study = obj.study
        super().delete_model(request, obj)
        sessions.recount_assigned(study)

    def delete_queryset(self, request, queryset):
        studies = list(models.Study.objects.filter(pk__in=queryset.values("study")))
        super().delete_queryset(request, queryset)
        for study in studies:
            sessions.recount_assigned(study)


@admin.register(models.Rater)
class RaterAdmin(KeepsCounters, VisibleOnly, admin.ModelAdmin):
    list_display = ["__str__", "study", "participant_id", "panel_study_id", "panel_session_id", "consented_at"]
    list_filter = ["study"]
    search_fields = ["participant_id", "panel_session_id", "sessions__completion_code", "sessions__screen_out_code"]
    readonly_fields = ["token"]
    actions = ["delete_test_raters"]

    @admin.action(description="Delete the selected (test) raters and their ratings: they leave the results")
    def delete_test_raters(self, request, queryset):
        # The queryset holds only raters of studies this researcher may see (VisibleOnly); ratings go by cascade.
        rows = models.Rater.objects.filter(pk__in=queryset.values("pk"))
        n_ratings = models.Rating.objects.filter(trial__session__rater__in=rows).count()
        n_raters = rows.count()
        self.delete_queryset(request, rows)
        messages.success(request, f"Deleted {n_raters} raters and their {n_ratings} ratings.")


@admin.register(models.RatingSession)
class RatingSessionAdmin(KeepsCounters, VisibleOnly, admin.ModelAdmin):
    list_display = ["pk", "rater", "study", "completion_code", "started", "finished", "lease_until", "fast_answers"]
    list_filter = ["study"]
    search_fields = ["completion_code", "screen_out_code", "rater__participant_id", "rater__panel_session_id"]
    readonly_fields = ["completion_code", "screen_out_code", "seed", "viewing", "fast_answers"]


@admin.register(models.Rating)
class RatingAdmin(VisibleOnly, admin.ModelAdmin):
    list_display = ["trial", "score", "response_ms", "created"]
    list_filter = ["trial__session__study", "score"]

    # Ratings are evidence: the admin shows them, nobody edits them.
    def has_change_permission(self, request, obj=None):
        return False
