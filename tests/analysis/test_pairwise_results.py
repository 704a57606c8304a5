"""build_pairwise_results and its files: reading errors, scale recovery, CIs, significance, screening, MOS, files."""

import numpy as np
import pandas as pd
import pytest

from mos_study.analysis.pairwise import (
    build_pairwise_results,
    read_comparisons,
    render_pairwise_files,
    write_pairwise_results,
)
from mos_study.analysis.pairwise.simulation import rmse, simulate_study
from mos_study.analysis.ratings import RatingsError

METHODS = ["nn", "bicubic", "srresnet-mse", "srgan-vgg54", "hr"]
QUALITY = np.array([0.0, 1.0, 2.5, 3.0, 4.0])  # JOD


def frame(rows):
    return pd.DataFrame(rows, columns=["rater", "image", "method_a", "method_b", "choice"])


@pytest.fixture(scope="module")
def study():
    """12 raters x 3 images x 20 random pairs, Thurstone observers of known quality."""
    return simulate_study(QUALITY, 12, 20, images=("baby", "bird", "butterfly"), methods=METHODS, seed=1)


@pytest.fixture(scope="module")
def results(study):
    return build_pairwise_results(study, bootstrap=300, seed=0)


@pytest.mark.parametrize(
    "rows, problem",
    [
        ([["r1", "i", "nn", "hr", "left"]], ":2: column 'choice' must be a, b, tie"),
        ([["r1", "i", "nn", "nn", "a"]], "compared with itself"),
        ([["r1", "i", "nn", "hr", "a"], ["", "i", "nn", "hr", "b"]], ":3: column 'rater' is empty"),
        ([["r1", "i", "nn", "hr", "bicubic"]], "must be a, b, tie or the name of method_a or method_b"),
    ],
)
def test_bad_rows_are_named(rows, problem):
    with pytest.raises(RatingsError, match=problem):
        read_comparisons(frame(rows))


def test_missing_columns_and_files_are_clear_errors(tmp_path):
    with pytest.raises(RatingsError, match="missing column.*choice"):
        read_comparisons(pd.DataFrame({"rater": ["r"], "image": ["i"], "method_a": ["x"], "method_b": ["y"]}))
    with pytest.raises(RatingsError, match="no such file"):
        read_comparisons(tmp_path / "nothing.csv")


def test_choice_may_name_the_method_or_a_tie():
    table = read_comparisons(
        frame([["r", "i", "nn", "hr", "hr"], ["r", "i", "nn", "hr", "NN"], ["r", "i", "a", "b", "Tie"]])
    )
    assert list(table["choice"]) == ["b", "a", "tie"]


def test_scale_recovers_the_truth_in_paper_order(results):
    scale = results.scale_per_method
    assert list(scale["method"]) == METHODS  # the paper's order, reference (nn) first
    assert scale["scale"].iloc[0] == 0.0
    assert rmse(scale["scale"].to_numpy(), QUALITY) < 0.3
    assert (scale["ci95_low"] <= scale["scale"]).all() and (scale["scale"] <= scale["ci95_high"]).all()
    covered = (scale["ci95_low"] <= QUALITY) & (QUALITY <= scale["ci95_high"])
    assert covered.sum() >= 4


def test_per_image_scales_and_win_matrix(results, study):
    per_image = results.scale_per_image
    assert set(per_image["image"]) == {"baby", "bird", "butterfly"}
    assert (per_image.groupby("image")["scale"].first() == 0).all()
    wins = results.win_matrix
    pair = wins[(wins["method"] == "hr") & (wins["opponent"] == "nn")].iloc[0]
    reverse = wins[(wins["method"] == "nn") & (wins["opponent"] == "hr")].iloc[0]
    assert pair["n_comparisons"] == reverse["n_comparisons"] > 0
    assert pair["wins"] + reverse["wins"] == pair["n_comparisons"]
    assert pair["win_rate"] > 0.9
    assert wins["wins"].sum() == len(study)


def test_significance_separates_far_methods_and_not_close_ones(results):
    primary = results.significance[results.significance["test"] == "bootstrap"].set_index(["method_a", "method_b"])
    assert primary.loc[("nn", "hr"), "significant"]
    assert primary.loc[("nn", "hr"), "difference"] > 3
    assert (primary["p_holm"] >= primary["p_value"]).all()
    assert set(results.significance["test"]) == {"bootstrap", "likelihood-ratio"}
    assert len(primary) == 10


def test_bootstrap_is_seeded(study):
    one = build_pairwise_results(study, bootstrap=50, seed=5).scale_per_method
    two = build_pairwise_results(study, bootstrap=50, seed=5).scale_per_method
    other = build_pairwise_results(study, bootstrap=50, seed=6).scale_per_method
    pd.testing.assert_frame_equal(one, two)
    assert not np.allclose(one["ci95_high"], other["ci95_high"])


def test_a_contrary_rater_is_flagged(study):
    contrary = study[study["rater"] == "r000"].copy()
    contrary["rater"] = "contrary"
    contrary["choice"] = contrary["choice"].map({"a": "b", "b": "a"})  # always the worse one
    raters = build_pairwise_results(pd.concat([study, contrary]), bootstrap=0).raters.set_index("rater")
    assert raters.loc["contrary", "outlier"]
    assert raters.loc["contrary", "distance"] == raters["distance"].max()
    assert raters["outlier"].sum() <= 2


def test_mos_beside_the_scale_and_all_files(study, tmp_path):
    mos = pd.DataFrame({"method": METHODS, "mos": [1.2, 2.0, 3.1, 3.5, 4.6], "ci95_low": 0.0, "ci95_high": 5.0})
    results = build_pairwise_results(study, bootstrap=20, mos=mos)
    assert list(results.scale_per_method["mos"]) == [1.2, 2.0, 3.1, 3.5, 4.6]
    names = write_pairwise_results(results, tmp_path)
    assert set(names) == {
        "pairwise_scale.csv",
        "pairwise_scale_per_image.csv",
        "pairwise_wins.csv",
        "pairwise_raters.csv",
        "pairwise_significance.csv",
        "pairwise_summary.txt",
        "pairwise_scale.png",
        "pairwise_wins.png",
        "pairwise_mos.png",
    }
    header = (tmp_path / "pairwise_scale.csv").read_text().split("\n")[0]
    assert header.startswith("dataset,method,scale,ci95_low,ci95_high,n_comparisons") and header.endswith(
        "mos_ci95_high"
    )
    assert (tmp_path / "pairwise_scale.png").read_bytes()[:4] == b"\x89PNG"
    assert "Thurstone Case V" in (tmp_path / "pairwise_summary.txt").read_text()


def test_files_are_deterministic_and_formula_cells_are_quoted(study):
    hostile = study.replace({"r001": "=HYPERLINK(1)"})
    first = render_pairwise_files(build_pairwise_results(hostile, bootstrap=20), figures=False)
    again = render_pairwise_files(
        build_pairwise_results(hostile.sample(frac=1, random_state=2), bootstrap=20), figures=False
    )
    assert "pairwise_mos.png" not in first
    assert b"'=HYPERLINK(1)" in first["pairwise_raters.csv"]
    assert first == again  # every table and the summary, byte for byte, whatever the row order


def test_bradley_terry_gives_the_same_order(study):
    thurstone = build_pairwise_results(study, bootstrap=0).scale_per_method["scale"].to_numpy()
    bt = build_pairwise_results(study, model="bradley-terry", bootstrap=0).scale_per_method["scale"].to_numpy()
    assert list(np.argsort(thurstone)) == list(np.argsort(bt))
    assert np.abs(thurstone - bt).max() < 0.4  # both in JOD: the models differ only in the tails


def test_unanimous_and_unknown_models_are_handled():
    unanimous = frame([["r1", "i", "nn", "hr", "b"], ["r2", "i", "nn", "hr", "b"]])
    scale = build_pairwise_results(unanimous, bootstrap=10).scale_per_method
    assert np.isfinite(scale["scale"]).all() and scale["scale"].iloc[1] > 1
    with pytest.raises(RatingsError, match="unknown pairwise model"):
        build_pairwise_results(unanimous, model="elo")


def test_mos_of_another_dataset_name_joins_on_the_method_and_foreign_mos_is_an_error(study):
    mos = pd.DataFrame({"dataset": "Set14", "method": METHODS, "mos": [1.0, 2.0, 3.0, 3.5, 4.5]})
    scale = build_pairwise_results(study, bootstrap=0, mos=mos).scale_per_method  # comparisons' dataset: comparisons
    assert list(scale["mos"]) == [1.0, 2.0, 3.0, 3.5, 4.5]
    with pytest.raises(RatingsError, match="names none of the compared methods"):
        build_pairwise_results(study, bootstrap=0, mos=pd.DataFrame({"method": ["x"], "mos": [3.0]}))
    with pytest.raises(RatingsError, match="needs columns method and mos"):
        build_pairwise_results(study, bootstrap=0, mos=pd.DataFrame({"method": METHODS}))


def test_bias_reduction_pulls_the_scale_in_and_keeps_its_order(study):
    plain = build_pairwise_results(study, bootstrap=0).scale_per_method["scale"].to_numpy()
    reduced = build_pairwise_results(study, bootstrap=0, bias_reduction=True)
    scale = reduced.scale_per_method["scale"].to_numpy()
    assert list(np.argsort(scale)) == list(np.argsort(plain))
    assert 0 < np.ptp(scale) < np.ptp(plain)
    assert reduced.options["bias_reduction"] and "Firth" in "\n".join(reduced.summary)


def test_one_rater_gets_no_bootstrap_claims(study):
    alone = study[study["rater"] == "r000"]
    results = build_pairwise_results(alone, bootstrap=50)
    assert results.scale_per_method["ci95_low"].isna().all()
    assert "bootstrap" not in set(results.significance["test"])  # resampling one rater says nothing
    assert set(results.significance["test"]) == {"likelihood-ratio"}
    assert results.raters.empty  # nobody else to judge a rater against
