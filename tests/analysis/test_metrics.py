"""Metric correlations and the Table 2 exports, by hand on tests/analysis/data/small_*.csv."""

import pytest

from mos_study.analysis import AnalysisOptions, ScreeningOptions, build_results, read_metrics, read_ratings
from mos_study.analysis.metrics import table2_latex, table2_markdown


@pytest.fixture
def results(repo_root):
    data = repo_root / "tests/analysis/data"
    options = AnalysisOptions(screening=ScreeningOptions(rules=()))
    return build_results(
        read_ratings(data / "small_ratings.csv"), options, metrics=read_metrics(data / "small_metrics.csv")
    )


def test_correlation_over_stimuli_and_methods(results):
    table = results.metric_correlation.set_index(["dataset", "level", "metric"])
    assert list(results.metric_correlation.columns) == [
        "dataset",
        "level",
        "metric",
        "n",
        "pearson",
        "spearman",
        "kendall",
    ]
    # per-image MOS 2, 4, 4, 5 against PSNR 20, 24, 24, 26: PSNR = 2 MOS + 16 exactly
    row = table.loc[("set", "stimulus", "psnr_y")]
    assert (
        row.n == 4
        and row.pearson == pytest.approx(1)
        and row.spearman == pytest.approx(1)
        and row.kendall == pytest.approx(1)
    )
    # methods: two points only -> no coefficient
    assert table.loc[("set", "method", "psnr_y")].n == 2
    assert table.loc[("set", "method", "psnr_y")][["pearson", "spearman", "kendall"]].isna().all()


def test_table2_by_hand(results):
    table = results.table2.set_index("method")
    assert table.loc["A", "psnr_y"] == 22.0 and table.loc["A", "ssim_y"] == pytest.approx(0.6)
    assert table.loc["A", "mos"] == pytest.approx(2.8) and table.loc["B", "mos"] == pytest.approx(4.4)
    markdown = table2_markdown(results.table2)
    assert "| dataset | measure | A | B |" in markdown
    assert "| set | PSNR | 22.00 | 25.00 |" in markdown and "| set | MOS | 2.80 | 4.40 |" in markdown
    latex = table2_latex(results.table2)
    assert r"set & SSIM & 0.6000 & 0.7500 \\" in latex and latex.startswith(r"\begin{tabular}{llcc}")
