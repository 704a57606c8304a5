"""``sampling.next_pairs``: valid pairs, the designs' properties, bad input, and the seeded simulation in which active
sampling must need clearly fewer comparisons than random sampling (``perf.pairwise_sampling --quick``)."""

import re
import subprocess
import sys

import numpy as np
import pytest

from mos_study.analysis.pairwise.sampling import DESIGNS, information_gain, next_pairs
from mos_study.analysis.pairwise.simulation import run_design
from mos_study.analysis.ratings import RatingsError


def connected(n, pairs):
    reached, frontier = {0}, [0]
    while frontier:
        node = frontier.pop()
        for i, j in pairs:
            for a, b in ((i, j), (j, i)):
                if a == node and b not in reached:
                    reached.add(b)
                    frontier.append(b)
    return len(reached) == n


@pytest.mark.parametrize("design", DESIGNS)
def test_pairs_are_valid(design):
    wins = np.random.default_rng(0).integers(0, 4, (6, 6)).astype(float)
    np.fill_diagonal(wins, 0)
    pairs = next_pairs(["a", "b", "c", "d", "e", "f"], wins, 12, design=design, rng=1)
    assert len(pairs) == 12
    assert all(0 <= i < 6 and 0 <= j < 6 and i != j for i, j in pairs)
    assert all(isinstance(i, int) and isinstance(j, int) for i, j in pairs)


def test_seeded_calls_repeat():
    wins = np.zeros((5, 5))
    assert next_pairs(5, wins, 4, rng=3) == next_pairs(5, wins, 4, rng=3)


def test_active_batch_is_a_spanning_tree():
    pairs = next_pairs(8, np.zeros((8, 8)), 7, design="active", rng=0)
    assert len({tuple(sorted(p)) for p in pairs}) == 7
    assert connected(8, pairs)
    larger = next_pairs(8, np.zeros((8, 8)), 14, design="active", rng=0)
    assert len({tuple(sorted(p)) for p in larger}) == 14  # a second tree of pairs not chosen yet


def test_full_design_is_balanced():
    n, wins = 5, np.zeros((5, 5))
    for _ in range(3):
        for i, j in next_pairs(n, wins, 10, design="full", rng=2):
            wins[i, j] += 1
    counts = (wins + wins.T)[np.triu_indices(n, 1)]
    assert counts.tolist() == [3.0] * 10


def test_information_gain_prefers_close_and_uncertain_pairs():
    mean = np.array([0.0, 0.1, 3.0, 0.0])
    covariance = np.diag([0.1, 0.1, 0.1, 2.0])
    gain = information_gain(mean, covariance)
    assert gain[0, 1] > gain[0, 2]  # close beats far (an almost certain outcome)
    assert gain[0, 3] > gain[0, 1]  # poorly known beats well known
    assert np.allclose(gain, gain.T) and (np.diag(gain) == 0).all()
    assert gain.min() >= 0 and gain.max() > 0


def test_active_spends_comparisons_on_close_pairs_not_settled_ones():
    """Conditions 0 and 1 are close and little compared; 2 is far above both and settled by many answers."""
    wins = np.array([[0, 1, 0], [1, 0, 0], [40, 40, 0]], dtype=float)
    pairs = next_pairs(3, wins, 1, design="active", rng=0)
    assert sorted(pairs[0]) == [0, 1]


@pytest.mark.parametrize(
    "args, problem",
    [
        ((3, np.zeros((2, 2)), 1), "3 x 3 matrix"),
        ((2, np.array([[0, -1], [0, 0.0]]), 1), "counts of 0 or more"),
        ((2, np.zeros((2, 2)), 1.5), "whole number"),
    ],
)
def test_bad_input_is_a_clear_error(args, problem):
    with pytest.raises(RatingsError, match=problem):
        next_pairs(*args)
    with pytest.raises(RatingsError, match="unknown sampling design"):
        next_pairs(2, np.zeros((2, 2)), 1, design="adaptive")


def test_no_pairs_asked_or_possible():
    assert next_pairs(4, np.zeros((4, 4)), 0) == []
    assert next_pairs(1, np.zeros((1, 1)), 3) == []


def test_active_needs_clearly_fewer_comparisons_than_random():
    """A small seeded simulation: 8 conditions over 4 JOD, 4 studies of 420 comparisons each."""
    options = dict(n_conditions=8, spread=4.0, budget=420, repeats=4, seed=0)
    active, random = run_design("active", **options), run_design("random", **options)
    assert active.needed(0.3) < 0.8 * random.needed(0.3)
    assert active.rmse.mean(axis=0)[-1] < random.rmse.mean(axis=0)[-1]


def test_active_needs_fewer_comparisons_than_random_with_20_conditions():
    """20 conditions over 4 JOD (neighbours about 0.2 JOD apart), 8 studies of 760 comparisons: with ASAP's
    information gain of the pair's difference alone, active sampling never reached 0.3 JOD here (random: 649)."""
    options = dict(n_conditions=20, spread=4.0, budget=760, repeats=8, seed=0)
    active, random = run_design("active", **options), run_design("random", **options)
    assert active.needed(0.3) < 0.95 * random.needed(0.3)
    assert active.rmse.mean(axis=0)[-1] < random.rmse.mean(axis=0)[-1]


@pytest.mark.slow
def test_benchmark_quick_run_prints_the_table(repo_root):
    run = subprocess.run(
        [sys.executable, "-m", "perf.pairwise_sampling", "--quick"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    rows = {line.split()[0]: line.split()[1:] for line in run.stdout.splitlines() if line.split()}
    assert set(DESIGNS) <= set(rows)
    assert float(rows["active/random"][0]) < 0.8
    assert re.search(r"next_pairs, active, 8 conditions, 7 pairs: [\d.]+ ms", run.stdout)
    assert "GFLOP/s" in run.stdout
