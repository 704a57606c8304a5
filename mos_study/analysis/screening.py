"""Rater screening: ITU-R BT.500-14 outlier rejection, calibration agreement, gold (hidden known-answer) trials,
test-retest, too fast, constant."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .ratings import test_rows

RULES = ("bt500", "calibration", "gold", "retest", "speed", "constant")
STIMULUS = ["dataset", "image", "method"]
LOW_ANCHORS = ("nn", "nearest", "nearest-neighbour", "nearest-neighbor", "nearest_neighbour", "nearest_neighbor")
HIGH_ANCHORS = ("hr", "original", "reference", "ref")


@dataclass
class ScreeningOptions:
    """Which rules run and their thresholds; every rule can be switched off."""

    rules: tuple = RULES
    calibration_tolerance: float = 1.0  # a calibration score within this of its anchor agrees
    calibration_min_agreement: float = 0.75  # reject below this fraction of agreeing calibration scores
    # Gold trials (ITU-T P.910 / P.808 crowdsourcing): hidden trials of known answer; a score within the tolerance of
    # the expected one is right (NN expected 1: 1-2; HR expected 5: 4-5); a rater below the fraction right is rejected.
    gold_tolerance: float = 1.0
    gold_min_agreement: float = 1.0
    retest_max_mad: float = 1.0  # reject above this mean absolute difference over repeated pairs
    retest_min_pairs: int = 2  # ... judged only with at least this many pairs
    speed_min_median_ms: float = 500.0  # reject a median response time below this
    constant_min_ratings: int = 10  # a rater with at least this many ratings, all one score, is rejected
    bt500_sd_ddof: int = 1  # BT.500 defines S with N - 1; 0 reproduces sureal (numpy std)
    # A stimulus every rater scored alike (S = 0) shows no outliers and is skipped. False applies the Recommendation's
    # rule literally, as sureal does: every score is then both >= mean + 2S and <= mean - 2S, so every rater of the
    # stimulus gains one P and one Q (which pushes |P-Q|/(P+Q) towards 0, i.e. towards rejection).
    bt500_skip_unanimous: bool = True


def screen(ratings, options, scale):
    """One row per rater: rater,n_ratings,bt500_p,bt500_q,rejected,reasons, then each rule's statistic."""
    trials = test_rows(ratings)
    table = pd.DataFrame({"rater": sorted(ratings["rater"].astype(str).unique())})
    table["n_ratings"] = table["rater"].map(trials.groupby("rater").size()).fillna(0).astype(int)
    reasons = {rater: [] for rater in table["rater"]}
    table = table.merge(
        bt500_counts(trials, options.bt500_sd_ddof, options.bt500_skip_unanimous), on="rater", how="left"
    )
    table[["bt500_p", "bt500_q"]] = table[["bt500_p", "bt500_q"]].fillna(0).astype(int)
    n = table["n_ratings"].replace(0, np.nan)
    total = table["bt500_p"] + table["bt500_q"]
    table["bt500_ratio"] = total / n
    with np.errstate(invalid="ignore", divide="ignore"):
        table["bt500_balance"] = (table["bt500_p"] - table["bt500_q"]).abs() / total.replace(0, np.nan)
    checks = {"bt500": (table["bt500_ratio"] > 0.05) & (table["bt500_balance"] < 0.3)}
    table = table.merge(calibration_agreement(ratings, options, scale), on="rater", how="left")
    checks["calibration"] = table["calibration_agreement"] < options.calibration_min_agreement
    table = table.merge(gold_agreement(ratings, options), on="rater", how="left")
    checks["gold"] = table["gold_agreement"] < options.gold_min_agreement
    table = table.merge(retest(trials), on="rater", how="left")
    checks["retest"] = (table["retest_pairs"] >= options.retest_min_pairs) & (
        table["retest_mad"] > options.retest_max_mad
    )
    speed = trials.groupby("rater")["response_ms"].median()
    table["median_response_ms"] = table["rater"].map(speed)
    checks["speed"] = table["median_response_ms"] < options.speed_min_median_ms
    table["distinct_scores"] = table["rater"].map(trials.groupby("rater")["score"].nunique()).fillna(0).astype(int)
    checks["constant"] = (table["distinct_scores"] == 1) & (table["n_ratings"] >= options.constant_min_ratings)
    for rule in RULES:
        if rule in options.rules:
            for rater in table["rater"][checks[rule].fillna(False).to_numpy(dtype=bool)]:
                reasons[rater].append(rule)
    table["rejected"] = table["rater"].map(lambda r: bool(reasons[r]))
    table["reasons"] = table["rater"].map(lambda r: ";".join(reasons[r]))
    first = ["rater", "n_ratings", "bt500_p", "bt500_q", "rejected", "reasons"]
    return table[first + [c for c in table.columns if c not in first]]


def bt500_counts(ratings, sd_ddof=1, skip_unanimous=True):
    """P and Q per rater by ITU-R BT.500-14 Annex 1 §A1-2.3.1 (screening for DSIS, DSCQS and ACR methods).

    Per stimulus (test condition j, image k), over the N scores it received: mean ū, standard deviation
    S = sqrt(Σ(ū - u)² / (N - 1)) as defined in §A1-2.2.1, and kurtosis β2 = m4 / m2² with m_x = Σ(u - ū)^x / N.
    If 2 <= β2 <= 4 (normal), a score u >= ū + 2S adds one to the rater's P and u <= ū - 2S one to Q; otherwise the
    bounds are ū -+ sqrt(20) S. Repeated presentations are pooled per stimulus and each counts as one presentation
    (as sureal does); the rule on (P+Q) / (J·K·R) and |P-Q| / (P+Q) is applied in ``screen`` with J·K·R = the
    number of presentations the rater scored, which is J·K·R for a complete design and stays right for incomplete
    ones. Stimuli with fewer than two scores are skipped; so are stimuli with no spread (S = 0), which cannot show
    outliers, unless ``skip_unanimous=False``: then, as the Recommendation's text and sureal 0.9.0 read, every score
    of such a stimulus counts in both P and Q. ``sd_ddof=0`` uses S with N in the denominator instead, as sureal
    does (it rejects slightly more).
    """
    score = ratings["score"]
    group = ratings.groupby(STIMULUS, sort=False)["score"]
    mean = group.transform("mean")
    count = group.transform("count")
    deviation = score - mean
    m2 = (deviation**2).groupby([ratings[k] for k in STIMULUS], sort=False).transform("mean")
    m4 = (deviation**4).groupby([ratings[k] for k in STIMULUS], sort=False).transform("mean")
    sd = np.sqrt(m2 * count / (count - sd_ddof).where(count > 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        beta2 = m4 / m2**2
    factor = np.where((beta2 >= 2) & (beta2 <= 4), 2.0, np.sqrt(20.0))
    usable = (count > 1) & ((sd > 0) if skip_unanimous else sd.notna())
    p = usable & (score >= mean + factor * sd)
    q = usable & (score <= mean - factor * sd)
    counts = pd.DataFrame({"rater": ratings["rater"], "bt500_p": p.astype(int), "bt500_q": q.astype(int)})
    return counts.groupby("rater", as_index=False).sum()


def calibration_agreement(ratings, options, scale):
    """Fraction of a rater's calibration scores within tolerance of the anchor's expected score.

    A calibration row (kind ``calibration``) is expected at its ``expected_score`` when the table gives one;
    otherwise a method naming a low anchor (nearest neighbour: nn, nearest...) is expected at the bottom of the
    scale and one naming a high anchor (hr, original, reference) at the top; other calibration rows are not judged.
    A rater without judged calibration rows gets no value and is never rejected.
    """
    calibration = ratings[ratings["kind"] == "calibration"]
    method = calibration["method"].str.lower()
    expected = pd.Series(np.nan, index=calibration.index)
    expected[method.isin(LOW_ANCHORS)] = scale[0]
    expected[method.isin(HIGH_ANCHORS)] = scale[1]
    expected = calibration["expected_score"].where(calibration["expected_score"].notna(), expected)
    judged = expected.notna()
    agree = (calibration["score"][judged] - expected[judged]).abs() <= options.calibration_tolerance
    table = agree.groupby(calibration["rater"][judged]).agg(["mean", "size"])
    table = table.rename(columns={"mean": "calibration_agreement", "size": "calibration_n"})
    return table.rename_axis("rater").reset_index()


def gold_agreement(ratings, options):
    """Fraction of a rater's gold trials (kind ``gold``, with an ``expected_score``) scored within
    ``gold_tolerance`` of the expected score: gold_agreement and gold_n per rater. A rater without gold trials gets
    no value and is never rejected by this rule."""
    gold = ratings[(ratings["kind"] == "gold") & ratings["expected_score"].notna()]
    right = (gold["score"] - gold["expected_score"]).abs() <= options.gold_tolerance
    table = right.groupby(gold["rater"]).agg(["mean", "size"])
    table = table.rename(columns={"mean": "gold_agreement", "size": "gold_n"})
    return table.rename_axis("rater").reset_index()


def retest(ratings):
    """Test-retest: mean absolute difference between consecutive scores a rater gave the same stimulus.

    Repeats are found by the data (a rater scoring a stimulus more than once), ordered by repetition, trial, then
    line; a rater without repeats gets no value and is never rejected.
    """
    ordered = ratings.sort_values(["rater"] + STIMULUS + ["repetition", "trial", "line"], na_position="first")
    keys = ordered[["rater"] + STIMULUS]
    same = (keys == keys.shift()).all(axis=1)
    difference = ordered["score"].diff().abs()[same]
    table = difference.groupby(ordered["rater"][same]).agg(["mean", "size"])
    table = table.rename(columns={"mean": "retest_mad", "size": "retest_pairs"})
    return table.rename_axis("rater").reset_index()
