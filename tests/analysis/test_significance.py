"""Significance tests with p-values worked by hand (exact distributions) and Holm's correction."""

import numpy as np
import pandas as pd
import pytest

from mos_study.analysis import AnalysisOptions, ScreeningOptions, build_results, prepare_ratings
from mos_study.analysis.significance import holm


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04); NaN stays out of the family
    assert holm([0.01, 0.04, 0.03, np.nan])[:3].tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert np.isnan(holm([0.01, 0.04, 0.03, np.nan])[3])
    assert holm([0.5, 0.9]).tolist() == [1.0, 1.0]  # 2 * 0.5 = 1, then max(1, 0.9)


def ratings_xy():
    # One rater, five images, two methods on a 0..100 scale: Y above X everywhere, differences 51..54 and 50
    # (distinct, no ties), so both tests use their exact distributions.
    x = [10, 20, 30, 40, 50]
    y = [61, 72, 83, 94, 100]
    rows = [("r", f"i{k}", "X", s) for k, s in enumerate(x)] + [("r", f"i{k}", "Y", s) for k, s in enumerate(y)]
    frame = pd.DataFrame(rows, columns=["rater", "image", "method", "score"]).assign(dataset="d")
    return prepare_ratings(frame, scale=(0, 100))


def test_exact_p_values_by_hand():
    options = AnalysisOptions(scale=(0, 100), screening=ScreeningOptions(rules=()), subjective_model="none")
    full = build_results(ratings_xy(), options).significance
    table = full.set_index("test")
    assert ",".join(full.columns[:8]) == "dataset,method_a,method_b,test,statistic,p_value,p_holm,significant"
    # Wilcoxon: all 5 differences one sign -> W = 0, two-sided p = 2 / 2^5
    assert table.loc["wilcoxon", "statistic"] == 0 and table.loc["wilcoxon", "p_value"] == pytest.approx(2 / 32)
    # Mann-Whitney: complete separation of 5 and 5 -> U = 0, two-sided p = 2 / C(10, 5)
    assert table.loc["mannwhitney", "statistic"] == 0
    assert table.loc["mannwhitney", "p_value"] == pytest.approx(2 / 252)
    # one pair per dataset: Holm leaves p alone
    assert (table.p_holm == table.p_value).all()
    # alpha 0.05: Mann-Whitney (0.0079) is significant, Wilcoxon with only five images (0.0625) cannot be
    assert table.loc["mannwhitney", "significant"] and not table.loc["wilcoxon", "significant"]


def test_identical_methods_are_not_significant():
    frame = ratings_xy()
    frame.loc[frame.method == "Y", "score"] = frame.loc[frame.method == "X", "score"].to_numpy()
    options = AnalysisOptions(scale=(0, 100), screening=ScreeningOptions(rules=()), subjective_model="none")
    table = build_results(frame, options).significance.set_index("test")
    assert table.loc["wilcoxon", "p_value"] == 1.0 and not table.significant.any()
