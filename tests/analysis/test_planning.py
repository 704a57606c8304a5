"""Study planning against hand-computed values, and the plan command."""

import math

import pandas as pd
import pytest

from mos_study.analysis.__main__ import main
from mos_study.analysis.planning import (
    images_for_difference,
    pilot_estimates,
    power_of,
    raters_needed,
    ratings_for_half_width,
    ratings_per_stimulus_for_difference,
)
from mos_study.analysis.ratings import RatingsError, prepare_ratings


def test_ci_half_width_by_hand():
    # normal: (1.959964 * 1 / 0.2)^2 = 96.04 -> 97 ratings
    assert ratings_for_half_width(1.0, 0.2, approximation="normal") == 97
    # t: n = 98 gives t(0.975, 97) / sqrt(98) = 1.98472 / 9.89949 = 0.20049 > 0.2;
    #    n = 99 gives t(0.975, 98) / sqrt(99) = 1.98447 / 9.94987 = 0.19945 <= 0.2
    assert ratings_for_half_width(1.0, 0.2, approximation="t") == 99
    # sd 0.8, half-width 0.1, normal: (1.959964 * 8)^2 = 245.85 -> 246
    assert ratings_for_half_width(0.8, 0.1, approximation="normal") == 246


def test_paired_difference_by_hand():
    # z(0.975) + z(0.8) = 1.959964 + 0.841621 = 2.801585, squared 7.848879; K = 14, difference 0.5:
    # budget = 14 * 0.25 / 7.848879 = 0.445923; r >= 2 * 1^2 / 0.445923 = 4.485 -> 5
    assert ratings_per_stimulus_for_difference(0.5, 1.0, 14, approximation="normal") == 5
    # sd_image 0.3: budget 0.445923 - 0.09 = 0.355923; r >= 2 / 0.355923 = 5.619 -> 6
    assert ratings_per_stimulus_for_difference(0.5, 1.0, 14, sd_image=0.3, approximation="normal") == 6
    # t, 13 df: t(0.975) + t(0.8) = 2.160369 + 0.869833 = 3.030202, squared 9.182124;
    # budget = 3.5 / 9.182124 = 0.381176; r >= 2 / 0.381176 = 5.247 -> 6
    assert ratings_per_stimulus_for_difference(0.5, 1.0, 14, approximation="t") == 6
    # power at r = 5 (normal): sd_d = sqrt(2/5) = 0.632456; sqrt(14) * 0.5 / 0.632456 - 1.959964 = 0.998072 -> 0.8409
    assert power_of(0.5, 1.0, 14, 5) == pytest.approx(0.84088, abs=1e-4)


def test_unreachable_difference_says_how_many_images():
    # budget 5 * 0.01 / 7.848879 = 0.00637 < sd_image^2 = 0.25: no r suffices
    assert ratings_per_stimulus_for_difference(0.1, 1.0, 5, sd_image=0.5, approximation="normal") is None
    # K >= 7.848879 * 0.25 / 0.01 = 196.2 -> 197
    assert images_for_difference(0.1, 0.5) == 197


def test_raters():
    assert raters_needed(7) == 7  # complete design
    assert raters_needed(7, n_stimuli=100, stimuli_per_rater=40) == 18  # ceil(700 / 40)
    assert raters_needed(None) is None


def test_pilot_estimates_by_hand():
    rows = []
    # two images, methods a and b; image i1: a = 1,3 (var 2), b = 3,5 (var 2); image i2: a = 2,2, b = 4,4
    for image, a, b in (("i1", (1, 3), (3, 5)), ("i2", (2, 2), (4, 4))):
        for k in range(2):
            rows += [(f"r{k}", image, "a", a[k]), (f"r{k}", image, "b", b[k])]
    ratings = prepare_ratings(pd.DataFrame(rows, columns=["rater", "image", "method", "score"]).assign(dataset="d"))
    per_method, sd_rating, pairs = pilot_estimates(ratings)
    # pooled within-stimulus variance: (2 + 2 + 0 + 0) * 1 df / 4 df = 1
    assert sd_rating["d"] == pytest.approx(1.0)
    assert per_method.set_index("method").loc["a", "sd"] == pytest.approx(math.sqrt(2 / 3))  # 1,3,2,2
    # per-image differences a - b: -2, -2 (variance 0) less noise 1 * (1/2 + 1/2): sd_image 0
    pair = pairs.iloc[0]
    assert (pair.method_a, pair.method_b, pair.pilot_difference, pair.sd_image) == ("a", "b", -2.0, 0.0)


def test_plan_command(tmp_path, capsys, repo_root):
    assert (
        main(
            [
                "plan",
                "--sd",
                "1",
                "--images",
                "14",
                "--half-width",
                "0.2",
                "--difference",
                "0.5",
                "--approximation",
                "normal",
                "--output",
                str(tmp_path / "plan.csv"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "97" in out
    plan = pd.read_csv(tmp_path / "plan.csv")
    assert list(plan["question"]) == ["precision", "difference"]
    assert plan.loc[0, "ratings_per_stimulus"] == 7 and plan.loc[1, "ratings_per_stimulus"] == 5
    assert main(["plan", str(repo_root / "tests/analysis/data/small_ratings.csv")]) == 0
    assert "MOS precision" in capsys.readouterr().out
    assert main(["plan"]) == 2
    with pytest.raises(RatingsError):
        ratings_for_half_width(1.0, 0.0)
