"""srmos super-resolution models: MATLAB-compatible resizing, SRResNet/SRGAN networks, methods, training, inference,
and what training validates with: the test-set reader (``datasets``) and PSNR/SSIM (``metrics``).

Pure PyTorch/NumPy, the bottom layer: nothing here imports Django, ``benchmarks`` or the Django app.
"""

__version__ = "0.1.0"
