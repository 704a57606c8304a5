"""What the admin shows a staff researcher: the rows of the studies they may see (``progress.visible_studies``), and
the methods, outputs, runs and metrics that belong to them or to those studies. Superusers see everything.

``VisibleOnly`` is mixed into every ``ModelAdmin`` of the app: the list, search, actions, change, delete and history
pages all start from ``get_queryset``, so another study's row is never listed and its page by direct URL is a 404
(not the admin's redirect to the index, which would say that the row exists); the choices of a foreign key, the
list filters' choices (``RelatedOnlyFieldListFilter``) and many-to-many fields are filtered the same way.
"""

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.db.models import Q
from django.http import Http404

from . import models
from .services.progress import visible_studies


def visible_methods(user):
    """Methods a researcher may see: their own uploads, the built-in ones and those shown in a study they see."""
    shared = Q(owner__isnull=True) & ~Q(kind=models.Method.Kind.EXTERNAL)
    in_studies = Q(outputs__stimuli__study__in=visible_studies(user))
    return models.Method.objects.filter(Q(owner=user) | shared | in_studies).distinct()


def visible_rows(model, user):
    """The rows of ``model`` that ``user`` (not a superuser) may see, or None where every row is visible."""
    studies = visible_studies(user)
    by_study = {
        models.Study: lambda: studies,
        models.Stimulus: lambda: models.Stimulus.objects.filter(study__in=studies),
        models.Rater: lambda: models.Rater.objects.filter(study__in=studies),
        models.RatingSession: lambda: models.RatingSession.objects.filter(study__in=studies),
        models.Trial: lambda: models.Trial.objects.filter(session__study__in=studies),
        models.Rating: lambda: models.Rating.objects.filter(trial__session__study__in=studies),
        models.Method: lambda: visible_methods(user),
        models.Output: lambda: models.Output.objects.filter(method__in=visible_methods(user)),
        models.Metric: lambda: models.Metric.objects.filter(output__method__in=visible_methods(user)),
        models.MetricValue: lambda: models.MetricValue.objects.filter(output__method__in=visible_methods(user)),
        models.BenchmarkRun: lambda: models.BenchmarkRun.objects.filter(
            outputs__method__in=visible_methods(user)
        ).distinct(),
    }
    rows = by_study.get(model)
    return rows() if rows else None


class VisibleOnly:
    """Mixed into a ModelAdmin: a non-superuser sees only ``visible_rows`` (see the module docstring)."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        visible = visible_rows(self.model, request.user)
        return queryset if visible is None else queryset.filter(pk__in=visible.values("pk"))

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404(f"no {opts.verbose_name} with id {object_id!r} that you may see")

    def related_choices(self, request, model, queryset):
        if request.user.is_superuser:
            return queryset
        visible = visible_rows(model, request.user)
        return queryset if visible is None else queryset.filter(pk__in=visible.values("pk"))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        kwargs["queryset"] = self.related_choices(
            request, related, kwargs.get("queryset", related._default_manager.all())
        )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.related_model
        kwargs["queryset"] = self.related_choices(
            request, related, kwargs.get("queryset", related._default_manager.all())
        )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if request.user.is_superuser:
            return filters
        # A plain relation filter lists every row of the related model (all studies' names): only related ones.
        return [
            (f, admin.RelatedOnlyFieldListFilter) if isinstance(f, str) and is_relation(self.model, f) else f
            for f in filters
        ]


def is_relation(model, path):
    try:
        return get_fields_from_path(model, path)[-1].is_relation
    except Exception:  # noqa: BLE001 -- not a field path (a callable or a custom filter): leave it
        return False
