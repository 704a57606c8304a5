"""Which pairs of conditions a rater compares next: ``next_pairs(conditions, wins, n_pairs, design=...)``.

Designs:
- ``active``: expected information gain with a minimum-spanning-tree batch, after ASAP's approximate batch mode
  (Mikhailiuk, Wilmot, Perez-Ortiz, Yue & Mantiuk 2020, "Active Sampling for Pairwise Comparisons via Approximate
  Message Passing and Information Gain Maximization"). Our posterior is not ASAP's message passing but the Laplace
  approximation of the Thurstone Case V posterior (``scaling.posterior``: centred on Firth's bias-reduced estimate with
  a Gaussian prior of sd ``prior_sd`` = 2 JOD, covariance from the Hessian; the maximum-likelihood differences of pairs
  compared a few times are too large, and active sampling, which compares mostly close pairs, chains them into a
  stretched scale). For a pair (i, j) the difference d = s_i - s_j is then N(m, v) and an answer is a Bernoulli draw
  with P = Φ(d). The expected information gain of comparing them is ASAP's: the expected KL divergence between the
  posterior after the answer and the one before, the update done as one assumed-density (EP/TrueSkill-style) step in
  closed form. Only d's marginal changes, so it is a 1-D KL. It is large for pairs that are close (uncertain outcome)
  and poorly known (large v). As in ASAP's batch mode, the batch is a minimum spanning tree of the complete graph with
  edge weights 1 / gain: n - 1 pairs that connect every condition, preferring informative pairs. A larger batch takes
  the next spanning tree of the pairs not yet chosen (and starts over when all are used); a smaller one the most
  informative edges of the tree.
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
# The posterior that picks pairs uses a tighter prior than the reported scale (10 JOD): quality spreads of a few JOD
# are what studies see, and a broad prior makes the first, unanimous answers look like huge, uncertain differences
# (in the simulation of perf/pairwise_sampling.py, 2 JOD needed fewer comparisons than 1 or 4).
SAMPLING_PRIOR_SD = 2.0


def next_pairs(conditions, wins, n_pairs, *, design="active", rng=None, prior_sd=SAMPLING_PRIOR_SD):
    """``n_pairs`` pairs ``(i, j)`` to show next; ``conditions`` a sequence (or their number), ``wins`` the n x n
    matrix of points so far (wins[i, j] = times i beat j, ties 0.5 each); ``rng`` a numpy Generator or a seed."""
    n = conditions if isinstance(conditions, (int, np.integer)) else len(conditions)
    wins = np.asarray(wins, dtype=float)
    _check(n, wins, n_pairs, design)
    rng = np.random.default_rng(rng)
    if n_pairs == 0 or n < 2:
        return []
    choose = {"active": _active, "random": _random, "full": _full}[design]
    pairs = choose(n, wins, n_pairs, rng, prior_sd)
    return [(int(j), int(i)) if rng.random() < 0.5 else (int(i), int(j)) for i, j in pairs]


def _check(n, wins, n_pairs, design):
    if design not in DESIGNS:
        raise RatingsError(f"unknown sampling design {design!r}; use one of {', '.join(DESIGNS)}")
    if wins.shape != (n, n):
        raise RatingsError(f"wins must be a {n} x {n} matrix (one row and column per condition), not {wins.shape}")
    if not np.isfinite(wins).all() or (wins < 0).any():
        raise RatingsError("wins must hold counts of 0 or more (wins[i, j] = times i beat j)")
    if int(n_pairs) != n_pairs or n_pairs < 0:
        raise RatingsError(f"n_pairs must be a whole number of 0 or more, not {n_pairs!r}")


def _upper_pairs(n):
    i, j = np.triu_indices(n, 1)
    return np.stack([i, j], axis=1)


def _random(n, wins, n_pairs, rng, prior_sd):
    pairs = _upper_pairs(n)
    picks = []
    while len(picks) < n_pairs:
        picks.extend(rng.permutation(len(pairs))[: n_pairs - len(picks)])
    return pairs[picks]


def _full(n, wins, n_pairs, rng, prior_sd):
    pairs = _upper_pairs(n)
    counts = (wins + wins.T)[pairs[:, 0], pairs[:, 1]].astype(float)
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


def _active(n, wins, n_pairs, rng, prior_sd):
    mean, covariance = posterior(wins, "thurstone", prior_sd, bias_reduction=True)
    gain = information_gain(mean, covariance)
    # ties (e.g. before any data) broken at random, not by index
    weight = np.triu(1.0 / np.maximum(gain, 1e-300) * (1 + 1e-9 * rng.random((n, n))), 1)
    available = np.triu(np.ones((n, n), dtype=bool), 1)
    chosen = []
    while len(chosen) < n_pairs:
        if not available.any():
            available = np.triu(np.ones((n, n), dtype=bool), 1)
        tree = _spanning_edges(np.where(available, weight, 0.0))
        tree = sorted(tree, key=lambda e: -gain[e])  # most informative first, for a batch smaller than the tree
        chosen.extend(tree[: n_pairs - len(chosen)])
        for edge in tree:
            available[edge] = False
    return np.array(chosen)


def _spanning_edges(weight):
    """The edges (i < j) of a minimum spanning tree of the positive entries of the upper triangle of ``weight`` (0: no
    edge), by Prim's algorithm on the dense matrix (a few conditions: faster than a sparse-graph library); where the
    graph falls apart, a tree of each part (a forest)."""
    n = len(weight)
    cost = np.where(weight > 0, weight, np.inf)
    cost = np.minimum(cost, cost.T)
    in_tree = np.zeros(n, dtype=bool)
    in_tree[0] = True
    best, parent = cost[0].copy(), np.zeros(n, dtype=int)
    edges = []
    for _ in range(n - 1):
        candidates = np.where(in_tree, np.inf, best)
        node = int(np.argmin(candidates))
        if np.isinf(candidates[node]):  # the rest is not connected: start a new tree there
            node = int(np.flatnonzero(~in_tree)[0])
        else:
            edges.append((min(node, parent[node]), max(node, parent[node])))
        in_tree[node] = True
        closer = cost[node] < best
        best, parent = np.where(closer, cost[node], best), np.where(closer, node, parent)
    return [(int(i), int(j)) for i, j in edges]
