"""srmos benchmark harness: datasets, PSNR/SSIM as the SR literature computes them, runner and tables.

No Django here; ``mos_study`` calls into this package, never the other way round.
"""
