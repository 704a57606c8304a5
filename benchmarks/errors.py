"""Errors of the benchmark harness a user can cause. Each message says what was wrong and how to put it right.

Dataset errors come from ``sr_models.datasets`` (``DatasetError``), download errors from ``benchmarks.download``
(``DownloadError``); every one is an ``sr_models.errors.SRMOSError``.
"""

from sr_models.errors import SRMOSError


class BenchmarkError(SRMOSError):
    """A benchmark run, import or manifest that cannot go on as asked (methods, outputs, executor results)."""
