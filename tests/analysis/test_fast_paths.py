"""The vectorised analysis (issue 17: 1.2 million ratings in seconds) gives what the previous implementation gave.

Each ``slow_*`` function below is the implementation the fast path replaced, kept verbatim as the reference; the
tests run both on random, untidy tables (blanks around keys, empty and "nan" cells, mixed-case kinds, calibration,
gold and repeated rows, raters who only calibrated) and require equal frames, equal bytes of every file.
"""

import hashlib
import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mos_study.analysis import AnalysisOptions, build_results, prepare_ratings, read_ratings, render_files
from mos_study.analysis import figures, ratings as ratings_module, results as results_module
from mos_study.analysis.figures import score_counts
from mos_study.analysis.ratings import KINDS, RatingsError
from mos_study.analysis.ratings import test_rows as trial_rows
from mos_study.analysis.results import KEYS, sort_ratings
from mos_study.analysis.significance import COLUMNS, ROLES, TEST_ORDER, _wilcoxon, holm, mann_whitney, significance
from mos_study.analysis.order import methods_in_order, paper_sort
from mos_study.analysis.subjective_model import fit_p910

METHODS = ["nn", "bicubic", "srresnet-mse", "srgan-vgg54", "hr", "mine"]


def untidy_table(seed, n=3000):
    """A raw table as a CSV reader gives it: every cell text, some with blanks, some empty."""
    rng = np.random.default_rng(seed)
    rater = rng.integers(0, 40, n)
    image = rng.integers(0, 25, n)
    method = rng.integers(0, len(METHODS), n)
    score = np.clip(np.rint(1 + method * 0.7 + rng.normal(0, 1, n)), 1, 5)
    kind = rng.choice(["trial", " Trial", "repeat", "calibration", "gold", ""], n, p=[0.6, 0.1, 0.1, 0.08, 0.07, 0.05])
    frame = pd.DataFrame(
        {
            "dataset": np.where(image < 12, "Set14", " BSD100"),
            "rater": [f" r{r}" if r % 7 == 0 else f"r{r}" for r in rater],
            "image": [f"img{i:03d}" for i in image],
            "method": [METHODS[m] + (" " if m == 2 else "") for m in method],
            "score": [f"{s:g}" if k % 9 else f" {s:g} " for k, s in enumerate(score)],
            "kind": kind,
            "expected_score": np.where(np.isin(kind, ["gold", "calibration"]), np.where(method < 3, "1", "5"), ""),
            "response_ms": np.where(rng.random(n) < 0.05, "", rng.gamma(4.0, 400.0, n).round(1).astype(str)),
            "trial": np.arange(n).astype(str),
            "repetition": np.where(kind == "repeat", "1", np.where(rng.random(n) < 0.1, "nan", "0")),
            "session": [f" s{r}" for r in rater],
        }
    )
    frame.loc[frame.index % 11 == 0, "response_ms"] = "nan"
    # A rater who only calibrated: a category that test rows never use.
    frame.loc[n - 5 :, ["rater", "kind"]] = ["calibrator", "calibration"]
    return frame


# --------------------------------------------------------------------------- the previous implementations


def slow_prepare_ratings(frame, *, source="ratings", scale=(1, 5)):
    frame = frame.copy()
    if "line" not in frame.columns:
        frame["line"] = np.arange(len(frame)) + 2
    for key in ("dataset", "rater", "image", "method"):
        frame[key] = frame[key].astype(str).str.strip()
    frame["score"] = slow_numbers(frame, "score")
    frame["kind"] = slow_kinds(frame)
    for name in ("expected_score", "trial", "repetition", "response_ms"):
        frame[name] = slow_numbers(frame, name) if name in frame.columns else np.nan
    for name in ("session", "timestamp"):
        frame[name] = frame[name].astype(str).str.strip() if name in frame.columns else ""
    return frame[list(ratings_module.CANONICAL)].reset_index(drop=True)


def slow_numbers(frame, column):
    text = frame[column].astype(str).str.strip()
    values = pd.to_numeric(text.replace("", np.nan), errors="coerce")
    assert not (values.isna() & (text != "") & (text.str.lower() != "nan") | np.isinf(values)).any()
    return values.astype(float)


def slow_kinds(frame):
    if "kind" not in frame.columns:
        return pd.Series("trial", index=frame.index)
    given = frame["kind"].astype(str).str.strip().str.lower()
    assert given.isin(KINDS + ("",)).all()
    return given.where(given != "", "trial")


def slow_significance(ratings, mos_per_image, alpha=0.05):
    rows = []
    ratings = ratings.astype({"dataset": str, "method": str})
    mos_per_image = mos_per_image.astype({"dataset": str, "image": str, "method": str})
    for dataset, per_image in mos_per_image.groupby("dataset", sort=True):
        wide = per_image.pivot(index="image", columns="method", values="mos")
        scores = ratings[ratings["dataset"] == dataset].groupby("method")["score"]
        for a, b in itertools.combinations(methods_in_order(wide.columns), 2):
            paired = wide[[a, b]].dropna()
            rows.append([dataset, a, b, "wilcoxon", *_wilcoxon(paired[a], paired[b]), len(paired), len(paired)])
            xa, xb = scores.get_group(a).to_numpy(), scores.get_group(b).to_numpy()
            test = stats.mannwhitneyu(xa, xb, alternative="two-sided")
            rows.append([dataset, a, b, "mannwhitney", float(test.statistic), float(test.pvalue), len(xa), len(xb)])
    table = pd.DataFrame(
        rows, columns=["dataset", "method_a", "method_b", "test", "statistic", "p_value", "n_a", "n_b"]
    )
    table["p_holm"] = np.nan
    for _, index in table.groupby(["dataset", "test"]).groups.items():
        table.loc[index, "p_holm"] = holm(table.loc[index, "p_value"])
    table["significant"] = table["p_holm"] < alpha
    table["role"] = table["test"].map(ROLES)
    table["test_order"] = table["test"].map(TEST_ORDER)
    return paper_sort(table, ["dataset", "test_order", "method_a", "method_b"])[COLUMNS]


def slow_indices(ratings):
    """How the P.910 fit numbered stimuli and raters before: a MultiIndex lookup and np.unique of the names."""
    stimulus = ["dataset", "image", "method"]
    stimulus_keys = ratings[stimulus].drop_duplicates().sort_values(stimulus).reset_index(drop=True)
    j = pd.MultiIndex.from_frame(stimulus_keys).get_indexer(pd.MultiIndex.from_frame(ratings[stimulus]))
    rater_names, i = np.unique(ratings["rater"].to_numpy(dtype=str), return_inverse=True)
    return stimulus_keys, j, rater_names, i


def slow_score_counts(kept, levels, n_levels, dataset):
    part = kept[kept["dataset"].astype(str) == dataset]
    return pd.crosstab(part["method"].astype(str), levels[part.index]).reindex(columns=range(n_levels), fill_value=0)


def slow_input_sha256(results):
    canonical = results.ratings.drop(columns="line").astype({key: str for key in KEYS})
    return hashlib.sha256(pd.util.hash_pandas_object(canonical, index=False).to_numpy().tobytes()).hexdigest()


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prepare_ratings_equals_the_previous_parsing(seed):
    raw = untidy_table(seed)
    pd.testing.assert_frame_equal(prepare_ratings(raw), slow_prepare_ratings(raw))


def test_prepare_ratings_keeps_numbers_given_as_numbers():
    raw = pd.DataFrame({"rater": ["a", "b"], "image": [1, 2], "method": ["m", "m"], "dataset": ["d", "d"]})
    raw["score"], raw["response_ms"] = [3, 4.5], [800, 1200.0]
    pd.testing.assert_frame_equal(prepare_ratings(raw), slow_prepare_ratings(raw))
    raw["response_ms"] = [np.nan, 1200.0]  # a missing number given as NaN is missing (it failed before)
    assert prepare_ratings(raw)["response_ms"].isna().tolist() == [True, False]


@pytest.mark.parametrize(
    "cell, message",
    [
        (" three ", "'score' is not a number: 'three'"),
        ("inf", "'score' is not a number: 'inf'"),
        (" ", "'score' is empty"),
    ],
)
def test_bad_numbers_still_name_the_line(cell, message):
    raw = untidy_table(0, n=50)
    raw.loc[7, "score"] = cell
    with pytest.raises(RatingsError, match=f"ratings:9: column {message}"):
        prepare_ratings(raw)


def text_read(path):
    """How read_ratings read a file before: every cell as text."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_read_ratings_equals_reading_every_cell_as_text(seed, tmp_path):
    """Untidy cells (blanks, empty, "nan": read again as text) and clean full-precision numbers (parsed by the CSV
    reader): the same table, to the bit."""
    untidy, clean = tmp_path / "untidy.csv", tmp_path / "clean.csv"
    untidy_table(seed).to_csv(untidy, index=False)
    rng = np.random.default_rng(seed)
    table = slow_prepare_ratings(untidy_table(seed)).drop(columns="line")
    table["response_ms"] = rng.gamma(4.0, 600.0, len(table))  # 17 significant digits
    table["expected_score"] = np.nan  # an empty column
    table.to_csv(clean, index=False)
    for path in (untidy, clean):
        fast = read_ratings(path)
        pd.testing.assert_frame_equal(fast, slow_prepare_ratings(text_read(path)))
    assert (
        fast["response_ms"].to_numpy().view(np.int64).tolist()
        == table["response_ms"].to_numpy().view(np.int64).tolist()
    )


@pytest.mark.parametrize(
    "column, cell, message",
    [
        ("score", "three", "'score' is not a number: 'three'"),
        ("score", "Infinity", "'score' is not a number: 'Infinity'"),
        ("score", "True", "'score' is not a number: 'True'"),
        ("response_ms", "-inf", "'response_ms' is not a number: '-inf'"),
        ("trial", "first", "'trial' is not a number: 'first'"),
    ],
)
def test_a_bad_number_in_a_file_names_its_line_and_text(column, cell, message, tmp_path):
    path = tmp_path / "ratings.csv"
    table = slow_prepare_ratings(untidy_table(0, n=50)).drop(columns="line").astype({column: object})
    table.loc[7, column] = cell
    table.to_csv(path, index=False)
    with pytest.raises(RatingsError, match=f"ratings.csv:9: column {message}"):
        read_ratings(path)


@pytest.mark.parametrize("seed", [0, 1])
def test_significance_equals_the_previous_loop(seed):
    trials = trial_rows(sort_ratings(prepare_ratings(untidy_table(seed))))
    mos_per_image = build_results(prepare_ratings(untidy_table(seed))).mos_per_image_all_raters
    fast, slow = significance(trials, mos_per_image), slow_significance(trials, mos_per_image)
    assert len(fast) > 20
    pd.testing.assert_frame_equal(fast, slow)


@pytest.mark.parametrize("as_text", [False, True])
def test_p910_numbers_stimuli_and_raters_as_before(as_text, monkeypatch):
    trials = trial_rows(sort_ratings(prepare_ratings(untidy_table(3))))
    if as_text:  # plain strings, as a caller outside build_results may pass
        trials = trials.astype({key: str for key in KEYS})
    fast = fit_p910(trials)
    keys, j, names, i = slow_indices(trials)
    monkeypatch.setattr(
        "mos_study.analysis.subjective_model.stimulus_codes", lambda ratings: (slow_indices(ratings)[0], j)
    )
    monkeypatch.setattr("mos_study.analysis.subjective_model.rater_codes", lambda rater: (names, i))
    slow = fit_p910(trials)
    assert "calibrator" not in set(fast[1]["rater"])  # a category without test rows is not a rater of the model
    pd.testing.assert_frame_equal(fast[0], slow[0])
    pd.testing.assert_frame_equal(fast[1], slow[1])
    assert fast[2] == slow[2]


def test_score_counts_equal_crosstab():
    kept = trial_rows(sort_ratings(prepare_ratings(untidy_table(4))))
    levels = (kept["score"].to_numpy() - 1).astype(int)
    lookup = np.full(kept.index.max() + 1, -1)
    lookup[kept.index] = levels
    fast = score_counts(kept, levels, 5)
    assert sorted(fast) == ["BSD100", "Set14"]
    for dataset, table in fast.items():
        slow = slow_score_counts(kept, lookup, 5, dataset)
        np.testing.assert_array_equal(table.to_numpy(), slow.to_numpy())
        assert list(table.index) == list(slow.index)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [5, 6])
def test_every_file_equals_the_previous_implementation(seed, monkeypatch):
    """The whole analysis, then the same with each replaced function swapped back for its slow reference."""
    raw = untidy_table(seed)
    options = AnalysisOptions()
    fast_results = build_results(prepare_ratings(raw), options)
    fast = render_files(fast_results, figures=True)
    assert fast_results.input_sha256 == slow_input_sha256(fast_results)
    monkeypatch.setattr(results_module, "significance", slow_significance)
    monkeypatch.setattr("mos_study.analysis.subjective_model.stimulus_codes", lambda r: slow_indices(r)[:2])
    monkeypatch.setattr("mos_study.analysis.subjective_model.rater_codes", lambda rater: slow_indices_raters(rater))
    monkeypatch.setattr(results_module.Results, "input_sha256", property(slow_input_sha256))
    monkeypatch.setattr(
        figures,
        "score_counts",
        lambda kept, levels, n: {
            str(d): slow_score_counts(kept, pd_lookup(kept, levels), n, str(d)) for d in kept["dataset"].unique()
        },
    )
    slow = render_files(build_results(slow_prepare_ratings(raw), options), figures=True)
    assert sorted(fast) == sorted(slow)
    for name in fast:
        assert fast[name] == slow[name], name


def slow_indices_raters(rater):
    return np.unique(rater.to_numpy(dtype=str), return_inverse=True)


def pd_lookup(kept, levels):
    lookup = np.full(kept.index.max() + 1, -1)
    lookup[kept.index.to_numpy()] = levels
    return lookup


def test_mann_whitney_from_counts_equals_scipy():
    """Integer scores with ties, continuous scores (after bias removal), and small samples without ties."""
    rng = np.random.default_rng(7)
    cases = []
    for _ in range(40):
        n1, n2 = rng.integers(1, 400, 2)
        cases.append((rng.integers(1, 6, n1).astype(float), rng.integers(1, 6, n2).astype(float)))
        cases.append((rng.normal(3, 1, n1).round(rng.integers(1, 4)), rng.normal(3.2, 1, n2).round(2)))
    cases += [(rng.permutation(10)[:k].astype(float), rng.permutation(10)[k:].astype(float) + 0.5) for k in (3, 5)]
    for xa, xb in cases:
        distinct = np.unique(np.concatenate([xa, xb]))
        counts = [np.bincount(np.searchsorted(distinct, x), minlength=len(distinct)) for x in (xa, xb)]
        expected = stats.mannwhitneyu(xa, xb, alternative="two-sided")
        assert mann_whitney(*counts, xa, xb) == (float(expected.statistic), float(expected.pvalue))


def test_each_figure_built_once_gives_the_bytes_of_one_drawn_per_format():
    """render_files builds each figure once and saves it as SVG, then PNG: each file must be the file of a figure
    drawn for that format alone (the layout engine starts from the positions the previous save left)."""
    ratings = prepare_ratings(untidy_table(9))  # a table whose mos_letters and metric_agreement PNGs differed
    stimuli = ratings[["dataset", "image", "method"]].drop_duplicates()
    rng = np.random.default_rng(9)
    metrics = stimuli.assign(
        psnr_y=rng.uniform(20, 32, len(stimuli)),
        ssim_y=rng.uniform(0.5, 0.95, len(stimuli)),
        lpips_alex=rng.uniform(0.05, 0.5, len(stimuli)),
    )
    results = build_results(ratings, metrics=metrics.reset_index(drop=True))
    files = render_files(results, figures=True)
    assert {f"figures/{name}.{fmt}" for name in figures.FIGURES for fmt in figures.FORMATS} <= set(files)
    for name, make in figures.FIGURES.items():
        for fmt in figures.FORMATS:
            assert files[f"figures/{name}.{fmt}"] == make(results, fmt), (name, fmt)


def test_the_callers_tables_are_left_as_they_were():
    """prepare_ratings and sort_ratings copy shallowly (copy-on-write): the caller's frames must not change."""
    raw = untidy_table(2)
    before = raw.copy()
    ratings = prepare_ratings(raw)
    pd.testing.assert_frame_equal(raw, before)
    canonical = ratings.copy()
    build_results(ratings, AnalysisOptions(keep_screened=True))
    pd.testing.assert_frame_equal(ratings, canonical)
