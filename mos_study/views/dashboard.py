"""The researcher dashboard: studies one may see, each study's progress, its ratings as CSV (results: results.py)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse, reverse_lazy
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_safe

from ..models import Study
from ..services import exports, progress

researcher_required = login_required(login_url=reverse_lazy("mos_study:login"))


def study_for(user, pk):
    """The study, if this researcher may see it (owner, listed researcher or superuser)."""
    study = get_object_or_404(Study, pk=pk)
    if not progress.can_view(user, study):
        raise PermissionDenied("only the study's owner and listed researchers may see it")
    return study


@researcher_required
@require_safe
def index(request):
    rows = progress.visible_studies(request.user).annotate(n_raters=Count("raters", distinct=True))
    return render(request, "mos_study/dashboard/index.html", {"studies": rows})


@researcher_required
@require_safe
def detail(request, pk):
    study = study_for(request.user, pk)
    context = {
        "study": study,
        "progress": progress.study_progress(study),
        "rater_link": request.build_absolute_uri(reverse("mos_study:start", args=[study.token])),
    }
    return render(request, "mos_study/dashboard/detail.html", context)


@researcher_required
@require_safe
def ratings_csv(request, pk):
    """Every rating in the columns mos_study.analysis reads, streamed as the database yields them."""
    study = study_for(request.user, pk)
    return csv_stream(exports.analysis_csv_lines(study), f"{study.name}-ratings.csv")


def private(response):
    """A researcher's download: never kept by a shared cache or the browser (participant ids, ratings)."""
    response["Cache-Control"] = "private, no-store"
    return response


def csv_stream(lines, filename):
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return private(response)
