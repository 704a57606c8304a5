"""srmos super-resolution models: MATLAB-compatible resizing, SRResNet/SRGAN networks, methods, training, inference.

Pure PyTorch/NumPy: nothing here imports Django or ``benchmarks``.
"""

__version__ = "0.1.0"
