"""A deliberately slow plugin method (``tests.support.slow_method:upscale``) for the worker-kill test.

Each call leaves a marker file in ``SRMOS_TEST_MARKERS`` (image hash and process id) when it starts, so the test
can kill a worker while a task is certainly running, and later see that the task ran again elsewhere.
"""

import hashlib
import os
import time
from pathlib import Path

import numpy as np


def upscale(lr):
    markers = os.environ.get("SRMOS_TEST_MARKERS")
    if markers:
        digest = hashlib.sha256(lr.tobytes()).hexdigest()[:12]
        Path(markers, f"{digest}.{os.getpid()}.{time.monotonic_ns()}").touch()
    time.sleep(float(os.environ.get("SRMOS_TEST_SLOW_SECONDS", "1.0")))
    return np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)  # nearest-neighbour x4
