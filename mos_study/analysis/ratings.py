"""Reading and checking long tables of ratings: one row per rating.

Columns: ``rater,image,method,score`` required; ``dataset`` (default: one dataset named after the file), ``kind``
(``trial``, ``repeat``, ``calibration`` or ``gold``, a hidden trial of known answer; default ``trial``),
``is_calibration`` (true/false, an alternative to ``kind``), ``expected_score`` (the score a calibration or gold
anchor should get), ``session``, ``trial``, ``repetition``, ``response_ms``, ``timestamp`` optional.
Other columns are ignored.
Every problem is reported with the file, the line and the column, before anything is computed or written.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from sr_models.errors import SRMOSError

from ..rating_columns import RATING_COLUMNS, RATING_DETAILS, RATING_KEYS

REQUIRED = RATING_KEYS
OPTIONAL = ("dataset", "kind", "is_calibration", *RATING_DETAILS)
KINDS = ("trial", "repeat", "calibration", "gold")
ANCHOR_KINDS = ("calibration", "gold")  # rows that judge raters (screening) and never enter MOS


def test_rows(ratings):
    """The rows of test trials and repeats: calibration and gold (hidden known-answer) rows left out."""
    return ratings[~ratings["kind"].isin(ANCHOR_KINDS)]


TRUE_WORDS = {"true", "1", "yes", "y", "t"}
FALSE_WORDS = {"false", "0", "no", "n", "f", ""}
CANONICAL = (*RATING_COLUMNS, "line")  # the columns every analysis function relies on, in this order


class RatingsError(SRMOSError):
    """A ratings table that cannot be analysed: a missing column, an empty key, an unparsable or out-of-scale value."""


def parse_columns(spec):
    """``"rater=subject,image=content"`` -> ``{"subject": "rater", "content": "image"}`` (file name -> our name)."""
    mapping = {}
    for item in filter(None, (part.strip() for part in (spec or "").split(","))):
        ours, sep, theirs = item.partition("=")
        ours, theirs = ours.strip(), theirs.strip()
        if not sep or not ours or not theirs:
            raise RatingsError(f"--columns item {item!r} is not of the form OURS=THEIRS (e.g. rater=subject)")
        if ours not in REQUIRED + OPTIONAL:
            raise RatingsError(f"--columns names unknown column {ours!r}; known: {', '.join(REQUIRED + OPTIONAL)}")
        mapping[theirs] = ours
    return mapping


def parse_scale(spec):
    """``"1,5"`` -> ``(1.0, 5.0)``."""
    try:
        low, high = (float(part) for part in str(spec).split(","))
    except ValueError:
        raise RatingsError(f"--scale {spec!r} is not LOW,HIGH (e.g. 1,5)") from None
    if not low < high:
        raise RatingsError(f"--scale {spec!r}: LOW must be below HIGH")
    return low, high


NUMBERS = ("score", "expected_score", "trial", "repetition", "response_ms")  # columns prepare_ratings parses


def read_ratings(path, *, columns=None, scale=(1, 5), dataset=None):
    """Read a CSV of ratings into the canonical DataFrame; raises RatingsError naming file, line and column."""
    path = Path(path)
    try:
        raw = _read_table(path, columns or {})
    except FileNotFoundError:
        raise RatingsError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RatingsError(f"{path}: not a readable CSV table ({exc})") from None
    raw = raw.rename(columns={c: c.strip() for c in raw.columns}).rename(columns=columns or {})
    raw["line"] = np.arange(len(raw)) + 2  # line 1 is the header
    if "dataset" not in raw.columns:
        raw["dataset"] = dataset or path.stem
    return prepare_ratings(raw, source=str(path), scale=scale)


def _read_table(path, columns):
    """The file's cells as text, except the number columns (``NUMBERS``, named as the file names them), which the
    CSV parser converts itself: making a million strings and parsing them again took most of the reading time.
    The parser's floats are ``pd.to_numeric``'s of the same text, to the bit (tests/analysis/test_fast_paths.py). A
    number column it did not read as clean numbers (a word, ``inf``, true/false, an untrimmed cell) is read again
    as text, so that ``prepare_ratings`` checks and reports it as before."""
    text = {"dtype": str, "keep_default_na": False, "skipinitialspace": True}
    header = pd.read_csv(path, nrows=0, **text).columns
    numbers = [c for c in header if columns.get(c.strip(), c.strip()) in NUMBERS]
    if not numbers:
        return pd.read_csv(path, **text)
    raw = pd.read_csv(
        path,
        dtype={c: str for c in header if c not in numbers},
        keep_default_na=False,
        na_values={c: [""] for c in numbers},  # an empty number cell is missing, as prepare_ratings reads ""
        skipinitialspace=True,
    )
    unclean = [c for c in numbers if raw[c].dtype.kind not in "iuf" or np.isinf(raw[c].to_numpy(dtype=float)).any()]
    if unclean:
        again = pd.read_csv(path, usecols=unclean, **text)
        raw[unclean] = again[unclean]
    return raw


def prepare_ratings(frame, *, source="ratings", scale=(1, 5)):
    """Check and normalise a ratings DataFrame (from a file or from the database) to the canonical columns."""
    frame = frame.copy(deep=False)  # copy-on-write (pandas 3): the caller's frame is never changed, none copied
    if "line" not in frame.columns:
        frame["line"] = np.arange(len(frame)) + 2
    missing = [c for c in REQUIRED + ("dataset",) if c not in frame.columns]
    if missing:
        raise RatingsError(
            f"{source}:1: missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}"
            " (map other names with --columns rater=subject,...)"
        )
    if frame.empty:
        raise RatingsError(f"{source}: the table has no ratings")
    for key in ("dataset", "rater", "image", "method"):
        frame[key], empty = stripped(frame[key])
        _fail_where(frame, empty, source, key, "is empty")
    frame["score"] = _numbers(frame, "score", source)
    _fail_where(frame, frame["score"].isna(), source, "score", "is empty")
    low, high = scale
    _fail_where(
        frame,
        (frame["score"] < low) | (frame["score"] > high),
        source,
        "score",
        f"is outside the scale {low:g}..{high:g} (set --scale LOW,HIGH)",
    )
    frame["kind"] = _kinds(frame, source)
    for name in ("expected_score", "trial", "repetition", "response_ms"):
        frame[name] = _numbers(frame, name, source) if name in frame.columns else np.nan
    _fail_where(frame, frame["response_ms"] < 0, source, "response_ms", "is negative")
    for name in ("session", "timestamp"):
        frame[name] = stripped(frame[name])[0] if name in frame else ""
    return frame[list(CANONICAL)].reset_index(drop=True)


def per_value(series, transform):
    """``transform(series)`` for an elementwise ``transform``, computed once per distinct value and spread back by
    the value's code: a million ratings hold a few thousand raters, images and methods, and string methods cost
    per row."""
    codes, done = _per_distinct(series, transform)
    return done.take(codes).set_axis(series.index)


def stripped(series):
    """``series`` as text with blanks stripped, and a numpy mask of the cells that leaves empty, both from one pass
    over the distinct values."""
    codes, done = _per_distinct(series, lambda values: values.astype(str).str.strip())
    return done.take(codes).set_axis(series.index), (done == "").to_numpy(dtype=bool)[codes]


def _per_distinct(series, transform):
    """(each row's code, ``transform`` of the distinct values in code order)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    return codes, transform(pd.Series(uniques, dtype=series.dtype))


def _numbers(frame, column, source):
    """The column as floats; empty cells and "nan" are missing, anything else that is not a finite number fails.

    pandas parses numbers with surrounding blanks as they are, so only the rows it cannot parse (empty or bad cells)
    of a column of text go through the slow text checks."""
    values = pd.to_numeric(frame[column], errors="coerce").astype(float)
    missing = values.isna().to_numpy()
    bad = np.isinf(values.to_numpy())
    if missing.any() and not pd.api.types.is_float_dtype(frame[column]):  # a float column's NaN is no text
        text = frame[column][missing].astype(str).str.strip()
        again = pd.to_numeric(text.replace("", np.nan), errors="coerce").astype(float)
        values[missing] = again.to_numpy()
        unparsed = again.isna() & text.notna() & (text != "") & (text.str.lower() != "nan")  # NaN given: missing
        bad[missing] |= unparsed.to_numpy(dtype=bool)
    if bad.any():
        _fail_where(frame, bad, source, column, "is not a number", frame[column].astype(str).str.strip())
    return values


def _kinds(frame, source):
    kind = pd.Series("trial", index=frame.index)
    if "kind" in frame.columns:
        given = per_value(frame["kind"], lambda values: values.astype(str).str.strip().str.lower())
        _fail_where(frame, ~given.isin(KINDS + ("",)), source, "kind", f"must be one of {', '.join(KINDS)}", given)
        kind = given.where(given != "", "trial")
    if "is_calibration" in frame.columns:
        flag = per_value(frame["is_calibration"], lambda values: values.astype(str).str.strip().str.lower())
        _fail_where(
            frame, ~flag.isin(TRUE_WORDS | FALSE_WORDS), source, "is_calibration", "must be true or false", flag
        )
        kind = kind.where(~flag.isin(TRUE_WORDS), "calibration")
    return kind


def _fail_where(frame, bad, source, column, problem, values=None):
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        value = (values if values is not None else frame[column]).iloc[first]
        more = f" ({int(bad.sum()) - 1} more rows like it)" if bad.sum() > 1 else ""
        raise RatingsError(f"{source}:{frame['line'].iloc[first]}: column {column!r} {problem}: {value!r}{more}")
