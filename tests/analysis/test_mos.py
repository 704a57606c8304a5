"""MOS, sd and Student-t CIs on a table worked by hand (tests/analysis/data/small_ratings.csv)."""

import math

import numpy as np
import pandas as pd
import pytest

from mos_study.analysis import AnalysisOptions, ScreeningOptions, build_results, read_ratings
from mos_study.analysis.mos import bootstrap_ci, remove_bias

# Student's t, 0.975 quantile, from printed tables: df 2 and df 4.
T2, T4 = 4.30265, 2.77645
NO_SCREENING = AnalysisOptions(screening=ScreeningOptions(rules=()))


@pytest.fixture
def small(repo_root):
    return read_ratings(repo_root / "tests/analysis/data/small_ratings.csv")


def row(table, **keys):
    mask = np.ones(len(table), dtype=bool)
    for key, value in keys.items():
        mask &= (table[key] == value).to_numpy()
    assert mask.sum() == 1
    return table[mask].iloc[0]


def test_mos_per_image_by_hand(small):
    table = build_results(small, NO_SCREENING).mos_per_image
    assert list(table.columns[:8]) == ["dataset", "image", "method", "n_ratings", "mos", "sd", "ci95_low", "ci95_high"]
    a1 = row(table, image="i1", method="A")  # scores 1, 2, 3
    assert (a1.n_ratings, a1.mos, a1.sd) == (3, 2.0, 1.0)
    assert a1.ci95_low == pytest.approx(2 - T2 / math.sqrt(3), rel=1e-5)
    assert a1.ci95_high == pytest.approx(2 + T2 / math.sqrt(3), rel=1e-5)
    a2 = row(table, image="i2", method="A")  # scores 4, 4: no spread, zero-width interval
    assert (a2.n_ratings, a2.mos, a2.sd, a2.ci95_low, a2.ci95_high) == (2, 4.0, 0.0, 4.0, 4.0)
    b1 = row(table, image="i1", method="B")  # scores 5, 4, 3
    assert (b1.mos, b1.sd) == (4.0, 1.0)


def test_mos_per_method_by_hand(small):
    table = build_results(small, NO_SCREENING).mos
    assert list(table.columns[:7]) == ["dataset", "method", "n_ratings", "mos", "sd", "ci95_low", "ci95_high"]
    a = row(table, method="A")  # 1 2 3 4 4: mean 2.8, squares of deviations sum to 6.8, sd sqrt(6.8 / 4)
    assert (a.n_ratings, a.mos) == (5, pytest.approx(2.8))
    assert a.sd == pytest.approx(math.sqrt(1.7))
    assert a.ci95_high - a.mos == pytest.approx(T4 * math.sqrt(1.7) / math.sqrt(5), rel=1e-5)
    b = row(table, method="B")  # 5 4 3 5 5: mean 4.4, deviations squared sum to 3.2
    assert b.mos == pytest.approx(4.4) and b.sd == pytest.approx(math.sqrt(0.8))


def test_single_rating_has_no_interval():
    ratings = pd.DataFrame({"dataset": ["d"], "rater": ["r"], "image": ["i"], "method": ["m"], "score": [3.0]})
    from mos_study.analysis import prepare_ratings

    table = build_results(prepare_ratings(ratings), NO_SCREENING).mos_per_image
    assert table.n_ratings[0] == 1 and np.isnan(table.sd[0]) and np.isnan(table.ci95_low[0])


def test_p913_bias_removal_by_hand(small):
    # Stimulus MOS: A/i1 2, A/i2 4, B/i1 4, B/i2 5. r1 deviations: -1, 0, +1, 0 -> bias 0;
    # r2: 0, 0, 0, 0 -> 0; r3: +1 (A/i1 3 vs 2), -1 (B/i1 3 vs 4) -> 0. Shift r3 to make its bias +1.
    shifted = small.copy()
    shifted.loc[shifted.rater == "r3", "score"] += 1.0  # r3 now 4 and 4: deviations from new MOS
    adjusted = remove_bias(shifted)
    # New stimulus MOS: A/i1 (1+2+4)/3 = 7/3, B/i1 (5+4+4)/3 = 13/3; others unchanged.
    # r3 deviations: 4 - 7/3 = 5/3 and 4 - 13/3 = -1/3 -> bias 2/3.
    r3 = adjusted[adjusted.rater == "r3"].sort_values("method")
    assert r3.score.tolist() == pytest.approx([4 - 2 / 3, 4 - 2 / 3])
    # r1 deviations: 1 - 7/3, 4 - 4, 5 - 13/3, 5 - 5 -> (-4/3 + 2/3) / 4 = -1/6
    r1 = adjusted[adjusted.rater == "r1"].sort_values(["method", "image"])
    assert r1.score.tolist() == pytest.approx([1 + 1 / 6, 4 + 1 / 6, 5 + 1 / 6, 5 + 1 / 6])


def test_bootstrap_is_seeded_and_brackets_the_mos(small):
    first = bootstrap_ci(small, 200, seed=3)
    again = bootstrap_ci(small, 200, seed=3)
    pd.testing.assert_frame_equal(first, again)
    table = build_results(small, AnalysisOptions(screening=ScreeningOptions(rules=()), bootstrap=200, seed=3)).mos
    assert (table.boot_ci95_low <= table.mos).all() and (table.mos <= table.boot_ci95_high).all()
    assert (table.boot_ci95_low < table.boot_ci95_high).all()


def test_bootstrap_of_constant_scores_is_a_point():
    ratings = pd.DataFrame(
        {
            "dataset": "d",
            "rater": [f"r{k}" for k in range(6)] * 2,
            "image": ["a"] * 6 + ["b"] * 6,
            "method": "m",
            "score": 3.0,
            "kind": "trial",
            "line": range(12),
        }
    )
    table = bootstrap_ci(ratings, 50)
    assert table.boot_ci95_low[0] == 3.0 and table.boot_ci95_high[0] == 3.0
