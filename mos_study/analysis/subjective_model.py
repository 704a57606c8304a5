"""Subjective model of ITU-T P.910 (11/2021) Annex E / P.913 (06/2021) §12.6: stimulus quality, rater bias and
inconsistency estimated jointly by maximum likelihood with the Recommendation's alternating projections.

Model: score u_ij = ψ_j + Δ_i + υ_i X, X ~ N(0, 1) (ψ_j quality of stimulus j, Δ_i bias and υ_i inconsistency of
rater i). The alternating projection (the reference algorithm of the Recommendation, as in Netflix's sureal
``MLE_CO_AP2``) works on any incomplete design, with repetitions as extra scores of the same (i, j):

1. ψ_j = mean of u_ij over the raters of j; Δ_i = mean of (u_ij - ψ_j) over the stimuli of i.
2. Repeat until ||ψ - ψ_prev||_2 < 1e-8 (at most 1000 times):
   r_ij = u_ij - ψ_j - Δ_i; υ_i = std of r over i's scores, σ_j = std of r over j's scores (population, N);
   ψ_j = Σ_i w_i (u_ij - Δ_i) / Σ_i w_i with w_i = 1 / (υ_i² + 1e-8); Δ_i = mean of (u_ij - ψ_j) over i's scores.
3. Shift so the biases have zero mean (Δ -= mean Δ, ψ += mean Δ).
Standard errors: ψ_j: σ_j / sqrt(n_j); Δ_i: υ_i / sqrt(n_i); 95 % intervals ψ -+ 1.95996 se, Δ -+ 1.95996 se,
υ_i from the chi-square distribution with n_i degrees of freedom.
"""

import numpy as np
import pandas as pd
from scipy import stats

Z95 = 1.95996
STIMULUS = ["dataset", "image", "method"]


def stimulus_codes(ratings):
    """(the distinct stimuli sorted by dataset, image, method; each rating's row in them), from one group-by over
    the key columns (categoricals after ``results.sort_ratings``) instead of matching a MultiIndex per rating."""
    group = ratings.groupby(STIMULUS, sort=True, observed=True)
    keys = group.size().index.to_frame(index=False)[STIMULUS]
    return keys.astype({key: ratings[key].dtype for key in STIMULUS}), group.ngroup().to_numpy()


def rater_codes(rater):
    """``np.unique(rater as str, return_inverse=True)``, from the categorical's codes where it is one."""
    if not isinstance(rater.dtype, pd.CategoricalDtype) or not rater.cat.categories.is_monotonic_increasing:
        return np.unique(rater.to_numpy(dtype=str), return_inverse=True)
    used, i = np.unique(rater.cat.codes.to_numpy(), return_inverse=True)
    return rater.cat.categories.to_numpy(dtype=str)[used], i


def fit_p910(ratings, tolerance=1e-8, max_iterations=1000):
    """Fit the model to a ratings table; returns (stimuli DataFrame, raters DataFrame, iterations used)."""
    stimulus_keys, j = stimulus_codes(ratings)
    rater_names, i = rater_codes(ratings["rater"])
    u = ratings["score"].to_numpy(dtype=float)
    n_j = np.bincount(j, minlength=len(stimulus_keys)).astype(float)
    n_i = np.bincount(i, minlength=len(rater_names)).astype(float)

    def mean_by(index, values, count):
        return np.bincount(index, values, len(count)) / count

    def std_by(index, values, count):
        centred = values - mean_by(index, values, count)[index]
        return np.sqrt(mean_by(index, centred**2, count))

    psi = mean_by(j, u, n_j)
    delta = mean_by(i, u - psi[j], n_i)
    for iteration in range(1, max_iterations + 1):
        previous, delta_i = psi, delta[i]
        residual = u - psi[j] - delta_i
        upsilon = std_by(i, residual, n_i)
        weight_i = (1.0 / (upsilon**2 + 1e-8))[i]
        psi = np.bincount(j, weight_i * (u - delta_i), len(n_j)) / np.bincount(j, weight_i, len(n_j))
        delta = mean_by(i, u - psi[j], n_i)
        if np.linalg.norm(psi - previous) < tolerance:
            break
    sigma = std_by(j, residual, n_j)  # of the last iteration's residuals; only the standard errors use it
    shift = delta.mean()
    delta, psi = delta - shift, psi + shift

    psi_se = sigma / np.sqrt(n_j)
    stimuli = stimulus_keys.copy()
    stimuli["quality"] = psi
    stimuli["ci95_low"] = psi - Z95 * psi_se
    stimuli["ci95_high"] = psi + Z95 * psi_se
    stimuli["n_ratings"] = n_j.astype(int)
    delta_se = upsilon / np.sqrt(n_i)
    raters = pd.DataFrame(
        {
            "rater": rater_names,
            "bias": delta,
            "inconsistency": upsilon,
            "n_ratings": n_i.astype(int),
            "bias_ci95_low": delta - Z95 * delta_se,
            "bias_ci95_high": delta + Z95 * delta_se,
            "inconsistency_ci95_low": upsilon * np.sqrt(n_i / stats.chi2.ppf(0.975, n_i)),
            "inconsistency_ci95_high": upsilon * np.sqrt(n_i / stats.chi2.ppf(0.025, n_i)),
        }
    )
    return stimuli, raters, iteration
