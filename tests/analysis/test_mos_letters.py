"""Compact letter display of the primary test and the MOS-with-letters figure (issue 15)."""

import numpy as np
import pandas as pd
import pytest

from mos_study.analysis import AnalysisOptions, build_results, prepare_ratings
from mos_study.analysis.export import render_files
from mos_study.analysis.figures import compact_letters, mos_letters, mos_letters_figure, primary_significant_pairs


def test_no_significant_pair_gives_every_method_one_letter():
    assert compact_letters(["a", "b", "c"], []) == {"a": "a", "b": "a", "c": "a"}


def test_all_pairs_significant_gives_each_method_its_own_letter():
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    assert compact_letters(["a", "b", "c"], pairs) == {"a": "a", "b": "b", "c": "c"}


def test_non_transitive_a_like_b_like_c_but_a_differs_from_c():
    assert compact_letters(["a", "b", "c"], [("a", "c")]) == {"a": "a", "b": "ab", "c": "b"}
    assert compact_letters(["a", "b", "c"], [("c", "a")]) == {"a": "a", "b": "ab", "c": "b"}  # either direction


def test_two_groups_and_a_chain_letters_in_display_order():
    assert compact_letters(["w", "x", "y", "z"], [("w", "y"), ("w", "z"), ("x", "y"), ("x", "z")]) == {
        "w": "a",
        "x": "a",
        "y": "b",
        "z": "b",
    }
    chain = compact_letters(["a", "b", "c", "d"], [("b", "d"), ("a", "c"), ("a", "d")])
    assert chain == {"a": "a", "b": "ab", "c": "bc", "d": "c"}


def test_letters_agree_with_the_pairs_on_every_pair():
    rng = np.random.default_rng(3)
    methods = [f"m{k}" for k in range(7)]
    for _ in range(50):
        pairs = [(a, b) for i, a in enumerate(methods) for b in methods[i + 1 :] if rng.random() < 0.4]
        letters = compact_letters(methods, pairs)
        different = {frozenset(p) for p in pairs}
        for i, a in enumerate(methods):
            assert letters[a]
            for b in methods[i + 1 :]:
                assert bool(set(letters[a]) & set(letters[b])) == (frozenset((a, b)) not in different), (pairs, a, b)


def test_unknown_methods_in_pairs_are_ignored_and_no_methods_is_empty():
    assert compact_letters(["a", "b"], [("a", "zz")]) == {"a": "a", "b": "a"}
    assert compact_letters([], []) == {}


QUALITY = {"hr": 4.6, "mine": 3.0, "bicubic": 2.2, "nn": 2.15}  # nn and bicubic too close to tell apart


@pytest.fixture(scope="module")
def results():
    rng = np.random.default_rng(0)
    rows = [
        (dataset, f"r{rater}", f"img{image}", method, int(np.clip(round(q + rng.normal(0, 0.4)), 1, 5)))
        for dataset in ("BSD100", "Set5")
        for image in range(8)
        for method, q in QUALITY.items()
        for rater in range(5)
    ]
    ratings = prepare_ratings(pd.DataFrame(rows, columns=["dataset", "rater", "image", "method", "score"]))
    return build_results(ratings, AnalysisOptions(subjective_model="none"))


def test_letters_come_from_the_primary_tests_rows_in_the_papers_order(results):
    table = mos_letters(results)
    assert list(table["dataset"]) == ["Set5"] * 4 + ["BSD100"] * 4
    assert list(table["method"])[:4] == ["nn", "bicubic", "hr", "mine"]
    significance = results.significance
    for dataset, part in table.groupby("dataset"):
        letters = dict(zip(part["method"], part["letters"]))
        primary = significance[(significance["dataset"] == dataset) & (significance["role"] == "primary")]
        assert len(primary) == 6
        for row in primary.itertuples():
            share = bool(set(letters[row.method_a]) & set(letters[row.method_b]))
            assert share == (not row.significant), (dataset, row.method_a, row.method_b)
        assert letters["nn"] == letters["bicubic"] == "a"  # not different
        assert primary_significant_pairs(significance, dataset)  # the others are


def test_the_paper_test_does_not_set_the_letters(results):
    only_paper = results.significance.assign(
        significant=lambda t: t["role"] != "primary"
    )  # every Mann-Whitney row significant, no Wilcoxon row
    assert primary_significant_pairs(only_paper, "Set5") == []


def test_the_figure_is_rendered_and_exported(results):
    svg, png = mos_letters_figure(results, "svg"), mos_letters_figure(results, "png")
    assert svg.startswith(b"<?xml") and png[:4] == b"\x89PNG"
    assert mos_letters_figure(results, "svg") == svg  # deterministic
    files = render_files(results, figures=True)
    assert files["figures/mos_letters.svg"] == svg and files["figures/mos_letters.png"] == png
    assert not any(name.startswith("figures/") for name in render_files(results, figures=False))
