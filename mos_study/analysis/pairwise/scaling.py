"""Thurstone Case V and Bradley-Terry maximum-likelihood scaling of pairwise comparisons, in JOD units.

Input is a win matrix ``wins[i, j]`` = times condition i was preferred to j (a tie counts 0.5 to each side), or a
stack of them (``(..., n, n)``: bootstrap replicates and images are fitted together, vectorised).

Models (``d`` the difference of two scores in the model's own unit):
- ``thurstone``: P(i preferred to j) = Φ(d), Case V (equal, uncorrelated noise); sureal's
  ``ThurstoneMlePairedCompSubjectiveModel`` uses the same unit.
- ``bradley-terry``: P = 1 / (1 + exp(-d)), d the log odds; sureal's ``BradleyTerryMlePairedCompSubjectiveModel``
  reports log p_i, the same unit.

JOD (just-objectionable differences, as pwcmp reports them, Perez-Ortiz & Mantiuk 2017): 1 JOD is the difference
that 75 % of the comparisons prefer, so a Thurstone score is divided by Φ⁻¹(0.75) = 0.6745 (pwcmp's σ = 1.4826) and a
Bradley-Terry score by log 3. Fitted scores come out with mean 0; ``anchor`` puts a reference condition at 0 as pwcmp
does (its first condition).

Prior: unanimous pairs (one side always preferred) have no finite maximum-likelihood difference, and a condition
never compared has none at all, so by default a weak Gaussian prior N(0, prior_sd²) on each score (prior_sd = 10 JOD)
keeps them finite; with ordinary data it moves scores by far less than their CI. ``prior_sd=None`` is the plain
maximum-likelihood estimate (sureal's, pwcmp's ``use_prior=0``). pwcmp's own default prior (a distance prior built from
binomial likelihoods) is not reproduced.
"""

from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy.stats import norm

from ..ratings import RatingsError

MODELS = ("thurstone", "bradley-terry")
MODEL_UNITS_PER_JOD = {"thurstone": float(norm.ppf(0.75)), "bradley-terry": float(np.log(3.0))}
DEFAULT_PRIOR_SD = 10.0  # JOD
MAX_ITERATIONS = 100
TOLERANCE = 1e-10


def check_model(model):
    if model not in MODELS:
        raise RatingsError(f"unknown pairwise model {model!r}; use one of {', '.join(MODELS)}")
    return model


LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def log_probability(model, d):
    """log P(preferred) for score difference d (model units)."""
    return special.log_ndtr(d) if model == "thurstone" else -np.logaddexp(0.0, -d)


def log_preference(model, d, log_p=None):
    """log P(preferred) for score difference d (model units), and its first and second derivatives (``log_p``: the
    log probability already computed at d)."""
    log_p = log_probability(model, d) if log_p is None else log_p
    if model == "thurstone":
        ratio = np.exp(-0.5 * d * d - LOG_SQRT_2PI - log_p)  # φ/Φ, stable far in the tails
        return log_p, ratio, -ratio * (d + ratio)
    lose = special.expit(-d)
    return log_p, lose, -lose * special.expit(d)


def _differences(scores):
    return scores[..., :, None] - scores[..., None, :]


def log_likelihood(wins, scores, model, log_p=None):
    """Σ_ij wins_ij · log P(i preferred to j) for scores in model units (per stacked matrix)."""
    log_p = log_probability(model, _differences(scores)) if log_p is None else log_p
    return np.sum(wins * log_p, axis=(-2, -1))  # log_p is finite everywhere (log_ndtr, logaddexp)


@dataclass(frozen=True)
class Penalty:
    """What is added to the negative log-likelihood: the Gaussian prior's precision (model units), and Firth's
    bias-reducing penalty -½ log det(Fisher information) (Firth 1993; ``bias_reduction``)."""

    ridge: float = 0.0
    firth: bool = False


def fisher_weight(model, d):
    """Fisher information of one comparison at difference d, and its derivative (odd in d)."""
    if model == "thurstone":
        log_pdf = -0.5 * d * d - LOG_SQRT_2PI
        weight = np.exp(2 * log_pdf - special.log_ndtr(d) - special.log_ndtr(-d))
        ratio_up, ratio_down = np.exp(log_pdf - special.log_ndtr(d)), np.exp(log_pdf - special.log_ndtr(-d))
        return weight, weight * (-2 * d - ratio_up + ratio_down)
    win = special.expit(d)
    weight = win * (1 - win)
    return weight, weight * (1 - 2 * win)


def _information(wins, scores, model):
    """Fisher information of the scores (plus the mean direction, so that it is invertible), its inverse, and the
    derivatives of the per-comparison weights."""
    n = scores.shape[-1]
    totals = wins + np.swapaxes(wins, -1, -2)
    weight, slope = fisher_weight(model, _differences(scores))
    coupling = totals * weight
    matrix = np.eye(n) * coupling.sum(axis=-1)[..., None] - coupling + np.ones((n, n)) / n + 1e-9 * np.eye(n)
    return matrix, np.linalg.inv(matrix), totals * slope


def _objective(wins, scores, model, penalty):
    """Negative log posterior, and the log probabilities it used (the next derivatives reuse them); the (Σs)²/2n term
    fixes the mean at 0 without changing any difference."""
    n = scores.shape[-1]
    total = scores.sum(axis=-1)
    log_p = log_probability(model, _differences(scores))
    value = -log_likelihood(wins, scores, model, log_p) + 0.5 * penalty.ridge * np.sum(scores**2, axis=-1)
    if penalty.firth:
        value = value - 0.5 * np.linalg.slogdet(_information(wins, scores, model)[0])[1]
    return value + 0.5 * total**2 / n, log_p


def _derivatives(wins, scores, model, penalty, log_p=None):
    """Gradient and Hessian of ``_objective`` (with Firth's penalty, the Hessian of the rest: a quasi-Newton step)."""
    n = scores.shape[-1]
    _, first, second = log_preference(model, _differences(scores), log_p)
    weighted = wins * first
    gradient = weighted.sum(axis=-1) - weighted.sum(axis=-2)
    curvature = wins * second
    curvature = curvature + np.swapaxes(curvature, -1, -2)
    hessian = np.eye(n) * curvature.sum(axis=-1)[..., None] - curvature  # of the log-likelihood (≤ 0)
    total = scores.sum(axis=-1, keepdims=True)
    grad = -gradient + penalty.ridge * scores + total / n
    if penalty.firth:
        _, inverse, slopes = _information(wins, scores, model)
        diagonal = np.diagonal(inverse, axis1=-2, axis2=-1)
        leverage = diagonal[..., :, None] + diagonal[..., None, :] - 2 * inverse  # a_p' I⁻¹ a_p of every pair
        grad = grad - 0.5 * (slopes * leverage).sum(axis=-1)
    hess = -hessian + penalty.ridge * np.eye(n) + np.ones((n, n)) / n
    return grad, hess


def ridge_for(model, prior_sd):
    """The prior's precision in model units (0 without a prior)."""
    if prior_sd is None:
        return 0.0
    return 1.0 / (prior_sd * MODEL_UNITS_PER_JOD[model]) ** 2


def fit_model_units(wins, model="thurstone", prior_sd=DEFAULT_PRIOR_SD, start=None, bias_reduction=False):
    """Maximum a posteriori scores in model units, mean 0, for a win matrix or a stack ``(..., n, n)``: damped Newton
    on the (concave) log-likelihood, step halved until the objective decreases. Each stacked matrix stops when its
    step is below TOLERANCE (only the others go on). ``start``: initial scores (broadcast to the stack; default 0).
    ``bias_reduction``: Firth's penalised likelihood, which removes the O(1/n) bias of the maximum-likelihood
    differences (they come out too large from few comparisons per pair; for two conditions under Bradley-Terry it is
    log((w + ½)/(l + ½)))."""
    check_model(model)
    wins = np.asarray(wins, dtype=float)
    n = wins.shape[-1]
    flat = wins.reshape(-1, n, n)
    penalty = Penalty(ridge_for(model, prior_sd), bool(bias_reduction))
    scores = np.zeros(flat.shape[:-1]) if start is None else np.broadcast_to(start, wins.shape[:-1]).reshape(-1, n)
    scores = scores.astype(float).copy()
    current, log_p = _objective(flat, scores, model, penalty)
    active = np.arange(len(flat))
    for _ in range(MAX_ITERATIONS):
        if len(active) == 0:
            break
        part = flat[active]
        grad, hess = _derivatives(part, scores[active], model, penalty, log_p[active])
        step = _solve(hess, grad, penalty.ridge)
        new, value, new_log_p, moved = _line_search(part, scores[active], step, current[active], model, penalty)
        scores[active], current[active] = new, value
        log_p[active] = np.where((moved > 0)[:, None, None], new_log_p, log_p[active])
        active = active[moved > TOLERANCE]
    return scores.reshape(wins.shape[:-1])


def _solve(hess, grad, ridge):
    """The Newton step: the Hessian is positive definite with a prior (a plain solve), else possibly singular (a
    condition never compared): the pseudo-inverse's least-norm step."""
    if ridge > 0:
        return np.linalg.solve(hess, grad[..., None])[..., 0]
    return np.einsum("...ij,...j->...i", np.linalg.pinv(hess, hermitian=True), grad)


def _line_search(wins, scores, step, current, model, penalty):
    """Newton step, halved per matrix until the objective does not increase (at most 40 halvings, then no move);
    returns the new scores, objective and log probabilities, and each matrix's largest move."""
    size = np.ones(scores.shape[:-1])
    done = np.zeros(scores.shape[:-1], dtype=bool)
    best, best_log_p = current.copy(), None
    for _ in range(40):
        value, log_p = _objective(wins, scores - size[..., None] * step, model, penalty)
        better = ~done & (value <= current + 1e-12 * np.abs(current))
        best = np.where(better, value, best)
        best_log_p = log_p if best_log_p is None else np.where(better[..., None, None], log_p, best_log_p)
        done |= better
        if done.all():
            break
        size = np.where(done, size, size / 2)
    size = np.where(done, size, 0.0)
    moved = np.max(np.abs(size[..., None] * step), axis=-1) if step.size else np.zeros(scores.shape[:-1])
    return scores - size[..., None] * step, best, best_log_p, moved


def fit_scale(wins, model="thurstone", prior_sd=DEFAULT_PRIOR_SD, start=None, bias_reduction=False):
    """Scores in JOD, mean 0 (see ``anchor`` for a reference at 0); ``start`` initial scores in JOD."""
    units = MODEL_UNITS_PER_JOD[check_model(model)]
    start = None if start is None else np.asarray(start, dtype=float) * units
    return fit_model_units(wins, model, prior_sd, start, bias_reduction) / units


def posterior(wins, model="thurstone", prior_sd=DEFAULT_PRIOR_SD, bias_reduction=False):
    """Laplace approximation of the posterior of the scores, in model units: (mean, covariance). The covariance is the
    inverse of the negative log-posterior's Hessian without the mean-fixing term (pseudo-inverse without a prior);
    ``bias_reduction`` centres it on Firth's estimate instead of the MAP."""
    scores = fit_model_units(wins, model, prior_sd, bias_reduction=bias_reduction)
    n = scores.shape[-1]
    ridge = ridge_for(model, prior_sd)
    _, hess = _derivatives(np.asarray(wins, dtype=float), scores, model, Penalty(ridge))
    hess = hess - np.ones((n, n)) / n
    return scores, np.linalg.inv(hess) if ridge > 0 else np.linalg.pinv(hess, hermitian=True)


def anchor(scores, reference=0):
    """Scores shifted so that condition ``reference`` is at 0 (pwcmp fixes its first condition at 0)."""
    scores = np.asarray(scores, dtype=float)
    return scores - scores[..., reference : reference + 1]


def win_probability(difference_jod, model="thurstone"):
    """P(preferred) for a difference in JOD (0.75 at 1 JOD for both models)."""
    d = np.asarray(difference_jod, dtype=float) * MODEL_UNITS_PER_JOD[check_model(model)]
    return np.exp(log_preference(model, d)[0])


def bootstrap_resamples(n_raters, n_boot, seed):
    """Multiplicities (n_boot, n_raters) of raters drawn with replacement: the raters are the sampled units."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_raters, np.full(n_raters, 1.0 / n_raters), size=n_boot).astype(float)


def bootstrap_scales(
    rater_wins, n_boot, seed=0, model="thurstone", prior_sd=DEFAULT_PRIOR_SD, chunk=100, bias_reduction=False
):
    """JOD scores (mean 0) of ``n_boot`` resamples of raters; ``rater_wins`` is ``(raters, ..., n, n)``. Returns
    ``(n_boot, ..., n)``. Resamples are fitted ``chunk`` at a time, vectorised, each started from the fit to all
    raters (a resample's answer is near it, so Newton needs few steps)."""
    rater_wins = np.asarray(rater_wins, dtype=float)
    weights = bootstrap_resamples(rater_wins.shape[0], n_boot, seed)
    start = fit_scale(rater_wins.sum(axis=0), model, prior_sd, bias_reduction=bias_reduction)
    parts = []
    for first in range(0, n_boot, chunk):
        stacked = np.tensordot(weights[first : first + chunk], rater_wins, axes=(1, 0))
        parts.append(fit_scale(stacked, model, prior_sd, start=start, bias_reduction=bias_reduction))
    return np.concatenate(parts) if parts else np.empty((0, *rater_wins.shape[1:-1]))
