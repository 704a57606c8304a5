"""The results job gives the analysis the ratings records as a table (``exports.ratings_table``) instead of turning
every cell into text and parsing it back: the canonical table must be the one the text gave, bad cells told alike."""

import datetime

import numpy as np
import pandas as pd
import pytest

from mos_study.analysis import RatingsError, prepare_ratings
from mos_study.rating_columns import RATING_COLUMNS
from mos_study.services.exports import ratings_table


def records(n=500, seed=0):
    """Rows as ``rating_table.rating_records`` yields them: ints, "" where a number is missing, text keys."""
    rng = np.random.default_rng(seed)
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    kinds = rng.choice(["trial", "repeat", "calibration", "gold"], n, p=[0.8, 0.1, 0.05, 0.05])
    return [
        {
            "rating_id": k + 1,
            "dataset": "Set14" if k % 3 else "BSD100",
            "rater": f"P{k % 17}" if k % 5 else f"rater-{k % 17}",
            "image": f"img{k % 23:03d}",
            "method": ["nn", "bicubic", "srgan-vgg54", "hr"][k % 4],
            "score": int(rng.integers(1, 6)),
            "kind": str(kinds[k]),
            "expected_score": int(rng.choice([1, 5])) if kinds[k] in ("calibration", "gold") else "",
            "session": k // 40 + 1,
            "trial": k % 40,
            "repetition": 1 if kinds[k] == "repeat" else 0,
            "response_ms": "" if k % 13 == 0 else int(rng.integers(200, 9000)),
            "timestamp": (start + datetime.timedelta(seconds=7 * k)).isoformat(),
            "completion_code": "C0DE",
        }
        for k in range(n)
    ]


def through_text(rows):
    """How build_export made the table before."""
    return pd.DataFrame(rows, columns=RATING_COLUMNS).astype(str)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_table_of_the_records_is_the_table_of_their_text(seed):
    rows = records(seed=seed)
    table = prepare_ratings(ratings_table(rows), source="study s")
    assert table["response_ms"].isna().sum() == len(rows[::13])
    assert table["expected_score"].notna().sum() > 0
    pd.testing.assert_frame_equal(table, prepare_ratings(through_text(rows), source="study s"))


@pytest.mark.parametrize("column, value", [("response_ms", "fast"), ("score", 9), ("score", "")])
def test_a_bad_record_is_reported_as_its_text_was(column, value):
    rows = records(n=60)
    rows[7][column] = value
    with pytest.raises(RatingsError) as expected:
        prepare_ratings(through_text(rows), source="study s")
    with pytest.raises(RatingsError, match="study s:9: ") as given:
        prepare_ratings(ratings_table(rows), source="study s")
    assert str(given.value) == str(expected.value)
