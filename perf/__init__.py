"""srmos speed benchmarks and load tests: scripts that measure, not library code.

Each prints its figures with the machine's measured limit beside them (``perf.machine``), so a number can be read
as a fraction of what this machine can do. Run them from the repository root with ``python -m``:

- ``python -m perf.inference``: SRResNet x4 inference against the conv3x3 and ``torch.mm`` rates (``--layers``:
  each layer group, ``perf.layer_profile``);
- ``python -m perf.benchmark_throughput``: benchmark outputs/s in-process and with N Celery workers against the
  network alone;
- ``python -m perf.metrics``: PSNR/SSIM of a whole dataset against scikit-image;
- ``python -m perf.training``: training updates per second for SRResNet and SRGAN;
- ``python -m perf.analysis``: the MOS statistics of a large simulated study;
- ``python -m perf.load_rating``: simulated raters against a running srmos server (HTTP only, imports nothing of
  srmos).

Nothing in ``sr_models``, ``benchmarks`` or ``mos_study`` imports this package.
"""
