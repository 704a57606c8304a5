"""The rater's side: /s/<study token>/ (consent), /r/<rater token>/ (rating page, its state and its POSTs)."""

import functools
import secrets

from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from ..forms import ConsentForm
from ..models import DeviceRefusal, Rater, Study
from ..security import consent_limited, rate_limit
from ..services import comparing, pairwise_sessions, rating, sessions
from ..services.errors import StudyError
from .common import read_json, study_error_response

SESSION_KEY = "mos_study_raters"  # {study token: rater token} in the Django session (a cookie)
RATER_LANGUAGES = ("en", "de")
SCORE_WORDS = {
    1: gettext_lazy("bad"),
    2: gettext_lazy("poor"),
    3: gettext_lazy("fair"),
    4: gettext_lazy("good"),
    5: gettext_lazy("excellent"),
}


def score_labels():
    """The ACR scale's words in the active language: {score: word}."""
    return {score: str(word) for score, word in SCORE_WORDS.items()}


def page_text():
    """The rating page's words (rate.js reads them from its config), in the active language."""
    return {
        "connection": _("Connection problem, retrying… (your ratings so far are saved)"),
        "busy": _("Server busy, retrying… (your ratings so far are saved)"),
        "progress": _("Image {n} of {total}"),
        "sizeWarning": _(
            "To see the whole image at its true size, please make the window larger (or use a larger screen)."
        ),
        "wait": _("Please wait until the image is shown."),
        "tooFast": _("Too fast: please look at the image a little longer before you rate it."),
        "saving": _("Saving…"),
        "calibration": _("Calibration: this image is an example of {score} ({label}). Please rate it {score}."),
        "loading": _("Loading…"),
        "imageRetry": _("The image did not load, trying again…"),
        "imageFailed": _("This image could not be loaded, so it cannot be rated. Check your connection, then"),
        "tryAgain": _("try again"),
        "refused": _("The server refused the rating ({status})."),
        "movedOn": _("This session continued in another tab or window. The page reloads to continue from there…"),
    }


def pair_text():
    """The pairwise page's words (compare.js reads them from its config), in the active language."""
    return {
        **page_text(),
        "progress": _("Pair {n} of {total}"),
        "sizeWarning": _(
            "To see both images at their true size side by side, please make the window larger; meanwhile they are "
            "shown one at a time: press T (or space) to switch."
        ),
        "wait": _("Please wait until both images are shown."),
        "tooFast": _("Too fast: please look at both images a little longer before you choose."),
        "calibration": _("Example: the {side} image is clearly the better one. Please choose it."),
        "left": _("left"),
        "right": _("right"),
        "showing": _("Showing the {side} image (press T or space for the other)"),
    }


def pairwise_config(rater):
    """What the pairwise page (compare.js) reads: its URLs, timing, whether 'no preference' is offered, its words
    (a preview gives a rater without a token and replaces the URLs)."""
    return {
        "stateUrl": reverse("mos_study:session_state", args=[rater.token]) if rater.token else "",
        "submitUrl": reverse("mos_study:submit_choice", args=[rater.token]) if rater.token else "",
        "heartbeatUrl": reverse("mos_study:heartbeat", args=[rater.token]) if rater.token else "",
        "minViewMs": rater.study.min_view_ms,
        "allowTie": rater.study.allow_tie,
        "text": pair_text(),
    }


def rater_language(request, study):
    """The study's language, else the browser's (Accept-Language) where the pages have it, else English."""
    if study.language in RATER_LANGUAGES:
        return study.language
    language = translation.get_language_from_request(request)
    return language if language in RATER_LANGUAGES else "en"


def in_rater_language(view):
    """Render a rater view in the study's (or the browser's) language; the study comes from the URL's token."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        study = study_of(kwargs)
        request.rater_study = study  # the view's study, read once (a session start counts its queries)
        language = rater_language(request, study) if study is not None else "en"
        with translation.override(language):
            response = view(request, *args, **kwargs)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        response.headers.setdefault("Content-Language", language)
        return response

    return wrapper


def study_of(kwargs):
    if "study_token" in kwargs:
        return Study.objects.filter(token=kwargs["study_token"]).first()
    if "rater_token" in kwargs:
        rater = Rater.objects.select_related("study").filter(token=kwargs["rater_token"]).first()
        return rater.study if rater else None
    return None


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
                _(
                    "This participant id has already started this study in another browser. Please continue in "
                    "that browser, or open the study again from the panel's own link."
                )
            )
        return rater
    if not participant_id and remembered:
        rater = Rater.objects.filter(study=study, token=remembered).first()
    return rater


class PanelIdTaken(StudyError):
    status = 403


def unavailable(request, message, status, retry_after=None, study=None):
    context = {"message": message, "study": study, "default_title": _("Image quality study")}
    response = render(request, "mos_study/rater/unavailable.html", context, status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def refused(request, error, study=None):
    return unavailable(request, str(error), error.status, getattr(error, "retry_after", None), study)


def panel_from(request):
    """Prolific's STUDY_ID and SESSION_ID, recorded beside the participant id."""
    return {key: request.GET.get(param, "") for key, param in sessions.PANEL_PARAMS.items()}


def largest_image(study):
    """The (width, height) of the study's largest stimulus: a window that must fit it is at least this big."""
    sizes = study.stimuli.values_list("output__width", "output__height")
    return max((w for w, _h in sizes), default=0), max((h for _w, h in sizes), default=0)


def device_rules(study):
    """What the consent page checks in the browser before it offers the form (start.js reads the data attributes)."""
    width, height = largest_image(study) if study.window_fits_images else (0, 0)
    return {"exclude_phones": study.exclude_phones, "min_width": width, "min_height": height}


def device_refusal(study, data):
    """The reason a study refuses this device (from what the page reported), or "" where it may take part."""
    if study.exclude_phones and str(data.get("phone", "")) == "1":
        return "phone"
    if study.window_fits_images:
        width, height = largest_image(study)
        try:
            ratio = float(data.get("device_pixel_ratio") or 1) or 1
            window = float(data.get("window_width", 0)), float(data.get("window_height", 0))
        except (TypeError, ValueError):
            return ""
        if window[0] and (window[0] * ratio < width or window[1] * ratio < height):
            return "window_too_small"
    return ""


REFUSAL_TEXT = {
    "phone": gettext_lazy("This study cannot be done on a phone. Please open the link on a computer."),
    "window_too_small": gettext_lazy(
        "Your browser window is too small to show the study's images at their true size. Please use a larger "
        "screen or window (and a zoom of 100 %), then open the link again."
    ),
}


@never_cache
@require_POST
@in_rater_language
@rate_limit("session", token_kwarg="study_token")
def refuse_device(request, study_token):
    """The consent page found a device the study excludes: record the reason (and what the page saw)."""
    study = get_object_or_404(Study, token=study_token)
    try:
        payload = read_json(request)
    except StudyError as error:
        return study_error_response(error)
    reason = device_refusal(study, payload)
    if reason:
        viewing = sessions.clean_viewing(payload)
        DeviceRefusal.objects.create(study=study, reason=reason, viewing=viewing)
    return JsonResponse({"ok": True, "reason": reason, "message": str(REFUSAL_TEXT.get(reason, ""))})


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@in_rater_language
@rate_limit("session", token_kwarg="study_token")
def start(request, study_token):
    study = getattr(request, "rater_study", None) or get_object_or_404(Study, token=study_token)
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
        return refused(request, problem, study)
    data = request.POST if request.method == "POST" else None
    form = ConsentForm(data, initial={"participant_id": participant_id})
    refusal = device_refusal(study, request.POST) if request.method == "POST" else ""
    if refusal:  # the page's check, again on the server (it reports the device in hidden fields)
        DeviceRefusal.objects.create(study=study, reason=refusal, viewing=sessions.clean_viewing(request.POST.dict()))
        return unavailable(request, str(REFUSAL_TEXT[refusal]), 403, study=study)
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
    context = {
        "study": study,
        "form": form,
        "labels": score_labels().items(),
        "device": device_rules(study),
        "refuse_url": reverse("mos_study:refuse_device", args=[study.token]),
    }
    return render(request, "mos_study/rater/start.html", context)


def rater_session(rater_token):
    rater = get_object_or_404(Rater.objects.select_related("study"), token=rater_token)
    session = sessions.current_session(rater)
    if session is None:
        raise Http404("no session")
    return rater, session


@never_cache
@require_safe
@in_rater_language
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
    if study.protocol == Study.Protocol.PAIRWISE:
        context = {"config": pairwise_config(rater), "study": study}
        return render(request, "mos_study/rater/compare.html", context)
    config = {
        "stateUrl": reverse("mos_study:session_state", args=[rater.token]),
        "submitUrl": reverse("mos_study:submit_rating", args=[rater.token]),
        "heartbeatUrl": reverse("mos_study:heartbeat", args=[rater.token]),
        "labels": score_labels(),
        "minViewMs": study.min_view_ms,
        "text": page_text(),
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
    # One reverse() for all images: tokens are URL-safe, so each URL is the same with its token put in.
    before, _, after = reverse("mos_study:image", args=["TOKEN"]).rpartition("TOKEN")
    if session.study.protocol == Study.Protocol.PAIRWISE:
        data = pairwise_sessions.pair_state(session)
        for trial in data["trials"]:
            for side in ("left", "right"):
                trial[side]["image"] = f"{before}{trial[side].pop('image_token')}{after}"
        return JsonResponse(data)
    data = sessions.session_state(session)
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
        rater, _session = rater_session(rater_token)  # an unknown rater link is a 404 whatever the body said
        with translation.override(rater_language(request, rater.study)):  # the message (lazy) in the rater's words
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


@never_cache
@require_POST
@rate_limit("rating", token_kwarg="rater_token")
def submit_choice(request, rater_token):
    """One choice on a pairwise trial (``{"trial", "choice": "left"|"right"|"none", "response_ms"}``); the answer
    carries the session's progress only, never which side showed which stimulus."""
    try:
        payload = read_json(request)
        receipt = comparing.choose_side(
            rater_token, payload.get("trial", ""), payload.get("choice"), payload.get("response_ms")
        )
    except StudyError as error:
        rater, _session = rater_session(rater_token)  # an unknown rater link is a 404 whatever the body said
        with translation.override(rater_language(request, rater.study)):
            return study_error_response(error)
    return JsonResponse(
        {
            "ok": True,
            "created": receipt.created,
            "trial": receipt.trial,
            "choice": receipt.side,
            "done": receipt.done,
            "total": receipt.total,
            "finished": receipt.finished,
        },
        status=201 if receipt.created else 200,
    )
