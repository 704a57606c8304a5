"""Where the dashboard's results job spends its time (issue 17), and what giving the analysis the ratings records as
a table (``exports.ratings_table``) saves over turning every cell into text and parsing it back (before).

    python -m perf.results_job --study-id PK        # a seeded study (tests/support/seed_crowd_study.py)
    python -m perf.results_job --records 1200000    # no database: synthetic records, the table step only

With a study: the job's parts (reading the records through the ORM, the export built the old way and the new way,
packing) and the whole job (``results_cache.compute``). Beside them, measured in the same run (project rule): one
list comprehension taking one column out of the records, the floor of any column-by-column build (12 columns),
and for the ORM read the ids alone read the same way.
"""

import argparse
import datetime
import os
import time

import numpy as np

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def timed(label, function, reference=None):
    """Run ``function`` once; print its wall and CPU seconds (and as so many ``reference`` seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = function()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    times = f" = {wall / reference:5.0f} column passes" if reference else ""
    print(f"{label:<52s} {wall:7.2f} s wall {cpu:7.2f} s CPU{times}", flush=True)
    return value


def synthetic_records(n, n_raters=1500, n_images=1000, seed=0):
    """Records shaped as ``rating_table.rating_records`` yields them (ints, "" for a missing number, ISO times)."""
    rng = np.random.default_rng(seed)
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    scores, images = rng.integers(1, 6, n).tolist(), rng.integers(0, n_images, n).tolist()
    return [
        {
            "rating_id": k + 1,
            "dataset": "Crowd",
            "rater": f"P{k % n_raters}",
            "image": f"img_{images[k]:05d}",
            "method": f"method{k % 10:02d}",
            "score": scores[k],
            "kind": "trial",
            "expected_score": "",
            "session": k // 800 + 1,
            "trial": k % 800,
            "repetition": 0,
            "response_ms": "" if k % 97 == 0 else 1500,
            "timestamp": (start + datetime.timedelta(seconds=k)).isoformat(),
            "completion_code": "C0DE",
        }
        for k in range(n)
    ]


def column_pass_seconds(rows):
    """One column out of the records, the floor of a column-by-column table (best of 3)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        [row["score"] for row in rows]  # noqa: B018 -- the pass is what is timed
        best = min(best, time.perf_counter() - start)
    return best


def compare_tables(rows):
    """The canonical table the old way and the new way, checked equal; prints both."""
    import pandas as pd

    from mos_study.analysis import prepare_ratings
    from mos_study.rating_columns import RATING_COLUMNS
    from mos_study.services.exports import ratings_table

    reference = column_pass_seconds(rows)
    print(f"same-run reference: one column out of {len(rows)} records {reference * 1e3:.0f} ms")

    def through_text():
        return prepare_ratings(pd.DataFrame(rows, columns=RATING_COLUMNS).astype(str), source="study")

    before = timed("table, before: every cell text, parsed back", through_text, reference)
    after = timed("table, now: exports.ratings_table", lambda: prepare_ratings(ratings_table(rows)), reference)
    pd.testing.assert_frame_equal(before, after)
    print("the two tables are equal")
    return reference


def job_parts(study_id):
    """The results job's parts on a stored study, then the whole job."""
    import django

    django.setup()
    import pandas as pd

    from mos_study.models import Rating, ResultsSnapshot, Study
    from mos_study.rating_columns import RATING_COLUMNS
    from mos_study.services import exports, progress, results_cache

    study = Study.objects.get(pk=study_id)
    ids = Rating.objects.filter(trial__session__study=study).values_list("pk", flat=True)
    timed("reference: the ratings' ids alone (ORM, iterator)", lambda: list(ids.iterator(chunk_size=2000)))
    rows = timed("the ratings' records (ORM, rating_records)", lambda: list(exports.rating_records(study)))
    reference = compare_tables(rows)
    new_table = exports.ratings_table
    exports.build_export(study, rows=rows[:1000], with_ratings_csv=False, keep_all_if_all_rejected=True)  # imports
    builds = {}
    for label, table in (
        ("before", lambda rows: pd.DataFrame(rows, columns=RATING_COLUMNS).astype(str)),
        ("now", new_table),
    ):
        exports.ratings_table = table
        builds[label] = timed(
            f"build_export (analysis, figures), {label}",
            lambda: exports.build_export(study, rows=rows, with_ratings_csv=False, keep_all_if_all_rejected=True),
            reference,
        )
    exports.ratings_table = new_table
    assert builds["before"].files == builds["now"].files, "the export's files differ"
    print(f"the {len(builds['now'].files)} files of the export are identical")
    timed("the rating breakdown", lambda: progress.rating_breakdown(study))
    ResultsSnapshot.objects.filter(study_id=study_id).update(version="")  # so that the job computes again
    timed("the whole job (results_cache.compute), now", lambda: results_cache.compute(study_id), reference)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m perf.results_job", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--study-id", type=int, help="a stored study (PostgreSQL: set DATABASE_URL)")
    source.add_argument("--records", type=int, help="synthetic records, no database: the table step only")
    args = parser.parse_args(argv)
    if args.study_id is not None:
        job_parts(args.study_id)
    else:
        import django

        django.setup()
        compare_tables(synthetic_records(args.records))


if __name__ == "__main__":
    main()
