"""Metric agreement with MOS (mos_study.analysis.agreement): correlations against scipy, the VQEG logistic fit,
Williams' test by hand, the seeded bootstrap, and the files of an analysis given extra metric columns."""

import io

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from mos_study.analysis import AnalysisOptions, RatingsError, ScreeningOptions, build_results, check_metrics
from mos_study.analysis import agreement as ag
from mos_study.analysis.__main__ import main
from mos_study.analysis.export import render_files, to_csv_text

QUALITY = {"nn": 1.0, "bicubic": 2.0, "srresnet-mse": 3.0, "srgan-vgg54": 4.2, "hr": 5.0}
NO_SCREENING = AnalysisOptions(screening=ScreeningOptions(rules=()))


def panel(seed=0, images=8, raters=6, datasets=("Set5", "Set14")):
    """Ratings of a fixed synthetic panel and a metrics table: PSNR follows quality loosely, lpips_alex (lower is
    better) closely, niqe not at all; HR has infinite PSNR as in a benchmark."""
    rng = np.random.default_rng(seed)
    ratings, metrics = [], []
    for dataset in datasets:
        for i in range(images):
            for method, quality in QUALITY.items():
                true = quality + rng.normal(0, 0.6)
                for r in range(raters):
                    score = int(np.clip(np.round(true + rng.normal(0, 0.7)), 1, 5))
                    ratings.append(
                        {"dataset": dataset, "rater": f"r{r}", "image": f"i{i}", "method": method, "score": score}
                    )
                metrics.append(
                    {
                        "dataset": dataset,
                        "image": f"i{i}",
                        "method": method,
                        "psnr_y": np.inf if method == "hr" else 22 + quality + rng.normal(0, 1.5),
                        "ssim_y": 0.6 + 0.05 * quality + rng.normal(0, 0.05),
                        "lpips_alex": 0.6 - 0.1 * true + rng.normal(0, 0.03),
                        "niqe": rng.normal(5, 1),
                        "weights_note": "stand-in",
                    }
                )
    from mos_study.analysis import prepare_ratings

    return prepare_ratings(pd.DataFrame(ratings)), pd.DataFrame(metrics)


@pytest.fixture(scope="module")
def results():
    ratings, metrics = panel()
    return build_results(ratings, NO_SCREENING, metrics=check_metrics(metrics))


# --------------------------------------------------------------------------- the metrics table


def test_every_numeric_column_is_a_metric_and_a_text_column_is_not():
    _, metrics = panel(images=2)
    checked = check_metrics(metrics)
    assert list(checked.columns) == ["dataset", "image", "method", "psnr_y", "ssim_y", "lpips_alex", "niqe"]
    assert ag.metric_names(checked) == ["psnr_y", "ssim_y", "lpips_alex", "niqe"]
    metrics = metrics.astype({"niqe": object})
    metrics.loc[3, "niqe"] = "n/a"
    with pytest.raises(RatingsError, match=r"metrics:5: column 'niqe' is not a number: 'n/a'"):
        check_metrics(metrics)


def test_psnr_ssim_tables_do_not_change_with_extra_metrics():
    ratings, metrics = panel(images=3)
    plain = build_results(
        ratings, NO_SCREENING, metrics=check_metrics(metrics[["dataset", "image", "method", "psnr_y", "ssim_y"]])
    )
    extra = build_results(ratings, NO_SCREENING, metrics=check_metrics(metrics))
    assert to_csv_text(plain.table2) == to_csv_text(extra.table2)
    assert to_csv_text(plain.metric_correlation) == to_csv_text(extra.metric_correlation)
    assert (
        list(extra.table2.columns)[:4] == ["dataset", "method", "psnr_y", "ssim_y"] and "lpips_alex" not in extra.table2
    )
    assert set(extra.agreement.per_stimulus["metric"]) == {"psnr_y", "ssim_y", "lpips_alex", "niqe"}


# --------------------------------------------------------------------------- correlations against scipy


def stimuli_by_hand(results, metrics):
    """Per-image MOS beside the metrics, HR (infinite PSNR) left out: the units, built here without the module."""
    merged = results.mos_per_image.astype({"dataset": str, "image": str, "method": str}).merge(
        metrics, on=["dataset", "image", "method"]
    )
    return merged[np.isfinite(merged["psnr_y"])]


def test_correlations_are_scipys_at_both_levels(results):
    _, metrics = panel()
    stimuli = stimuli_by_hand(results, metrics)
    table = results.agreement.per_stimulus.set_index(["dataset", "metric"])
    assert len(stimuli) == 2 * 8 * 4  # four methods per image: HR left out
    for dataset, part in [("Set5", stimuli[stimuli["dataset"] == "Set5"]), ("all", stimuli)]:
        for metric in ("psnr_y", "lpips_alex", "niqe"):
            row = table.loc[(dataset, metric)]
            x, mos = part[metric].to_numpy(), part["mos"].to_numpy()
            assert row["n"] == len(part)
            assert row["srocc"] == pytest.approx(stats.spearmanr(x, mos)[0], abs=1e-12)
            assert row["krocc"] == pytest.approx(stats.kendalltau(x, mos)[0], abs=1e-12)
            prediction = ag.logistic4(x, row["b1"], row["b2"], row["b3"], row["b4"])
            assert row["fit"] == "logistic"
            assert row["plcc"] == pytest.approx(stats.pearsonr(prediction, mos)[0], abs=1e-9)
            assert row["rmse"] == pytest.approx(np.sqrt(np.mean((mos - prediction) ** 2)), abs=1e-9)
    # directions: lower-is-better metrics agree with a negative sign
    assert table.loc[("all", "lpips_alex"), "srocc"] < -0.8 and table.loc[("all", "lpips_alex"), "direction"] == "lower"
    assert table.loc[("all", "lpips_alex"), "agrees_as_expected"] and table.loc[("all", "psnr_y"), "agrees_as_expected"]
    # per method: mean MOS of each (dataset, method) against the metric's mean over its images
    means = stimuli.groupby(["dataset", "method"])[["mos", "lpips_alex"]].mean().reset_index()
    mos = results.mos.astype({"dataset": str, "method": str}).set_index(["dataset", "method"])["mos"]
    method_mos = mos.loc[list(zip(means["dataset"], means["method"]))].to_numpy()
    row = results.agreement.per_method.set_index(["dataset", "metric"]).loc[("all", "lpips_alex")]
    assert row["n"] == 8 and row["srocc"] == pytest.approx(stats.spearmanr(means["lpips_alex"], method_mos)[0])


def test_resample_statistics_equal_scipy_on_the_expanded_resample():
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=30), 1)  # ties on purpose
    mos = np.round(x + rng.normal(size=30))
    counts = ag.resample_counts(30, 6, seed=11)
    fit = ag.fit_logistic(x, mos)
    draws = ag.bootstrap_coefficients(x, mos, fit, counts)
    for k, weights in enumerate(counts.astype(int)):
        xs, ys = np.repeat(x, weights), np.repeat(mos, weights)
        assert draws["srocc"][k] == pytest.approx(stats.spearmanr(xs, ys)[0], abs=1e-12)
        assert draws["krocc"][k] == pytest.approx(stats.kendalltau(xs, ys)[0], abs=1e-12)
        assert draws["plcc"][k] == pytest.approx(stats.pearsonr(fit.predict(xs), ys)[0], abs=1e-12)


# --------------------------------------------------------------------------- the logistic fit


@pytest.mark.parametrize("params", [(4.5, 1.2, 27.0, 1.5), (1.3, 4.6, 0.3, 0.05)])
def test_the_logistic_fit_recovers_known_parameters(params):
    rng = np.random.default_rng(5)
    b1, b2, b3, b4 = params
    x = rng.uniform(b3 - 6 * b4, b3 + 6 * b4, 300)
    mos = ag.logistic4(x, *params) + rng.normal(0, 0.03, len(x))
    fit = ag.fit_logistic(x, mos)
    assert fit.kind == "logistic"
    assert fit.params == pytest.approx(params, rel=0.03, abs=0.02 * b4)


def test_a_fit_that_does_not_converge_falls_back_to_a_line_and_says_so(monkeypatch):
    def fails(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(optimize, "curve_fit", fails)
    x = np.arange(10.0)
    fit = ag.fit_logistic(x, 2 * x + 1)
    assert fit.kind == "linear: the logistic fit did not converge"
    assert fit.line == pytest.approx((2.0, 1.0)) and np.isnan(fit.params[0])
    ratings, metrics = panel(images=3, datasets=("Set5",))
    table = build_results(ratings, NO_SCREENING, metrics=check_metrics(metrics)).agreement.per_stimulus
    assert set(table["fit"]) == {"linear: the logistic fit did not converge"}
    assert table["plcc"].notna().all()


def test_too_few_points_for_the_logistic_use_a_line():
    fit = ag.fit_logistic([1.0, 2.0, 3.0, 4.0], [1.0, 2.5, 2.9, 4.1])
    assert fit.kind.startswith("linear: fewer than 6 points")
    assert fit.predict([5.0])[0] == pytest.approx(np.polyval(np.polyfit([1, 2, 3, 4], [1, 2.5, 2.9, 4.1], 1), 5))


# --------------------------------------------------------------------------- Williams' test


def test_williams_test_against_the_formula_worked_by_hand():
    # r12 = 0.7 (metric A with MOS), r13 = 0.5 (PSNR with MOS), r23 = 0.6 (A with PSNR), n = 30:
    # |R| = 1 - 0.49 - 0.25 - 0.36 + 2 * 0.7 * 0.5 * 0.6 = 0.32; rbar = 0.6; (1 - r23)^3 = 0.064
    # denominator = 2 * 29/27 * 0.32 + 0.36 * 0.064 = 0.687407 + 0.023040 = 0.710447
    # t = 0.2 * sqrt(29 * 1.6 / 0.710447) = 0.2 * sqrt(65.3110) = 0.2 * 8.08152 = 1.61630, df = 27
    t, p = ag.williams_test(0.7, 0.5, 0.6, 30)
    assert t == pytest.approx(1.61630, abs=1e-4)
    assert p == pytest.approx(0.1177, abs=5e-4)  # two-sided Student t, 27 df, at 1.6163
    assert ag.williams_test(0.5, 0.7, 0.6, 30)[0] == pytest.approx(-t)  # antisymmetric
    # a strongly correlated pair of metrics makes the same gap more significant
    assert ag.williams_test(0.7, 0.5, 0.9, 30)[1] < p


def test_identical_metrics_are_not_different():
    rng = np.random.default_rng(2)
    mos = rng.uniform(1, 5, 40)
    units = pd.DataFrame({"dataset": "s", "mos": mos, "psnr_y": mos + rng.normal(0, 1, 40)})
    units["copy"] = units["psnr_y"]
    williams, boot = ag.compare_with_reference(ag.GroupResamples(units, 200, 0), "copy")
    assert williams["statistic"] == 0 and williams["p_value"] == pytest.approx(1)
    assert boot["difference"] == 0 and boot["p_value"] == pytest.approx(1)
    # nearly identical: t near 0, p near 1
    units["near"] = units["psnr_y"] + rng.normal(0, 1e-3, 40)
    williams, _ = ag.compare_with_reference(ag.GroupResamples(units, 200, 0), "near")
    assert abs(williams["statistic"]) < 0.5 and williams["p_value"] > 0.6


# --------------------------------------------------------------------------- the bootstrap


def test_the_bootstrap_is_seeded_and_covers_the_estimate(results):
    ratings, metrics = panel()
    again = build_results(ratings, NO_SCREENING, metrics=check_metrics(metrics))
    assert to_csv_text(again.agreement.per_stimulus) == to_csv_text(results.agreement.per_stimulus)
    other = build_results(
        ratings, AnalysisOptions(screening=ScreeningOptions(rules=()), seed=1), metrics=check_metrics(metrics)
    )
    table, moved = results.agreement.per_stimulus, other.agreement.per_stimulus
    assert not np.allclose(table["srocc_ci95_low"], moved["srocc_ci95_low"])  # another seed, other resamples
    assert np.allclose(table["srocc"], moved["srocc"])  # ... and the same estimates
    for name in ("srocc", "krocc", "plcc"):
        assert (table[f"{name}_ci95_low"] <= table[name]).all() and (table[name] <= table[f"{name}_ci95_high"]).all()
        assert (table[f"{name}_ci95_high"] - table[f"{name}_ci95_low"] > 0.01).all()


def test_bootstrap_p_value_never_zero_and_two_sided():
    assert ag.bootstrap_p(np.full(999, 0.3)) == pytest.approx(2 / 1000)
    assert ag.bootstrap_p(np.r_[np.full(500, 1.0), np.full(500, -1.0)]) == pytest.approx(1.0)


# --------------------------------------------------------------------------- the summary and the files


def test_the_summary_names_the_best_metric_and_tests_it_against_psnr(results):
    summary = results.agreement.summary
    assert "lpips_alex (lower is better)" in summary
    tests = results.agreement.tests.set_index(["dataset", "metric", "test"])
    williams = tests.loc[("all", "lpips_alex", ag.WILLIAMS)]
    boot = tests.loc[("all", "lpips_alex", ag.BOOTSTRAP_SROCC)]
    assert williams["difference"] > 0 and williams["p_value"] < 0.05 and boot["ci95_low"] > 0
    assert f"p = {williams['p_value']:.3g}" in summary and "significantly better than PSNR by both tests" in summary
    # niqe is noise: not better than PSNR
    assert tests.loc[("all", "niqe", ag.BOOTSTRAP_SROCC), "difference"] < 0


def test_psnr_best_is_said_plainly():
    ratings, metrics = panel(images=4, datasets=("Set5",))
    metrics = metrics.drop(columns=["lpips_alex"]).assign(
        ssim_y=np.random.default_rng(9).uniform(0.5, 0.9, len(metrics))
    )
    summary = build_results(ratings, NO_SCREENING, metrics=check_metrics(metrics)).agreement.summary
    assert "psnr_y (higher is better)" in summary and "no metric agrees better than PSNR" in summary


def test_the_files_carry_the_tables_and_the_summary(results):
    files = render_files(results, figures=False)
    assert files["metric_agreement.csv"].decode().startswith("dataset,level,metric,direction,n,fit,srocc,")
    assert "all,method,lpips_alex,lower,8," in files["metric_agreement_per_method.csv"].decode()
    assert "all,lpips_alex,psnr_y,williams_plcc,64," in files["metric_agreement_tests.csv"].decode()
    summary = files["summary.md"].decode()
    assert "## Metric agreement with MOS" in summary and results.agreement.summary in summary


@pytest.mark.slow  # matplotlib and the whole analysis with figures
def test_the_command_line_writes_the_agreement_and_its_figure(tmp_path):
    ratings, metrics = panel(images=4)
    ratings[["dataset", "rater", "image", "method", "score"]].to_csv(tmp_path / "ratings.csv", index=False)
    metrics.to_csv(tmp_path / "metrics_per_image.csv", index=False)
    out = tmp_path / "out"
    code = main(
        [str(tmp_path / "ratings.csv"), "--metrics", str(tmp_path / "metrics_per_image.csv"), "--output-dir", str(out)]
    )
    assert code == 0
    table = pd.read_csv(out / "metric_agreement.csv")
    assert set(table["metric"]) == {"psnr_y", "ssim_y", "lpips_alex", "niqe"}
    assert (out / "figures/metric_agreement.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (out / "figures/metric_agreement.svg").read_bytes()[:500]


def test_a_metric_held_as_objects_with_gaps_is_still_a_metric():
    ratings, metrics = panel(images=3, datasets=("Set5",))
    metrics["dists"] = pd.Series([None if k % 5 == 0 else 0.5 - 0.01 * k for k in range(len(metrics))], dtype=object)
    table = build_results(ratings, NO_SCREENING, metrics=metrics).agreement.per_stimulus.set_index("metric")
    assert table.loc["dists", "direction"] == "lower"
    # 3 images x 5 methods in order nn..hr: HR rows (4, 9, 14) have infinite PSNR, the nn rows (0, 5, 10) no dists
    assert table.loc["dists", "n"] == 15 - 3 - 3


def test_directions():
    assert [ag.direction(m) for m in ("psnr_y", "ms_ssim", "gmsd", "lpips_vgg", "dists", "niqe", "mine")] == [
        "higher",
        "higher",
        "lower",
        "lower",
        "lower",
        "lower",
        "higher (assumed)",
    ]
    assert ag.direction_words("higher (assumed)") == "higher is better, assumed"
    assert ag.direction_words("lower") == "lower is better"


def test_the_command_line_names_a_bad_metric_cell_and_writes_nothing(tmp_path, capsys):
    ratings, metrics = panel(images=2, datasets=("Set5",))
    ratings[["dataset", "rater", "image", "method", "score"]].to_csv(tmp_path / "ratings.csv", index=False)
    metrics = metrics.astype({"lpips_alex": object})
    metrics.loc[6, "lpips_alex"] = "oops"
    metrics.to_csv(tmp_path / "metrics_per_image.csv", index=False)
    out = tmp_path / "out"
    args = [
        str(tmp_path / "ratings.csv"),
        "--metrics",
        str(tmp_path / "metrics_per_image.csv"),
        "--output-dir",
        str(out),
    ]
    assert main(args + ["--no-figures"]) == 2
    assert "metrics_per_image.csv:8: column 'lpips_alex' is not a number: 'oops'" in capsys.readouterr().err
    assert not out.exists()


# --------------------------------------------------------------------------- metrics with stand-in weights


@pytest.fixture(scope="module")
def stand_in_results():
    ratings, metrics = panel()
    return build_results(ratings, NO_SCREENING, metrics=check_metrics(metrics), stand_in_metrics={"lpips_alex"})


def test_a_stand_in_metric_is_marked_in_every_agreement_table(stand_in_results):
    files = render_files(stand_in_results, figures=False)
    for name in ("metric_agreement.csv", "metric_agreement_per_method.csv", "metric_agreement_tests.csv"):
        table = pd.read_csv(io.BytesIO(files[name]), keep_default_na=False)
        assert list(table.columns).index("weights") == list(table.columns).index("metric") + 1, name
        weights = table.groupby("metric")["weights"].agg(set).to_dict()
        assert weights.pop("lpips_alex") == {"stand-in"}, name
        assert all(marks == {""} for marks in weights.values()), name


def test_the_summary_never_names_a_stand_in_metric_best_without_its_mark(stand_in_results):
    summary = stand_in_results.agreement.summary
    assert "): lpips_alex\u2020 (lower is better)" in summary and "lpips_alex (" not in summary
    assert summary.endswith(" \u2020 stand-in weights: not the published metric.")
    markdown = render_files(stand_in_results, figures=False)["summary.md"].decode()
    section = markdown[markdown.index("## Metric agreement with MOS") :]
    assert summary in section and section.count("| lpips_alex\u2020 |") == 6  # 3 groups x 2 levels
    assert section.count("| all | lpips_alex\u2020 | lower |") == 2  # per stimulus and per method
    assert "| lpips_alex |" not in section and "| all | niqe | lower |" in section
    assert "\u2020 stand-in weights: not the published metric (lpips_alex: computed with stand-in" in section


def test_the_figure_panel_of_a_stand_in_metric_has_the_dagger(stand_in_results):
    from mos_study.analysis.figures import agreement_panel_title

    agreement = stand_in_results.agreement
    pooled = agreement.per_stimulus[agreement.per_stimulus["dataset"] == "all"].set_index("metric")
    titles = {m: agreement_panel_title(m, pooled.loc[m], agreement.fits[m], agreement.stand_ins) for m in pooled.index}
    assert titles["lpips_alex"].startswith("lpips_alex\u2020 (lower is better)\nSROCC ")
    assert titles["niqe"].startswith("niqe (lower is better)") and "\u2020" not in titles["psnr_y"]


def test_without_stand_in_metrics_the_files_are_unchanged(results):
    ratings, metrics = panel()
    absent = build_results(ratings, NO_SCREENING, metrics=check_metrics(metrics), stand_in_metrics={"dists_vgg"})
    files, plain = render_files(absent, figures=False), render_files(results, figures=False)
    assert absent.agreement.stand_ins == frozenset()
    assert {n: d for n, d in files.items() if n != "export.json"} == {
        n: d for n, d in plain.items() if n != "export.json"
    }
    assert b"weights" not in files["metric_agreement.csv"].split(b"\n")[0]
    assert "\u2020" not in files["summary.md"].decode()


def test_the_command_line_reads_the_metric_provenance_beside_the_metrics(tmp_path):
    ratings, metrics = panel(images=3)
    ratings[["dataset", "rater", "image", "method", "score"]].to_csv(tmp_path / "ratings.csv", index=False)
    metrics.to_csv(tmp_path / "metrics_per_image.csv", index=False)
    args = [str(tmp_path / "ratings.csv"), "--metrics", str(tmp_path / "metrics_per_image.csv"), "--no-figures"]
    assert main([*args, "--output-dir", str(tmp_path / "plain")]) == 0
    (tmp_path / "metric_provenance.csv").write_text(
        "metric,kind,higher_is_better,convention,weights_note,source,paper\n"
        "lpips_alex,full-reference,False,rgb01,stand-in,lpips,Zhang 2018\n"
        "niqe,no-reference,False,y-integer,,niqe,Mittal 2013\n"
    )
    assert main([*args, "--output-dir", str(tmp_path / "marked")]) == 0
    table = pd.read_csv(tmp_path / "marked/metric_agreement.csv", keep_default_na=False).set_index("metric")
    assert table.loc["lpips_alex", "weights"].tolist() == ["stand-in"] * 3 and set(table.loc["niqe", "weights"]) == {""}
    assert "lpips_alex\u2020" in (tmp_path / "marked/summary.md").read_text()
    assert "weights" not in pd.read_csv(tmp_path / "plain/metric_agreement.csv").columns


def test_a_metric_provenance_without_its_columns_is_named(tmp_path, capsys):
    ratings, metrics = panel(images=2, datasets=("Set5",))
    ratings[["dataset", "rater", "image", "method", "score"]].to_csv(tmp_path / "ratings.csv", index=False)
    metrics.to_csv(tmp_path / "metrics_per_image.csv", index=False)
    (tmp_path / "other.csv").write_text("method,learned\nnn,false\n")
    argv = [str(tmp_path / "ratings.csv"), "--metrics", str(tmp_path / "metrics_per_image.csv"), "--no-figures"]
    argv += ["--metric-provenance", str(tmp_path / "other.csv"), "--output-dir", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "other.csv:1: no 'metric' and 'weights_note' columns" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
