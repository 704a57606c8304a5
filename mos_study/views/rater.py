"""The rater's side: /s/<study token>/ (consent), /r/<rater token>/ (rating page, its state and its POSTs)."""

import secrets

from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from ..forms import ConsentForm
from ..models import Rater, Study
from ..security import consent_limited, rate_limit
from ..services import rating, sessions
from ..services.errors import StudyError
from .common import read_json, study_error_response

SESSION_KEY = "mos_study_raters"  # {study token: rater token} in the Django session (a cookie)


def participant_from(request):
    for name in sessions.PARTICIPANT_PARAMS:
        if request.GET.get(name):
            return request.GET[name]
    return request.POST.get("participant_id", "")


def remember(request, rater):
    raters = request.session.get(SESSION_KEY, {})
    if raters.get(rater.study.token) != rater.token:
        request.session[SESSION_KEY] = {**raters, rater.study.token: rater.token}


def known_rater(request, study, participant_id):
    """The rater this browser or this panel participant id already is for ``study``.

    A known panel id alone resumes nothing (anyone can type one): the browser must hold the rater in its cookie
    session, or the request must carry the panel's own second identifier (Prolific's ``SESSION_ID``) that the rater
    started with. Otherwise ``PanelIdTaken`` (403)."""
    remembered = request.session.get(SESSION_KEY, {}).get(study.token)
    rater = sessions.find_rater(study, participant_id)
    if rater is not None:
        panel_session = getattr(rater, "panel_session_id", "") or ""
        given = request.GET.get("SESSION_ID", "")
        if rater.token != remembered and not (panel_session and given and secrets.compare_digest(given, panel_session)):
            raise PanelIdTaken(
                "This participant id has already started this study in another browser. Please continue in that "
                "browser, or open the study again from the panel's own link."
            )
        return rater
    if not participant_id and remembered:
        rater = Rater.objects.filter(study=study, token=remembered).first()
    return rater


class PanelIdTaken(StudyError):
    status = 403


def unavailable(request, message, status, retry_after=None):
    response = render(request, "mos_study/rater/unavailable.html", {"message": message}, status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def refused(request, error):
    return unavailable(request, str(error), error.status, getattr(error, "retry_after", None))


def panel_from(request):
    """Prolific's STUDY_ID and SESSION_ID, recorded beside the participant id."""
    return {key: request.GET.get(param, "") for key, param in sessions.PANEL_PARAMS.items()}


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@rate_limit("session", token_kwarg="study_token")
def start(request, study_token):
    study = get_object_or_404(Study, token=study_token)
    try:
        participant_id = sessions.clean_participant_id(participant_from(request))
    except StudyError as error:
        return unavailable(request, str(error), error.status)
    try:
        rater = known_rater(request, study, participant_id)
    except PanelIdTaken as error:
        return unavailable(request, str(error), error.status)
    if rater is not None:
        return redirect("mos_study:rate", rater.token)
    problem = sessions.availability(study)  # closed, paused or full: said before the consent form
    if problem is not None:
        return refused(request, problem)
    data = request.POST if request.method == "POST" else None
    form = ConsentForm(data, initial={"participant_id": participant_id})
    if request.method == "POST" and form.is_valid():
        limited = consent_limited(request)  # per address: empty sessions cannot fill a study
        if limited is not None:
            return limited
        try:
            session = sessions.start_session(
                study,
                participant_id=participant_id,
                user_agent=request.headers.get("User-Agent", ""),
                panel=panel_from(request),
            )
        except StudyError as error:
            return refused(request, error)
        remember(request, session.rater)
        return redirect("mos_study:rate", session.rater.token)
    context = {"study": study, "form": form, "labels": rating.SCORE_LABELS.items()}
    return render(request, "mos_study/rater/start.html", context)


def rater_session(rater_token):
    rater = get_object_or_404(Rater.objects.select_related("study"), token=rater_token)
    session = sessions.current_session(rater)
    if session is None:
        raise Http404("no session")
    return rater, session


@never_cache
@require_safe
def rate(request, rater_token):
    rater, session = rater_session(rater_token)
    remember(request, rater)
    rating.mark_finished(session)  # normally done by the last rating; here too, so a page never loops on nothing
    study = rater.study
    if session.finished:
        return render(request, "mos_study/rater/done.html", {"session": session, "study": study})
    if not rating.takes_ratings(study.status, study.on_close):  # closed, raters screened out: their code
        context = {"session": session, "study": study, "screened_out": True}
        return render(request, "mos_study/rater/done.html", context)
    config = {
        "stateUrl": reverse("mos_study:session_state", args=[rater.token]),
        "submitUrl": reverse("mos_study:submit_rating", args=[rater.token]),
        "heartbeatUrl": reverse("mos_study:heartbeat", args=[rater.token]),
        "labels": rating.SCORE_LABELS,
        "minViewMs": study.min_view_ms,
    }
    return render(request, "mos_study/rater/rate.html", {"config": config, "study": study})


@never_cache
@require_POST
@rate_limit("rating", token_kwarg="rater_token")
def heartbeat(request, rater_token):
    """The open page's sign of life: extends the session's lease, records its viewing conditions."""
    try:
        payload = read_json(request)
    except StudyError as error:
        return study_error_response(error)
    session = sessions.heartbeat(rater_token, payload.get("viewing"))
    if session is None:
        raise Http404("no session")
    return JsonResponse({"ok": True, "finished": session.finished is not None})


@never_cache
@require_safe
def state(request, rater_token):
    session = sessions.session_of(rater_token)
    if session is None:
        raise Http404("no session")
    data = sessions.session_state(session)
    # One reverse() for all images: trial tokens are URL-safe, so each URL is the same with its token put in.
    before, _, after = reverse("mos_study:image", args=["TOKEN"]).rpartition("TOKEN")
    for trial in data["trials"]:
        trial["image"] = f"{before}{trial['token']}{after}"
    return JsonResponse(data)


@never_cache
@require_POST
@rate_limit("rating", token_kwarg="rater_token")
def submit(request, rater_token):
    """One rating: the service's few statements in one transaction; the cookie session is never read or written."""
    try:
        payload = read_json(request)
        receipt = rating.rate_trial(
            rater_token, payload.get("trial", ""), payload.get("score"), payload.get("response_ms")
        )
    except StudyError as error:
        rater_session(rater_token)  # an unknown rater link is a 404 whatever the body said (checked only on errors)
        return study_error_response(error)
    return JsonResponse(
        {
            "ok": True,
            "created": receipt.created,
            "trial": receipt.trial,
            "score": receipt.score,
            "done": receipt.done,
            "total": receipt.total,
            "finished": receipt.finished,
        },
        status=201 if receipt.created else 200,
    )
