"""The columns of the long ratings table (one row per rating), in one place for both sides that use it.

``mos_study.analysis.ratings`` reads and checks the table; ``mos_study.services.rating_table`` streams a study's
ratings from the database in it. This module imports nothing, so the Django side can name the columns without
loading pandas (the analysis package does) and the analysis stays free of Django.
"""

RATING_KEYS = ("rater", "image", "method", "score")  # every ratings table has these
RATING_DETAILS = ("expected_score", "session", "trial", "repetition", "response_ms", "timestamp")  # optional
RATING_COLUMNS = ("dataset", *RATING_KEYS, "kind", *RATING_DETAILS)  # the canonical table, in this order
