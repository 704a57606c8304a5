"""srmos checkpoint files: one file serves inference, the method registry and training resumption.

A checkpoint is a ``torch.save``d dict::

    {
        "format": "srmos-checkpoint",
        "format_version": 1,
        "method": "srgan-vgg54",          # the registry method these weights serve
        "arch": "srresnet",               # a key of sr_models.archs.ARCHS
        "arch_args": {...},               # constructor arguments: archs.build(arch, **arch_args) rebuilds the net
        "state_dict": {...},              # the generator's weights (CPU tensors)
        "step": 100000,                   # training updates done
        "provenance": {...},              # who/what made it: srmos and torch versions, UTC time, caller's entries
        "extra": {...},                   # anything else, e.g. the trainer's optimiser/RNG/data state for resuming
    }

Files are read with ``torch.load(weights_only=True)``: ``extra`` may hold tensors, numbers, strings, lists, tuples
and dicts, not arbitrary Python objects. Writing is atomic (``sr_models.fileio.atomic_write``: temporary file in
the same folder, fsync, ``os.replace``), so a crash never leaves a half-written checkpoint under the final name.
"""

import datetime
import re
from pathlib import Path

import torch
from torch import nn

from . import __version__
from .archs import build
from .archs.vgg import first_mismatch
from .errors import CheckpointError
from .fileio import atomic_write

FORMAT = "srmos-checkpoint"
FORMAT_VERSION = 1
KEYS = ("format", "format_version", "method", "arch", "arch_args", "state_dict", "step", "provenance", "extra")


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DistributedDataParallel/DataParallel (``.module``) or torch.compile (``._orig_mod``)."""
    while True:
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def save_checkpoint(path, generator, *, method, arch="srresnet", step=0, provenance=None, extra=None):
    """Write ``generator`` (with its ``arch_args``) as an srmos checkpoint at ``path``, atomically; returns the Path."""
    generator = unwrap(generator)
    arch_args = getattr(generator, "arch_args", None)
    if arch_args is None:
        raise CheckpointError(f"{type(generator).__name__} has no arch_args, so a checkpoint could not rebuild it")
    checkpoint = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "method": method,
        "arch": arch,
        "arch_args": dict(arch_args),
        "state_dict": {key: value.detach().cpu() for key, value in generator.state_dict().items()},
        "step": int(step),
        "provenance": {
            "srmos_version": __version__,
            "torch_version": str(torch.__version__),
            "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **(provenance or {}),
        },
        "extra": extra or {},
    }
    path = Path(path)

    def readable(temporary):  # refuse now what load_checkpoint would refuse later
        try:
            _read(temporary, "cpu", mmap=True)
        except CheckpointError as error:
            raise CheckpointError(f"not saving {path}: {str(error).split(' holds ', 1)[-1]}") from None

    return atomic_write(path, lambda file: torch.save(checkpoint, file), check=readable)


def _read(path, map_location, mmap=False):
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as error:  # noqa: BLE001 (torch raises many kinds for files that are not torch files)
        lines = str(error).splitlines() or [""]
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if refused:
            raise CheckpointError(
                f"{path} holds a {refused.group(1)} object, which safe loading refuses; keep "
                "provenance and extra to tensors, numbers, strings, lists and dicts"
            ) from None
        raise CheckpointError(
            f"{path} is not an srmos checkpoint: torch cannot read it ({type(error).__name__}: {lines[0]})"
        ) from None


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read and check an srmos checkpoint; CheckpointError says what is wrong with a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    checkpoint = _read(path, map_location)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        hint = (
            " (it looks like a bare state_dict)"
            if isinstance(checkpoint, dict) and all(isinstance(v, torch.Tensor) for v in checkpoint.values())
            else ""
        )
        raise CheckpointError(
            f"{path} is not an srmos checkpoint{hint}; make one with "
            "sr_models.checkpoint.save_checkpoint or python -m sr_models train"
        )
    if checkpoint.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {checkpoint.get('format_version')!r}; "
            f"this srmos reads version {FORMAT_VERSION}"
        )
    missing = [key for key in KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{path} is a damaged srmos checkpoint: it lacks {', '.join(missing)}")
    return checkpoint


def build_generator(checkpoint) -> nn.Module:
    """The network a checkpoint describes, with its weights loaded, in eval mode."""
    model = build(checkpoint["arch"], **checkpoint["arch_args"])
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(
            f"the checkpoint's weights do not fit {checkpoint['arch']} "
            f"{checkpoint['arch_args']}: {first_mismatch(error)}"
        ) from None
    return model.eval()
