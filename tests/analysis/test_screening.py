"""Rater screening: BT.500-14 on hand-checked stimuli and on a constructed panel, and the other rules."""

import math

import numpy as np
import pandas as pd
import pytest

from mos_study.analysis import AnalysisOptions, ScreeningOptions, build_results, prepare_ratings
from mos_study.analysis.screening import bt500_counts, screen


def table(rows, **extra):
    frame = pd.DataFrame(rows, columns=["rater", "image", "method", "score"])
    frame["dataset"] = "d"
    for key, value in extra.items():
        frame[key] = value
    return prepare_ratings(frame)


def bt500_by_loop(frame, ddof=1):
    """Annex 1 §A1-2.3.1 literally, one stimulus at a time (an independent implementation for comparison)."""
    p, q = {}, {}
    for _, group in frame.groupby(["dataset", "image", "method"]):
        u = group.score.to_numpy()
        n = len(u)
        mean = sum(u) / n
        m2 = sum((x - mean) ** 2 for x in u) / n
        m4 = sum((x - mean) ** 4 for x in u) / n
        s = math.sqrt(sum((mean - x) ** 2 for x in u) / (n - ddof))
        if n < 2 or s == 0:
            continue
        k = 2 if 2 <= m4 / m2**2 <= 4 else math.sqrt(20)
        for rater, x in zip(group.rater, u):
            p[rater] = p.get(rater, 0) + (x >= mean + k * s)
            q[rater] = q.get(rater, 0) + (x <= mean - k * s)
    return p, q


def test_bt500_kurtosis_branches_by_hand():
    # Stimulus 1: nine 3s and one 5. mean 3.2; m2 = (9*0.04 + 3.24)/10 = 0.36; m4 = (9*0.0016 + 10.4976)/10 = 1.0512;
    # beta2 = 1.0512/0.1296 = 8.11 (not normal) -> bound 3.2 + sqrt(20)*sqrt(3.6/9) = 6.03: the 5 is no outlier.
    rows = [(f"r{k}", "s1", "m", 3) for k in range(9)] + [("r9", "s1", "m", 5)]
    counts = bt500_counts(table(rows)).set_index("rater")
    assert counts.bt500_p.sum() == 0 and counts.bt500_q.sum() == 0
    # With the normal branch's 2S it would be: 3.2 + 2*0.632 = 4.46 <= 5. Check the branch choice, not luck:
    assert 3.2 + 2 * math.sqrt(3.6 / 9) < 5 < 3.2 + math.sqrt(20) * math.sqrt(3.6 / 9)


def test_bt500_normal_branch_by_hand():
    # 1,2,2,3,3,3,3,4,4,5 plus 2 more 3s and a 1 and 5: build 14 scores with beta2 in [2, 4].
    scores = [1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 4, 4, 5, 5]
    rows = [(f"r{k:02d}", "s1", "m", x) for k, x in enumerate(scores)]
    u = np.array(scores, float)
    mean, m2, m4 = u.mean(), ((u - u.mean()) ** 2).mean(), ((u - u.mean()) ** 4).mean()
    assert 2 <= m4 / m2**2 <= 4  # mean 3.143, beta2 2.6
    s = u.std(ddof=1)  # 1.167
    counts = bt500_counts(table(rows)).set_index("rater")
    # 5 >= 3.143 + 2*1.167 = 5.476? no. 1 <= 0.81? no: nobody counts with N-1 ...
    assert counts.bt500_p.sum() == int((u >= mean + 2 * s).sum()) == 0
    # ... but S with N (sureal's numpy std) is smaller: 1.125 -> bounds 5.39 / 0.89: still none.
    assert bt500_counts(table(rows), sd_ddof=0).bt500_q.sum() == int((u <= mean - 2 * u.std()).sum())


def constructed_panel(odd_rater, seed=1):
    """16 raters x 40 stimuli of quality 3 on 1..5: fifteen honest raters (3 plus rounded normal noise, sd 0.8)
    and one odd rater: ``noisy`` scores 1 or 5 at random, ``high`` always 5."""
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(40):
        for k in range(15):
            rows.append((f"honest{k:02d}", f"img{j:02d}", "m", int(np.clip(np.rint(3 + rng.normal(0, 0.8)), 1, 5))))
        rows.append((odd_rater, f"img{j:02d}", "m", int(rng.choice([1, 5])) if odd_rater == "noisy" else 5))
    return table(rows)


def test_bt500_rejects_the_known_rater_on_a_constructed_panel():
    frame = constructed_panel("noisy")
    result = screen(frame, ScreeningOptions(rules=("bt500",)), (1, 5)).set_index("rater")
    assert list(result.index[result.rejected]) == ["noisy"]
    assert result.loc["noisy", "reasons"] == "bt500"
    p, q = bt500_by_loop(frame)
    assert result.bt500_p.to_dict() == {r: p.get(r, 0) for r in result.index}
    assert result.bt500_q.to_dict() == {r: q.get(r, 0) for r in result.index}
    # (P+Q)/(J.K.R) with 40 presentations each
    assert result.loc["noisy", "bt500_ratio"] == (p["noisy"] + q["noisy"]) / 40


def test_bt500_keeps_a_one_sided_rater():
    # Many outliers, all above: (P+Q)/JKR > 0.05 but |P-Q|/(P+Q) = 1 >= 0.3, so BT.500 keeps the rater.
    result = screen(constructed_panel("high"), ScreeningOptions(rules=("bt500",)), (1, 5)).set_index("rater")
    assert result.loc["high", "bt500_ratio"] > 0.05 and result.loc["high", "bt500_balance"] == 1.0
    assert not result.rejected.any()


def test_screened_rater_is_excluded_from_mos_unless_kept():
    frame = constructed_panel("noisy")
    screened = build_results(frame, AnalysisOptions(screening=ScreeningOptions(rules=("bt500",))))
    kept = build_results(frame, AnalysisOptions(screening=ScreeningOptions(rules=("bt500",)), keep_screened=True))
    assert screened.mos.n_ratings[0] == 15 * 40 and kept.mos.n_ratings[0] == 16 * 40
    assert screened.mos_all_raters.n_ratings[0] == 16 * 40
    pd.testing.assert_frame_equal(kept.mos, screened.mos_all_raters)


def test_calibration_rule():
    rows, kinds = [], []
    for rater, nn_score, hr_score in (("good", 1, 5), ("near", 2, 4), ("reversed", 5, 1), ("half", 1, 1)):
        for k in range(4):
            rows += [(rater, f"cal{k}", "nearest", nn_score), (rater, f"cal{k}", "hr", hr_score)]
            kinds += ["calibration", "calibration"]
        rows.append((rater, "test", "srgan", 3))
        kinds.append("trial")
    result = screen(table(rows, kind=kinds), ScreeningOptions(rules=("calibration",)), (1, 5)).set_index("rater")
    assert result.calibration_agreement.to_dict() == {"good": 1.0, "half": 0.5, "near": 1.0, "reversed": 0.0}
    assert sorted(result.index[result.rejected]) == ["half", "reversed"]
    assert (result.n_ratings == 1).all()  # calibration rows are not ratings of the study


def test_calibration_from_is_calibration_column():
    rows = [("a", "c", "nn", 5), ("a", "c", "hr", 1), ("a", "x", "m", 3)]
    frame = table(rows, is_calibration=["true", "true", "false"])
    assert frame.kind.tolist() == ["calibration", "calibration", "trial"]
    assert screen(frame, ScreeningOptions(), (1, 5)).set_index("rater").loc["a", "reasons"] == "calibration"


def test_calibration_expected_score_column():
    # expected_score wins over the anchor names: "mid" anchors expected at 3, any method name
    rows = [("a", "c1", "mid", 3), ("a", "c2", "mid", 3), ("b", "c1", "mid", 5), ("b", "c2", "mid", 1)]
    frame = table(rows, kind="calibration", expected_score=[3, 3, 3, 3])
    result = screen(frame, ScreeningOptions(rules=("calibration",)), (1, 5)).set_index("rater")
    assert result.calibration_agreement.to_dict() == {"a": 1.0, "b": 0.0}
    assert list(result.index[result.rejected]) == ["b"]


def test_retest_rule():
    rows, repetition = [], []
    for rater, first, second in (("steady", [1, 2, 3, 4], [1, 2, 4, 4]), ("erratic", [1, 2, 3, 4], [5, 5, 1, 1])):
        for k, (a, b) in enumerate(zip(first, second)):
            rows += [(rater, f"i{k}", "m", a), (rater, f"i{k}", "m", b)]
            repetition += [1, 2]
    result = screen(table(rows, repetition=repetition), ScreeningOptions(rules=("retest",)), (1, 5)).set_index("rater")
    assert result.loc["steady", "retest_mad"] == 0.25  # |3-4| over 4 pairs
    assert result.loc["erratic", "retest_mad"] == (4 + 3 + 2 + 3) / 4
    assert result.retest_pairs.tolist() == [4, 4]
    assert list(result.index[result.rejected]) == ["erratic"]


def test_speed_and_constant_rules():
    rows, ms = [], []
    for k in range(12):
        rows += [("fast", f"i{k}", "m", 1 + k % 5), ("flat", f"i{k}", "m", 3), ("fine", f"i{k}", "m", 1 + k % 4)]
        ms += [200, 2000, 1500]
    result = screen(table(rows, response_ms=ms), ScreeningOptions(), (1, 5)).set_index("rater")
    assert result.loc["fast", "median_response_ms"] == 200 and result.loc["fast", "reasons"] == "speed"
    assert result.loc["flat", "reasons"] == "constant"
    assert not result.loc["fine", "rejected"]
    off = screen(table(rows, response_ms=ms), ScreeningOptions(rules=()), (1, 5))
    assert not off.rejected.any()


def test_every_rater_screened_out_is_a_clear_error():
    from mos_study.analysis import RatingsError

    rows = [(f"r{k}", f"i{j}", "m", 3) for k in range(2) for j in range(12)]
    with pytest.raises(RatingsError, match="every rater was rejected"):
        build_results(table(rows), AnalysisOptions())
