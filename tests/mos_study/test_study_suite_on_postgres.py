"""The study's lifecycle, panel, blinding, view and browser tests again, on PostgreSQL.

They run on SQLite in the normal pass; here the same files run in a pytest subprocess whose Django settings point at
a fresh PostgreSQL database (pytest-django makes its ``test_`` copy there), so every finding of the crowdsourcing
issue (leases, pause and close, preview, calibration exclusion, gold trials, minimum viewing time, blinding by bytes,
viewing conditions, completion codes, the browser steps) is tested on both engines. Tests that start their own
PostgreSQL run (marked ``postgres``) are left out of the subprocess: they run in the normal pass.
"""

import pytest

from tests.support.suite_on_postgres import assert_suite_passes_on_postgres

SUITE = [
    "tests/mos_study/test_study_lifecycle.py",
    "tests/mos_study/test_study_panel.py",
    "tests/mos_study/test_study_blind.py",
    "tests/mos_study/test_study_views.py",
    "tests/mos_study/test_study_service.py",
    "tests/mos_study/test_session_start_reads.py",
    "tests/e2e/test_study_browser.py",
    "tests/e2e/test_study_panel_browser.py",
]


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.browser
def test_study_suite_passes_on_postgres(tmp_path, postgres_database, chromium_path):
    report = tmp_path / "database.json"
    assert_suite_passes_on_postgres(SUITE, postgres_database, report, at_least=85, extra_args=["-m", "not postgres"])
