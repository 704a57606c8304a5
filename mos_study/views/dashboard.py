"""The researcher dashboard: studies one may see, each study's progress, its ratings as CSV."""
import csv

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse, reverse_lazy

from sr_models.errors import SRMOSError

from ..models import Study
from ..services import study as studies

researcher_required = login_required(login_url=reverse_lazy("mos_study:login"))


def study_for(user, pk):
    """The study, if this researcher may see it (owner, listed researcher or superuser)."""
    study = get_object_or_404(Study, pk=pk)
    if not studies.can_view(user, study):
        raise PermissionDenied("only the study's owner and listed researchers may see it")
    return study


@researcher_required
def index(request):
    rows = studies.visible_studies(request.user).annotate(n_raters=Count("raters", distinct=True))
    return render(request, "mos_study/dashboard/index.html", {"studies": rows})


@researcher_required
def detail(request, pk):
    study = study_for(request.user, pk)
    context = {
        "study": study,
        "progress": studies.study_progress(study),
        "rater_link": request.build_absolute_uri(reverse("mos_study:start", args=[study.token])),
    }
    return render(request, "mos_study/dashboard/detail.html", context)


class Echo:
    """A file-like object whose write returns the line, for streaming CSV."""

    def write(self, value):
        return value


@researcher_required
def ratings_csv(request, pk):
    study = study_for(request.user, pk)
    writer = csv.DictWriter(Echo(), fieldnames=studies.RATING_COLUMNS)
    lines = (writer.writerow(row) for row in studies.rating_rows(study))
    header = ",".join(studies.RATING_COLUMNS) + "\r\n"
    response = StreamingHttpResponse((line for part in ([header], lines) for line in part), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{study.name}-ratings.csv"'
    return response


@researcher_required
def results(request, pk):
    """MOS per method with 95 % CIs and the raters that screening rejected, from ``mos_study.analysis``."""
    study = study_for(request.user, pk)
    try:
        results = studies.study_results(study)
    except SRMOSError as error:
        return render(request, "mos_study/dashboard/results.html", {"study": study, "error": str(error)})
    screening = results.screening
    rejected = screening.loc[screening["rejected"], ["rater", "reasons"]].to_dict("records")
    context = {
        "study": study,
        "mos": results.mos.to_dict("records"),
        "rejected": rejected,
        "all_rejected": results.options.keep_screened,
        "n_ratings": len(results.ratings),
    }
    return render(request, "mos_study/dashboard/results.html", context)


@researcher_required
def mos_svg(request, pk):
    from ..analysis import mos_figure  # matplotlib: loaded only when a figure is asked for

    study = study_for(request.user, pk)
    try:
        svg = mos_figure(studies.study_results(study), fmt="svg")
    except SRMOSError as error:
        return HttpResponse(str(error), status=404, content_type="text/plain")
    return HttpResponse(svg, content_type="image/svg+xml")
