"""Paper order, the primary paired test, provenance marks, the screening summary and BT.500's unanimous stimuli."""

import numpy as np
import pandas as pd
import pytest

from mos_study.analysis import AnalysisOptions, ScreeningOptions, build_results, prepare_ratings, read_ratings
from mos_study.analysis.export import render_files, summary_markdown

QUALITY = {"nn": 1.5, "bicubic": 2.2, "srgan-vgg54": 3.8, "hr": 4.6, "mine": 3.0}


def panel(datasets=("BSD100", "Set5"), n_raters=6, n_images=6, raw=False):
    rng = np.random.default_rng(0)
    rows = []
    for dataset in datasets:
        for image in range(n_images):
            for method, quality in QUALITY.items():
                for rater in range(n_raters):
                    score = int(np.clip(round(quality + rng.normal(0, 0.7)), 1, 5))
                    rows.append((dataset, f"r{rater}", f"img{image}", method, score))
    frame = pd.DataFrame(rows, columns=["dataset", "rater", "image", "method", "score"])
    return frame if raw else prepare_ratings(frame)


def metrics_for(ratings):
    keys = ratings[["dataset", "image", "method"]].astype(str).drop_duplicates()
    psnr = keys["method"].map({"nn": 24.0, "bicubic": 25.0, "srgan-vgg54": 24.5, "hr": np.inf, "mine": 26.0})
    return keys.assign(psnr_y=psnr + keys["image"].str[-1].astype(float) * 0.1, ssim_y=0.7)


ORDER = ["nn", "bicubic", "srgan-vgg54", "hr", "mine"]


@pytest.fixture(scope="module")
def results():
    ratings = panel()
    provenance = pd.DataFrame(
        [
            {
                "method": "srgan-vgg54",
                "learned": "True",
                "stand_in_features": "True",
                "line": "srgan-vgg54: 40 updates",
            },
            {"method": "nn", "learned": "False", "stand_in_features": "False", "line": ""},
            {"method": "unrated", "learned": "True", "stand_in_features": "True", "line": "unrated: x"},
        ]
    )
    options = AnalysisOptions(subjective_model="none")
    return build_results(ratings, options, metrics=metrics_for(ratings), provenance=provenance)


def test_tables_list_datasets_and_methods_in_the_papers_order(results):
    assert list(results.mos["dataset"].astype(str)) == ["Set5"] * 5 + ["BSD100"] * 5
    assert list(results.mos["method"].astype(str))[:5] == ORDER
    assert list(results.mos_per_image["method"].astype(str))[:5] == ORDER
    assert list(results.table2["method"])[:5] == ORDER
    first = results.significance.iloc[0]
    assert (first.dataset, first.method_a, first.method_b, first.test) == ("Set5", "nn", "bicubic", "wilcoxon")
    assert results.metric_correlation["dataset"].tolist()[:2] == ["Set5", "Set5"]
    files = render_files(results, figures=False)
    assert files["table2.md"].decode().splitlines()[0].startswith("| dataset | measure | nn | bicubic | srgan-vgg54")


def test_the_per_image_paired_test_is_primary(results):
    significance = results.significance
    roles = significance.drop_duplicates("test").set_index("test")["role"]
    assert roles.to_dict() == {"wilcoxon": "primary", "mannwhitney": "as in the paper"}
    for _, part in significance.groupby("dataset"):  # the primary test's rows come first in every dataset
        assert list(part["test"]) == ["wilcoxon"] * 10 + ["mannwhitney"] * 10
    text = summary_markdown(results)
    assert text.index("Primary test: Wilcoxon signed-rank, paired over images") < text.index("As in the paper")


def test_stand_in_models_are_marked_everywhere(results):
    assert results.stand_in_methods == {"srgan-vgg54"}
    assert list(results.provenance["method"]) == ["nn", "srgan-vgg54"]  # only methods the study rated
    mos = results.mos.set_index(results.mos["method"].astype(str))
    assert mos.loc["srgan-vgg54", "stand_in_features"].all() and not mos.loc["nn", "stand_in_features"].any()
    files = render_files(results, figures=True)
    summary = files["summary.md"].decode()
    assert "| Set5 | srgan-vgg54 \u2020 |" in summary and "- srgan-vgg54: 40 updates" in summary
    assert "trained with stand-in VGG features" in summary
    assert (
        "srgan-vgg54 \u2020" in files["table2.md"].decode() and r"srgan-vgg54$^\dagger$" in files["table2.tex"].decode()
    )
    assert b"stand_in_features" in files["mos.csv"] and "provenance.csv" in files
    assert files["figures/mos.svg"].startswith(b"<?xml") and files["figures/mos_psnr.png"][:4] == b"\x89PNG"


def test_without_provenance_nothing_is_added():
    results = build_results(panel(datasets=("Set5",)), AnalysisOptions(subjective_model="none"))
    assert "stand_in_features" not in results.mos and "provenance.csv" not in results.tables()


def test_summary_says_which_rules_ran_and_warns_without_calibration_or_repeats():
    ratings = panel(datasets=("Set5",))
    text = summary_markdown(build_results(ratings, AnalysisOptions(subjective_model="none")))
    assert "Rules run: bt500, calibration, gold, retest, speed, constant." in text
    assert "**Warning:** no rater could be judged by calibration trials or by repeated stimuli" in text
    raw = panel(datasets=("Set5",), raw=True).assign(kind="trial")
    repeated = pd.concat([raw, raw[raw["image"] == "img0"].assign(kind="repeat")], ignore_index=True)
    options = AnalysisOptions(subjective_model="none", screening=ScreeningOptions(rules=("bt500", "retest")))
    text = summary_markdown(build_results(prepare_ratings(repeated), options))
    assert "Rules run: bt500, retest; switched off: calibration, gold, speed, constant." in text
    assert "**Warning:**" not in text


# ---------------------------------------------------------------- BT.500 on stimuli every rater scored alike


def bt500(ratings, skip):
    options = AnalysisOptions(
        subjective_model="none",
        keep_screened=True,  # the literal rule may reject everyone
        screening=ScreeningOptions(rules=("bt500",), bt500_skip_unanimous=skip),
    )
    return build_results(ratings, options)


def test_bt500_skip_unanimous_both_ways_on_the_nflx_sample(repo_root):
    ratings = read_ratings(repo_root / "tests/analysis/data/p910_full_ratings.csv")
    # The public sample has no stimulus every rater scored alike: both settings give the same result.
    assert bt500(ratings, True).rejected_raters == bt500(ratings, False).rejected_raters == ["s01"]
    # Eight unanimous stimuli added (every rater: 5). Skipped, nothing changes; applied literally (sureal's
    # reading), every rater gains 8 P and 8 Q, |P-Q|/(P+Q) falls below 0.3 and all 26 raters are
    # rejected, s04 among them (P 10, Q 2: 8/12 = 0.67 -> 8/28 = 0.29).
    raters = sorted(ratings["rater"].astype(str).unique())
    extra = pd.DataFrame(
        [("p910_full_ratings", r, f"unanimous{k}", "acr", 5) for k in range(8) for r in raters],
        columns=["dataset", "rater", "image", "method", "score"],
    )
    base = ratings[["dataset", "rater", "image", "method", "score"]].astype({"dataset": str, "rater": str})
    both = prepare_ratings(pd.concat([base.astype({"image": str, "method": str}), extra], ignore_index=True))
    skipped = bt500(both, True)
    assert skipped.rejected_raters == ["s01"]
    literal = bt500(both, False)
    assert "s04" in literal.rejected_raters and len(literal.rejected_raters) == len(raters) == 26  # everyone
    counts = literal.screening.set_index("rater")
    assert (counts.loc["s04", "bt500_p"], counts.loc["s04", "bt500_q"]) == (18, 10)
    assert "applied literally to stimuli every rater scored alike" in summary_markdown(literal)
