"""The P.910 subjective model on synthetic panels with known truth, complete and incomplete."""

import numpy as np
import pandas as pd
import pytest

from mos_study.analysis import prepare_ratings
from mos_study.analysis.subjective_model import fit_p910


def synthetic(n_raters=40, n_stimuli=60, missing=0.0, seed=0):
    rng = np.random.default_rng(seed)
    quality = rng.uniform(1.5, 4.5, n_stimuli)
    bias = rng.normal(0, 0.4, n_raters)
    bias -= bias.mean()
    inconsistency = rng.uniform(0.2, 1.2, n_raters)
    rows = []
    for i in range(n_raters):
        for j in range(n_stimuli):
            if rng.random() >= missing:
                rows.append((f"r{i:02d}", f"img{j:02d}", "m", quality[j] + bias[i] + inconsistency[i] * rng.normal()))
    frame = pd.DataFrame(rows, columns=["rater", "image", "method", "score"]).assign(dataset="d")
    return prepare_ratings(frame, scale=(-100, 100)), quality, bias, inconsistency


@pytest.mark.parametrize("missing", [0.0, 0.4])
def test_recovers_known_parameters(missing):
    ratings, quality, bias, inconsistency = synthetic(missing=missing)
    stimuli, raters, iterations = fit_p910(ratings)
    assert iterations < 1000
    assert np.corrcoef(stimuli.quality, quality)[0, 1] > 0.98
    # weighing by inconsistency and removing bias beats the plain mean
    plain = ratings.groupby("image")["score"].mean().to_numpy()
    assert np.sqrt(np.mean((stimuli.quality - quality) ** 2)) < np.sqrt(np.mean((plain - quality) ** 2))
    assert np.sqrt(np.mean((raters.bias - bias) ** 2)) < 0.15
    assert ((raters.bias_ci95_low <= bias) & (bias <= raters.bias_ci95_high)).mean() > 0.85
    assert np.corrcoef(raters.inconsistency, inconsistency)[0, 1] > 0.9
    covered = (stimuli.ci95_low <= quality) & (quality <= stimuli.ci95_high)
    assert covered.mean() > 0.85  # nominal 95 %
    assert raters.bias.mean() == pytest.approx(0, abs=1e-12)


def test_consistent_panel_gives_the_mean_and_the_bias():
    # Rater b scores exactly 1 above rater a and both are equally consistent: biases -0.5/+0.5, quality = mean.
    rows = [
        ("a", "x", "m", 2),
        ("a", "y", "m", 4),
        ("a", "z", "m", 3),
        ("b", "x", "m", 3),
        ("b", "y", "m", 5),
        ("b", "z", "m", 4),
    ]
    frame = prepare_ratings(pd.DataFrame(rows, columns=["rater", "image", "method", "score"]).assign(dataset="d"))
    stimuli, raters, _ = fit_p910(frame)
    assert stimuli.quality.tolist() == pytest.approx([2.5, 4.5, 3.5])
    assert raters.bias.tolist() == pytest.approx([-0.5, 0.5])
    assert raters.inconsistency.tolist() == pytest.approx([0, 0], abs=1e-6)
