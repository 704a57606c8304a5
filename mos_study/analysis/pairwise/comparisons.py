"""Reading and checking long tables of pairwise comparisons: one row per forced-choice trial.

Columns ``rater,image,method_a,method_b,choice`` are required; ``dataset`` is optional (one dataset named after the
file when absent). ``choice`` is ``a`` or ``b`` (the side preferred), ``tie`` (no preference: half a win to each), or
the name of the preferred method itself. Other columns are kept but not used. Every problem is reported with the
source, the line and the column, before anything is computed, as ``RatingsError`` (the ACR reader's error).
"""

from pathlib import Path

import numpy as np
import pandas as pd

from ..ratings import RatingsError, _fail_where

REQUIRED = ("rater", "image", "method_a", "method_b", "choice")
KEYS = ("dataset", "rater", "image", "method_a", "method_b")
CHOICES = ("a", "b", "tie")
TIE_WORDS = {"tie", "none", "equal", "same", "no preference", "="}
CANONICAL = (*KEYS, "choice", "line")


def read_comparisons(path_or_frame, *, source=None, dataset=None):
    """The canonical comparisons DataFrame (``dataset,rater,image,method_a,method_b,choice,line``; ``choice`` one of
    ``a``, ``b``, ``tie``) from a CSV path or a DataFrame; raises RatingsError naming the row."""
    if isinstance(path_or_frame, pd.DataFrame):
        raw = path_or_frame.copy()
        source = source or "comparisons"
    else:
        path = Path(path_or_frame)
        source = source or str(path)
        raw = _read_csv(path)
        dataset = dataset or path.stem
    raw = raw.rename(columns={c: str(c).strip() for c in raw.columns})
    if "line" not in raw.columns:
        raw["line"] = np.arange(len(raw)) + 2  # line 1 is the header
    if "dataset" not in raw.columns:
        raw["dataset"] = dataset or "comparisons"
    return _check(raw, source)


def _read_csv(path):
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise RatingsError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RatingsError(f"{path}: not a readable CSV table ({exc})") from None


def _check(frame, source):
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise RatingsError(
            f"{source}:1: missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))} "
            "(a pairwise table needs rater,image,method_a,method_b,choice)"
        )
    if frame.empty:
        raise RatingsError(f"{source}: the table has no comparisons")
    for key in KEYS:
        frame[key] = frame[key].astype(str).str.strip()
        _fail_where(frame, frame[key] == "", source, key, "is empty")
    _fail_where(
        frame,
        frame["method_a"] == frame["method_b"],
        source,
        "method_b",
        "is the same method as method_a (a method cannot be compared with itself)",
    )
    frame["choice"] = _choices(frame, source)
    return frame[list(CANONICAL)].reset_index(drop=True)


def _choices(frame, source):
    """``a``/``b``/``tie`` from the side, a tie word, or the chosen method's name."""
    text = frame["choice"].astype(str).str.strip()
    lower = text.str.lower()
    choice = pd.Series("", index=frame.index)
    choice[lower == "a"] = "a"
    choice[lower == "b"] = "b"
    choice[lower.isin(TIE_WORDS)] = "tie"
    named = choice == ""
    # a method's name, in any case ("a", "b" and the tie words always mean the side or a tie)
    choice[named & (lower == frame["method_a"].str.lower())] = "a"
    choice[named & (lower == frame["method_b"].str.lower())] = "b"
    _fail_where(
        frame,
        choice == "",
        source,
        "choice",
        "must be a, b, tie or the name of method_a or method_b",
        text,
    )
    return choice


def win_points(comparisons):
    """Per row, the points method_a and method_b win: 1/0, 0/1, or 0.5/0.5 for a tie."""
    choice = comparisons["choice"].to_numpy()
    points_a = np.where(choice == "a", 1.0, np.where(choice == "tie", 0.5, 0.0))
    return points_a, 1.0 - points_a
