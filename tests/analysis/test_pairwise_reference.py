"""Agreement with Netflix's sureal 0.9.0 (``sureal.pc_subjective_model``) and with hand-computable cases.

sureal's conventions, read from its source: ``ThurstoneMlePairedCompSubjectiveModel`` maximises
Σ α_ij log Φ(v_i - v_j) (the difference has unit variance; SLSQP from v = 0, so the scores come out with mean 0;
a 1e-8/M guard inside the log); ``BradleyTerryMlePairedCompSubjectiveModel`` iterates p_i = W_i / Σ_j n_ij/(p_i+p_j)
with Σ p = 1 and reports v = log p (log odds, so any mean). Neither has a prior. The mapping to ours (``prior_sd=None``,
scores in JOD with mean 0): Thurstone JOD = v / Φ⁻¹(0.75), Bradley-Terry JOD = v / log 3, both centred.
Shared data: the win matrix of sureal's own docstrings, and a simulated study (8 conditions, 20 raters, ties) that
goes through sureal's ``PairedCompDatasetReader`` and our ``read_comparisons`` alike.
"""

import contextlib
import io
import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from sureal import pc_subjective_model as sureal_models  # requirements-dev.txt (tests only)
from sureal.dataset_reader import PairedCompDatasetReader

from mos_study.analysis.pairwise import build_pairwise_results, read_comparisons
from mos_study.analysis.pairwise.scaling import MODEL_UNITS_PER_JOD, fit_scale, win_probability
from mos_study.analysis.pairwise.tensors import win_tensor

SUREAL_DOC_WINS = np.array([[0, 3, 2, 7], [1, 0, 6, 3], [4, 3, 0, 0], [1, 2, 5, 0]], dtype=float)
SUREAL = {
    "thurstone": sureal_models.ThurstoneMlePairedCompSubjectiveModel,
    "bradley-terry": sureal_models.BradleyTerryMlePairedCompSubjectiveModel,
}


def sureal_jod(model, wins):
    """sureal's scores for a win matrix, mapped to JOD with mean 0."""
    with contextlib.redirect_stdout(io.StringIO()):  # sureal prints its iterations
        if model == "thurstone":
            scores, _, _ = SUREAL[model].resolve_model(wins)
        else:
            scores = SUREAL[model].resolve_model(wins, display=False)[0]
    scores = np.asarray(scores) / MODEL_UNITS_PER_JOD[model]
    return scores - scores.mean()


def simulated_study(seed=3, n_conditions=8, n_raters=20):
    """Each rater compares every pair once (sureal keeps one answer per rater and pair); 5 % ties."""
    rng = np.random.default_rng(seed)
    quality = np.linspace(0.0, 3.0, n_conditions)
    rows = []
    for rater, (i, j) in itertools.product(range(n_raters), itertools.combinations(range(n_conditions), 2)):
        u = rng.random()
        choice = "tie" if u < 0.05 else ("a" if rng.random() < win_probability(quality[i] - quality[j]) else "b")
        rows.append([f"r{rater:02d}", "img", f"m{i}", f"m{j}", choice])
    return pd.DataFrame(rows, columns=["rater", "image", "method_a", "method_b", "choice"])


def sureal_reader(frame):
    """The same comparisons as a sureal PairedCompDatasetReader (asset ids = our method order)."""
    methods = sorted(set(frame["method_a"]) | set(frame["method_b"]))
    index = {m: i for i, m in enumerate(methods)}
    votes = [{} for _ in methods]
    value = {"a": 1.0, "b": 0.0, "tie": 0.5}
    for row in frame.itertuples(index=False):
        votes[index[row.method_a]][(row.rater, index[row.method_b])] = value[row.choice]
    dis_videos = [dict(content_id=0, asset_id=i, os=votes[i], path=f"{m}.yuv") for i, m in enumerate(methods)]
    dataset = SimpleNamespace(
        dataset_name="shared",
        yuv_fmt="yuv420p",
        width=1,
        height=1,
        ref_videos=[dict(content_id=0, content_name="img", path="ref.yuv")],
        dis_videos=dis_videos,
    )
    return PairedCompDatasetReader(dataset), methods


@pytest.mark.parametrize("model", ["thurstone", "bradley-terry"])
def test_scale_matches_sureal_on_its_docstring_matrix(model):
    ours = fit_scale(SUREAL_DOC_WINS, model, prior_sd=None)
    assert np.abs(ours - sureal_jod(model, SUREAL_DOC_WINS)).max() < 1e-4
    assert np.ptp(ours) > 0.5  # not a degenerate all-equal answer


@pytest.mark.parametrize("model", ["thurstone", "bradley-terry"])
def test_scale_matches_sureal_through_both_readers(model):
    frame = simulated_study()
    reader, methods = sureal_reader(frame)
    with contextlib.redirect_stdout(io.StringIO()):
        result = SUREAL[model](reader).run_modeling()
    theirs = np.asarray(result["quality_scores"]) / MODEL_UNITS_PER_JOD[model]
    theirs = pd.Series(theirs - theirs.mean(), index=methods)
    comparisons = read_comparisons(frame)
    assert (comparisons["choice"] == "tie").sum() > 0
    tensor = win_tensor(comparisons, "comparisons")
    ours = pd.Series(fit_scale(tensor.pooled, model, prior_sd=None), index=tensor.methods)
    assert np.abs(ours - theirs[ours.index]).max() < 1e-4
    # the results table is the same scale, anchored at the first method
    table = build_pairwise_results(comparisons, model=model, bootstrap=0, prior_sd=None).scale_per_method
    expected = (theirs - theirs[tensor.methods[0]])[table["method"]]
    assert np.abs(table["scale"].to_numpy() - expected.to_numpy()).max() < 1e-4


@pytest.mark.parametrize("won, lost", [(30, 10), (12, 8), (3, 17)])
def test_two_conditions_bradley_terry_is_log_odds(won, lost):
    scores = fit_scale(np.array([[0, won], [lost, 0]], dtype=float), "bradley-terry", prior_sd=None)
    assert scores[0] - scores[1] == pytest.approx(np.log(won / lost) / np.log(3), abs=1e-9)


@pytest.mark.parametrize("won, lost", [(30, 10), (12, 8), (3, 17)])
def test_two_conditions_thurstone_is_probit_of_win_rate(won, lost):
    scores = fit_scale(np.array([[0, won], [lost, 0]], dtype=float), "thurstone", prior_sd=None)
    assert scores[0] - scores[1] == pytest.approx(norm.ppf(won / (won + lost)) / norm.ppf(0.75), abs=1e-9)


def test_75_percent_preference_is_one_jod_in_both_models():
    for model in ("thurstone", "bradley-terry"):
        scores = fit_scale(np.array([[0, 75], [25, 0]], dtype=float), model, prior_sd=None)
        assert scores[0] - scores[1] == pytest.approx(1.0, abs=1e-9)
        assert win_probability(1.0, model) == pytest.approx(0.75)


def test_a_tie_counts_half_a_win_to_each_side():
    frame = pd.DataFrame(
        [["r1", "i", "x", "y", "a"], ["r2", "i", "x", "y", "tie"], ["r3", "i", "y", "x", "x"]],
        columns=["rater", "image", "method_a", "method_b", "choice"],
    )
    tensor = win_tensor(read_comparisons(frame), "comparisons")
    assert tensor.methods == ("x", "y")
    assert tensor.pooled.tolist() == [[0.0, 2.5], [0.5, 0.0]]


@pytest.mark.parametrize("model", ["thurstone", "bradley-terry"])
def test_simulated_observers_are_recovered(model):
    """Observers that follow the model (8 conditions over 3 JOD, 400 answers per pair): the scale comes back within
    a few hundredths of a JOD, and the other model's fit of the same data does not."""
    rng = np.random.default_rng(11)
    quality = np.array([0.0, 0.3, 0.8, 1.2, 1.9, 2.2, 2.6, 3.0])
    wins = np.zeros((8, 8))
    for i, j in itertools.combinations(range(8), 2):
        won = rng.binomial(400, win_probability(quality[i] - quality[j], model))
        wins[i, j], wins[j, i] = won, 400 - won
    recovered = fit_scale(wins, model)
    assert np.abs((recovered - recovered.mean()) - (quality - quality.mean())).max() < 0.08
    other = fit_scale(wins, "bradley-terry" if model == "thurstone" else "thurstone")
    assert np.abs(other - recovered).max() > 0.02  # the models differ in the tails: the test can tell them apart


@pytest.mark.parametrize("won, lost", [(30, 10), (5, 0), (3, 1)])
def test_firth_bias_reduction_of_two_conditions_adds_half_a_win_each_side(won, lost):
    """Firth's penalised likelihood for one logit parameter is the MLE of the counts plus one half (Firth 1993)."""
    wins = np.array([[0, won], [lost, 0]], dtype=float)
    scores = fit_scale(wins, "bradley-terry", prior_sd=None, bias_reduction=True)
    assert scores[0] - scores[1] == pytest.approx(np.log((won + 0.5) / (lost + 0.5)) / np.log(3), abs=1e-8)
    thurstone = fit_scale(wins, "thurstone", prior_sd=None, bias_reduction=True)
    assert np.isfinite(thurstone).all()  # finite even for a unanimous pair, with no prior
    if lost:
        plain = fit_scale(wins, "thurstone", prior_sd=None)
        assert 0 < thurstone[0] - thurstone[1] < plain[0] - plain[1]  # pulled towards 0
