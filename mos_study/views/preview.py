"""A researcher walks through a study as a rater would, and nothing counts: /dashboard/<pk>/preview/.

The preview plans a session as ``start_session`` would (calibration first, balanced choice, order apart) but stores
no rater, session, trial or rating: the plan and its progress live in the researcher's own Django session, images
come through their stimulus tokens, and "ratings" are checked (score, minimum viewing time) and forgotten. So a
preview holds no capacity and leaves no trace in the results.
"""

from types import SimpleNamespace

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import translation
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from ..models import Study
from ..services import comparing, pairwise_sessions, progress, rating, sessions
from ..services.errors import StudyError, TooFast, TrialNotFound
from .common import read_json, study_error_response
from .rater import page_text, pairwise_config, rater_language, score_labels

PREVIEW_KEY = "mos_study_previews"  # {study pk: {"trials": [...], "done": [...]}} in the researcher's session


def previewable(request, pk):
    study = get_object_or_404(Study, pk=pk)
    if not progress.can_view(request.user, study):
        raise PermissionDenied("only the study's owner and listed researchers may preview it")
    return study


def stored_plan(request, study, restart=False):
    previews = request.session.get(PREVIEW_KEY, {})
    plan = previews.get(str(study.pk))
    if plan is None or restart:
        pairwise = study.protocol == Study.Protocol.PAIRWISE
        trials = pairwise_sessions.preview_pairs(study) if pairwise else sessions.preview_trials(study)
        plan = {"trials": trials, "done": []}
        request.session[PREVIEW_KEY] = {**previews, str(study.pk): plan}
    return plan


def save_plan(request, study, plan):
    request.session[PREVIEW_KEY] = {**request.session.get(PREVIEW_KEY, {}), str(study.pk): plan}


@never_cache
@require_safe
@login_required
def preview(request, pk):
    study = previewable(request, pk)
    plan = stored_plan(request, study, restart="restart" in request.GET)
    restart_url = reverse("mos_study:preview", args=[study.pk]) + "?restart=1"
    context = {"study": study, "preview": True, "restart_url": restart_url}
    if plan["trials"] and len(plan["done"]) >= len(plan["trials"]):
        context["session"] = SimpleNamespace(completion_code="PREVIEW", screen_out_code="PREVIEW")
        with translation.override(rater_language(request, study)):
            return render(request, "mos_study/rater/done.html", context)
    if study.protocol == Study.Protocol.PAIRWISE:
        with translation.override(rater_language(request, study)):
            context["config"] = {
                **pairwise_config(SimpleNamespace(token="", study=study)),
                "stateUrl": reverse("mos_study:preview_state", args=[study.pk]),
                "submitUrl": reverse("mos_study:preview_rate", args=[study.pk]),
                "heartbeatUrl": "",
            }
            return render(request, "mos_study/rater/compare.html", context)
    with translation.override(rater_language(request, study)):  # the rater's words, as the study shows them
        context["config"] = {
            "stateUrl": reverse("mos_study:preview_state", args=[study.pk]),
            "submitUrl": reverse("mos_study:preview_rate", args=[study.pk]),
            "heartbeatUrl": "",
            "labels": score_labels(),
            "minViewMs": study.min_view_ms,
            "text": page_text(),
        }
        return render(request, "mos_study/rater/rate.html", context)


@never_cache
@require_safe
@login_required
def preview_state(request, pk):
    study = previewable(request, pk)
    plan = stored_plan(request, study)
    before, _, after = reverse("mos_study:image", args=["TOKEN"]).rpartition("TOKEN")
    done = set(plan["done"])
    if study.protocol == Study.Protocol.PAIRWISE:
        trials = [
            {
                **trial,
                **{
                    side: {**trial[side], "image": f"{before}{trial[side]['stimulus']}{after}"}
                    for side in ("left", "right")
                },
            }
            for trial in plan["trials"]
            if trial["token"] not in done
        ]
        state = {"total": len(plan["trials"]), "done": len(done), "finished": not trials, "trials": trials}
        return JsonResponse({**state, "allow_tie": study.allow_tie})
    trials = [
        {**{k: v for k, v in trial.items() if k != "stimulus"}, "image": f"{before}{trial['stimulus']}{after}"}
        for trial in plan["trials"]
        if trial["token"] not in done
    ]
    return JsonResponse({"total": len(plan["trials"]), "done": len(done), "finished": not trials, "trials": trials})


@never_cache
@require_POST
@login_required
def preview_rate(request, pk):
    study = previewable(request, pk)
    plan = stored_plan(request, study)
    try:
        payload = read_json(request)
        if study.protocol == Study.Protocol.PAIRWISE:  # a side, as the pairwise page posts it
            score = comparing.clean_side(payload.get("choice"), study.allow_tie)
        else:
            score = rating.clean_score(payload.get("score"))
        response_ms = rating.clean_response_ms(payload.get("response_ms"))
        token = str(payload.get("trial", ""))
        if token not in {trial["token"] for trial in plan["trials"]}:
            raise TrialNotFound(gettext_lazy("no such trial in this preview"))
        if response_ms is not None and response_ms < study.min_view_ms:
            raise TooFast(
                format_lazy(
                    gettext_lazy("answered {response_ms} ms after the image appeared (minimum {min_view_ms} ms)"),
                    response_ms=response_ms,
                    min_view_ms=study.min_view_ms,
                )
            )
    except StudyError as error:
        with translation.override(rater_language(request, study)):  # the rater's words, as the study shows them
            return study_error_response(error)
    created = token not in plan["done"]
    if created:
        plan["done"].append(token)
        save_plan(request, study, plan)
    done, total = len(plan["done"]), len(plan["trials"])
    return JsonResponse(
        {
            "ok": True,
            "created": created,
            "trial": token,
            "score": score,
            "done": done,
            "total": total,
            "finished": done >= total,
        },
        status=201 if created else 200,
    )
