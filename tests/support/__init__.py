"""Helpers for the tests, kept apart from the tests themselves: nothing here is collected by pytest.

``study_factory`` stores small outputs without a benchmark; ``live`` runs the real app (a fresh PostgreSQL database,
manage.py, gunicorn and Celery subprocesses); ``seed_study`` and ``create_study_in_admin`` are scripts those
subprocess tests run; ``script_mode`` sets Django up for test files that run themselves as a script; ``slow_method``
is a deliberately slow plugin method (``tests.support.slow_method:upscale``).
"""
