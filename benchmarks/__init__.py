"""srmos benchmark harness: test-set download, the runner (every output stored once, measured), tables, and the
SRGAN paper's published values. Datasets are read and measured with ``sr_models.datasets`` and ``sr_models.metrics``.

No Django here; ``mos_study`` calls into this package, never the other way round. Speed benchmarks live in ``perf``.
"""
