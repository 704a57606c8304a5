"""Which pairs of conditions a rater compares next: ``next_pairs(conditions, wins, n_pairs, design=...)``.

Designs:
- ``active``: a greedy batch of the pairs that most reduce the expected squared error of the scale, after ASAP
  (Mikhailiuk, Wilmot, Perez-Ortiz, Yue & Mantiuk 2020, "Active Sampling for Pairwise Comparisons via Approximate
  Message Passing and Information Gain Maximization"), whose posterior we replace by the Laplace approximation of the
  Thurstone Case V posterior (``scaling.posterior``: centred on Firth's bias-reduced estimate with a Gaussian prior
  of sd ``prior_sd`` = 0.7 JOD, covariance the full inverse Hessian). For a pair (i, j) the difference d = s_i - s_j
  is N(m, v) and an answer is a Bernoulli draw with P = Φ(d) (the observer's unit-variance noise on the difference,
  Thurstone's unit); one answer updates the whole posterior by one assumed-density (EP/TrueSkill-style) step in
  closed form, a rank-one change of the covariance along Σ(e_i - e_j). A pair's value is the expected drop of the
  trace of the centred scores' covariance (``variance_reduction``), not ASAP's information gain of d alone
  (``information_gain``, kept for comparison): with 20 conditions over 4 JOD that gain kept choosing close
  neighbours, leaving the long differences of the scale to chains of short ones, and needed about 35 % more
  comparisons than random pairs (0.3 JOD); the trace counts what an answer says about every other condition
  through the covariance, so it also picks the longer pairs that tie the scale together. The batch is greedy: the
  best pair, the covariance updated by that comparison's expected answer, the next best, ..., distinct pairs within a
  batch (starting over when all are used). The first batch of a study (no answers yet) is a spanning tree (no pair
  closing a cycle), as ASAP's batches are, so the design is connected from the start; later trees constrained that
  way needed about 15 % more comparisons in the 20-condition simulation. (An earlier version began each batch with
  a "bridge" pair across any gap that no answer had gone against yet, up to 8 times per pair; over 4 seeds it cost
  much more than it saved: where two groups of conditions really are far apart every bridging answer is unanimous,
  and at 270 comparisons, 10 conditions over 4 JOD, it took the mean squared error from 0.75 of random sampling's
  to 1.16, while with 20 conditions it saved about 4 %.) Pairs handed out and not answered yet (``pending``) count as
  expected answers: the covariance is updated by them before the batch is chosen.
- ``random``: pairs drawn uniformly, distinct within a batch where possible.
- ``full``: round robin, balanced: always the pairs compared least so far (ties in random order), so every pair is
  compared equally often.
Pairs come as ``(i, j)`` indices into ``conditions``, the two sides in random order (show ``i`` on the left).
"""

import numpy as np
from scipy import special
from scipy.special import ndtr

from ..ratings import RatingsError
from .scaling import posterior

DESIGNS = ("active", "random", "full")
# The posterior that picks pairs uses a much tighter prior than the reported scale (10 JOD): a broad prior makes the
# first, unanimous answers look like huge differences, and a tight one makes far pairs look less certain, so more of
# them are compared, which keeps the fitted scale from stretching (simulation of perf/pairwise_sampling.py, before
# the bridges were added, to 0.3 JOD: 20 conditions over 4 JOD 505 comparisons, against 557, 539 and 587 with 0.5, 1
# and 2 JOD; 10 over 4 JOD 226, against 242 and 251 with 0.5 and 1).
SAMPLING_PRIOR_SD = 0.7


def next_pairs(conditions, wins, n_pairs, *, design="active", rng=None, prior_sd=SAMPLING_PRIOR_SD, pending=None):
    """``n_pairs`` pairs ``(i, j)`` to show next; ``conditions`` a sequence (or their number), ``wins`` the n x n
    matrix of points so far (wins[i, j] = times i beat j, ties 0.5 each); ``rng`` a numpy Generator or a seed.
    ``pending``: n x n counts of pairs already handed out (to sessions under way) and not answered yet, either
    triangle or both; ``active`` counts each as an expected answer (the covariance updated as within a batch, the
    mean left alone) and ``full`` as a comparison made, so that sessions started together get different pairs."""
    n = conditions if isinstance(conditions, (int, np.integer)) else len(conditions)
    wins = np.asarray(wins, dtype=float)
    pending = np.zeros((n, n)) if pending is None else np.asarray(pending, dtype=float)
    _check(n, wins, n_pairs, design)
    _check_counts(n, pending, "pending", "pending[i, j] = pairs (i, j) handed out and not answered")
    rng = np.random.default_rng(rng)
    if n_pairs == 0 or n < 2:
        return []
    choose = {"active": _active, "random": _random, "full": _full}[design]
    pairs = choose(n, wins, n_pairs, rng, prior_sd, np.triu(pending + pending.T, 1))
    return [(int(j), int(i)) if rng.random() < 0.5 else (int(i), int(j)) for i, j in pairs]


def _check(n, wins, n_pairs, design):
    if design not in DESIGNS:
        raise RatingsError(f"unknown sampling design {design!r}; use one of {', '.join(DESIGNS)}")
    _check_counts(n, wins, "wins", "wins[i, j] = times i beat j")
    if int(n_pairs) != n_pairs or n_pairs < 0:
        raise RatingsError(f"n_pairs must be a whole number of 0 or more, not {n_pairs!r}")


def _check_counts(n, matrix, name, meaning):
    if matrix.shape != (n, n):
        raise RatingsError(f"{name} must be a {n} x {n} matrix (one row and column per condition), not {matrix.shape}")
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise RatingsError(f"{name} must hold counts of 0 or more ({meaning})")


def _upper_pairs(n):
    i, j = np.triu_indices(n, 1)
    return np.stack([i, j], axis=1)


def _random(n, wins, n_pairs, rng, prior_sd, pending):
    pairs = _upper_pairs(n)
    picks = []
    while len(picks) < n_pairs:
        picks.extend(rng.permutation(len(pairs))[: n_pairs - len(picks)])
    return pairs[picks]


def _full(n, wins, n_pairs, rng, prior_sd, pending):
    pairs = _upper_pairs(n)
    counts = (wins + wins.T + pending)[pairs[:, 0], pairs[:, 1]].astype(float)
    chosen = []
    for _ in range(n_pairs):
        jitter = rng.random(len(pairs))  # random order among the least-compared pairs
        best = np.lexsort((jitter, counts))[0]
        chosen.append(best)
        counts[best] += 1
    return pairs[chosen]


LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def _updated_difference(m, v, sign):
    """Mean and variance of the difference d ~ N(m, v) after one answer (sign +1: i preferred, -1: j), P = Φ(d):
    the moments of N(m, v)·Φ(±d), in closed form (assumed-density filtering, as one EP/TrueSkill update)."""
    z = sign * m / np.sqrt(1 + v)
    ratio = np.exp(-0.5 * z * z - LOG_SQRT_2PI - special.log_ndtr(z))  # φ(z)/Φ(z)
    mean = m + sign * v * ratio / np.sqrt(1 + v)
    variance = np.maximum(v - v * v * ratio * (z + ratio) / (1 + v), 1e-12)
    return ndtr(z), mean, variance


def information_gain(mean, covariance):
    """Expected information gain (nats) of one comparison of each pair: (n, n) symmetric, 0 on the diagonal. The
    expectation over the two answers of the KL divergence from the current Gaussian posterior to the one updated by
    the answer; only the pair's difference changes, so the KL is that of its 1-D marginal."""
    m = mean[:, None] - mean[None, :]
    v = np.diag(covariance)[:, None] + np.diag(covariance)[None, :] - 2 * covariance
    v = np.maximum(v, 1e-12)
    gain = np.zeros_like(m)
    for sign in (1.0, -1.0):
        probability, m_after, v_after = _updated_difference(m, v, sign)
        kl = 0.5 * (v_after / v + (m_after - m) ** 2 / v - 1 - np.log(v_after / v))
        gain += probability * kl
    np.fill_diagonal(gain, 0.0)
    return gain


def expected_variance_drop(mean_difference, variance):
    """Expected reduction of the variance of a difference d ~ N(m, v) by one answer (averaged over both answers,
    each weighted by its predictive probability), from the assumed-density update above."""
    drop = np.zeros_like(variance)
    for sign in (1.0, -1.0):
        probability, _, v_after = _updated_difference(mean_difference, variance, sign)
        drop += probability * (variance - v_after)
    return drop


def variance_reduction(mean, covariance):
    """Expected reduction of the total variance of the centred scores (the trace of their covariance, the expected
    squared error of the scale) by one comparison of each pair: (n, n) symmetric, 0 on the diagonal. One answer
    on (i, j) is a rank-one update of the whole posterior, Σ - (Δv / v²) Σa aᵀΣ with a = e_i - e_j, Δv the
    expected drop of the difference's variance v; its trace is (Δv / v²) ‖Σa‖². Unlike the information gain of
    the difference alone, it counts what the answer tells about every other condition through the covariance, so
    a pair whose difference carries many long differences of the scale (a bridge between groups) is worth more
    than a pair of close neighbours already linked by others."""
    gain = _reduction(mean[:, None] - mean[None, :], _centred(covariance))[0]
    np.fill_diagonal(gain, 0.0)
    return gain


def _centred(covariance):
    """The covariance of the scores less their mean (the scale is defined up to a shift)."""
    centre = np.eye(len(covariance)) - 1.0 / len(covariance)
    return centre @ covariance @ centre


def _reduction(differences, covariance):
    """Per pair: the expected drop of the trace of ``covariance`` by one answer, the expected drop of the pair's
    variance, and that variance."""
    v = _pair_variances(covariance)
    drop = expected_variance_drop(differences, v)
    return drop / v**2 * _pair_variances(covariance @ covariance), drop, v  # ‖Σa‖² = (Σ²)ii + (Σ²)jj - 2(Σ²)ij


def _pair_variances(matrix):
    diagonal = np.diag(matrix)
    return np.maximum(diagonal[:, None] + diagonal[None, :] - 2 * matrix, 1e-12)


def _active(n, wins, n_pairs, rng, prior_sd, pending):
    """Greedy batch: the pair of largest expected variance reduction, the covariance updated by that comparison's
    expected answer, the next best, ...; distinct pairs (all pairs again once every one is used); in the first
    batch of a study no pair may close a cycle before the tree is complete. Pairs ``pending`` (handed out, not
    answered) update the covariance first, as expected answers."""
    mean, covariance = posterior(wins, "thurstone", prior_sd, bias_reduction=True)
    covariance = _centred(covariance)
    differences = mean[:, None] - mean[None, :]
    for i, j in np.argwhere(pending > 0):
        for _ in range(int(np.ceil(pending[i, j]))):
            covariance = _expect_answer(covariance, differences, i, j)
    jitter = 1 + 1e-9 * rng.random((n, n))  # ties (e.g. before any data) broken at random, not by index
    unused = np.triu(np.ones((n, n), dtype=bool), 1) & (pending == 0)
    component = np.arange(n)  # in the first batch, which tree each condition is in so far
    as_trees = not wins.any() and not pending.any()
    chosen = []
    for _ in range(n_pairs):
        allowed = unused & (component[:, None] != component[None, :]) if as_trees else unused.copy()
        if not allowed.any():  # a tree is complete, or every pair used: start over
            component = np.arange(n)
            unused = unused if unused.any() else np.triu(np.ones((n, n), dtype=bool), 1)
            allowed = unused.copy()
        gain = _reduction(differences, covariance)[0]
        i, j = np.unravel_index(np.argmax(np.where(allowed, gain * jitter, -np.inf)), gain.shape)
        chosen.append((i, j))
        unused[i, j] = False
        component[component == component[j]] = component[i]
        covariance = _expect_answer(covariance, differences, i, j)
    return np.array(chosen)


def _expect_answer(covariance, differences, i, j):
    """The covariance after one comparison of (i, j) whose answer is not known yet: the rank-one update by the
    expected drop of the pair's variance (the mean is left where it is)."""
    a = covariance[:, i] - covariance[:, j]
    v = max(covariance[i, i] + covariance[j, j] - 2 * covariance[i, j], 1e-12)
    drop = expected_variance_drop(differences[i, j], v)
    return covariance - drop / v**2 * np.outer(a, a)
