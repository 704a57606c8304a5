"""A pytest plugin for a suite run in a subprocess: at the end it writes which database the tests used (vendor and
name) to the file ``$SRMOS_DATABASE_REPORT``, so the test that started the run can check it was the one it asked for.

Loaded only with ``-p tests.support.database_report`` (see tests/mos_study/test_study_suite_on_postgres.py).
"""

import json
import os


def pytest_sessionfinish(session):
    report = os.environ.get("SRMOS_DATABASE_REPORT")
    if not report:
        return
    from django.db import connection

    with open(report, "w") as handle:
        json.dump({"vendor": connection.vendor, "name": connection.settings_dict["NAME"]}, handle)
