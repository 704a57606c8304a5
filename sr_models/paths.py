"""Where srmos looks for data, weights and results when it is not told: the environment variables and defaults.

One module, so that the command lines (``python -m sr_models``, ``python -m benchmarks``), the benchmark runner,
the method registry and Django's settings (``config/settings.py``) all look in the same folders:

- ``$SRMOS_DATA_DIR``, default ``<repository>/data/datasets`` (ships Set5): the test sets (``sr_models.datasets``);
- ``$SRMOS_WEIGHTS_DIR``, default ``<repository>/var/weights``: one ``<method>.pt`` per learned method
  (``sr_models.methods``; the checkpoints shipped in ``sr_models/weights/`` come after it);
- ``$SRMOS_OUTPUT_DIR``, default ``<repository>/var/benchmark``: the benchmark's outputs and tables.

An empty variable counts as unset.
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR_ENV = "SRMOS_DATA_DIR"
WEIGHTS_DIR_ENV = "SRMOS_WEIGHTS_DIR"
OUTPUT_DIR_ENV = "SRMOS_OUTPUT_DIR"
DEFAULT_DATA_DIR = REPO_ROOT / "data" / "datasets"
DEFAULT_WEIGHTS_DIR = REPO_ROOT / "var" / "weights"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "var" / "benchmark"


def _resolve(value, env, default):
    return Path(value or os.environ.get(env) or default).expanduser()


def data_dir(value=None) -> Path:
    """``value``, else ``$SRMOS_DATA_DIR``, else ``<repository>/data/datasets``."""
    return _resolve(value, DATA_DIR_ENV, DEFAULT_DATA_DIR)


def weights_dir(value=None) -> Path:
    """``value``, else ``$SRMOS_WEIGHTS_DIR``, else ``<repository>/var/weights``."""
    return _resolve(value, WEIGHTS_DIR_ENV, DEFAULT_WEIGHTS_DIR)


def output_dir(value=None) -> Path:
    """``value``, else ``$SRMOS_OUTPUT_DIR``, else ``<repository>/var/benchmark``."""
    return _resolve(value, OUTPUT_DIR_ENV, DEFAULT_OUTPUT_DIR)
