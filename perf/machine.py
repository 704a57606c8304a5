"""The machine's own limits, measured in the same run as what a perf script times.

Machines differ by a third from one session to the next, so every ``perf`` script prints its figures
beside these limits and the ratio: for convolutions the best oneDNN 3x3 rate (which beats ``torch.mm`` on CPUs here),
for matrix work ``torch.mm``.
"""

import time

import torch
from torch import nn

# (batch, channels, height, width): small and large maps, the widths SRResNet and the discriminator use.
CONV3X3_SHAPES = [
    (1, 64, 120, 80),
    (1, 64, 256, 256),
    (4, 64, 96, 96),
    (8, 64, 64, 64),
    (16, 64, 48, 48),
    (16, 128, 48, 48),
    (16, 256, 24, 24),
    (16, 512, 12, 12),
]


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# What best_time measures: wall-clock time, or this process's CPU time (``use_cpu_clock``): on a machine others load,
# one thread's CPU time is what the work costs, while its wall-clock time also counts the waits for a core.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def use_cpu_clock(cpu=True):
    """Make best_time (and so every limit and figure of a perf script) count CPU time instead of wall-clock time."""
    global clock
    clock = CLOCKS["cpu" if cpu else "wall"]


def best_time(function, device=torch.device("cpu"), repeats=3):
    """The shortest of ``repeats`` timings of ``function()`` (wall clock unless ``use_cpu_clock``), in seconds."""
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = clock()
        function()
        synchronize(device)
        best = min(best, clock() - start)
    return best


def conv3x3_limit(device, dtype=torch.float32, shapes=CONV3X3_SHAPES, repeats=3):
    """(function, FLOPs per call) of the fastest same-padding 3x3 channels_last convolution over ``shapes``."""
    best = None
    for n, c, h, w in shapes:
        conv = nn.Conv2d(c, c, 3, padding=1, bias=False).to(device, dtype).to(memory_format=torch.channels_last)
        x = torch.rand(n, c, h, w, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        flops = 2 * c * c * 9 * n * h * w

        def call(conv=conv, x=x):
            with torch.inference_mode():
                conv(x)

        call()  # let oneDNN / cuDNN pick and cache its kernel first
        rate = flops / best_time(call, device, repeats)
        if best is None or rate > best[0]:
            best = (rate, call, flops)
    return best[1], best[2]


def mm_limit(device, dtype=torch.float32, size=None):
    """(function, FLOPs per call) of ``torch.mm`` on large square matrices."""
    size = size or (8192 if device.type == "cuda" else 2048)
    a, b = (torch.rand(size, size, device=device, dtype=dtype) for _ in range(2))
    torch.mm(a, b)
    return (lambda: torch.mm(a, b)), 2 * size**3


def rate(limit, device, repeats=5):
    """Best FLOP/s of a ``(function, FLOPs per call)`` pair from ``conv3x3_limit`` or ``mm_limit``."""
    function, flops = limit
    return flops / best_time(function, device, repeats)


def conv3x3_rate(device, dtype=torch.float32, shapes=CONV3X3_SHAPES, repeats=5):
    return rate(conv3x3_limit(device, dtype, shapes), device, repeats)


def mm_rate(device, dtype=torch.float32, size=None, repeats=5):
    return rate(mm_limit(device, dtype, size), device, repeats)
