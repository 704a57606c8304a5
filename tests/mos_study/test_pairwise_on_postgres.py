"""The pairwise study's service, dashboard and browser tests again, on PostgreSQL (as the ACR study suite runs in
tests/mos_study/test_study_suite_on_postgres.py): a pytest subprocess whose settings point at a fresh PostgreSQL
database, so row locks (SELECT ... FOR UPDATE), the choosing path's idempotency and the session balance are checked
on the deployment's engine, not only on SQLite's database-wide write lock."""

import pytest

from tests.support.suite_on_postgres import assert_suite_passes_on_postgres

SUITE = ["tests/mos_study/test_pairwise_study.py", "tests/e2e/test_pairwise_browser.py"]


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.browser
def test_pairwise_suite_passes_on_postgres(tmp_path, postgres_database, chromium_path):
    assert_suite_passes_on_postgres(SUITE, postgres_database, tmp_path / "database.json", at_least=15)
