"""The ImageNet backbones of the learned metrics (torchvision's AlexNet and VGG16 IMAGENET1K_V1), loaded the way
``sr_models.archs.vgg`` loads VGG19: from the torch hub cache (``$TORCH_HOME/hub/checkpoints/``) or a given folder,
never downloaded; absent, one line naming the file and where to put it.

A file is recognised as torchvision's ImageNet weights by the SHA-256 prefix torchvision puts in its name. Any other
file, or random weights where none is found, is a stand-in: used only when the caller asks for stand-ins
(``--metric-stand-in-weights``), and every figure made with it is marked ``stand-in``.
"""

import hashlib
from pathlib import Path

import torch
from torchvision import models
from torchvision.models.vgg import cfgs, make_layers

from ..archs.vgg import first_mismatch
from ..errors import WeightsError
from .registry import STAND_IN

IMAGENET = "torchvision IMAGENET1K_V1"
# The ``features`` part of each torchvision network (the metrics use nothing else: VGG16's classifier alone is 102 M
# parameters), and the torchvision weights whose file holds it.
BACKBONES = {
    "alexnet": (lambda: models.alexnet(weights=None).features, models.AlexNet_Weights.IMAGENET1K_V1),
    "vgg16": (lambda: make_layers(cfgs["D"]), models.VGG16_Weights.IMAGENET1K_V1),
}
STAND_IN_SEED = 0
_HASHES = {}  # (path, size, mtime) -> SHA-256: hashing VGG16's 528 MB once per process is enough


def file_name(arch):
    """``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``: the file torch.hub would cache."""
    return Path(BACKBONES[arch][1].url).name


def backbone_path(arch, weights_dir=None):
    """Where the backbone file is looked for: ``weights_dir``, else ``$TORCH_HOME/hub/checkpoints``."""
    folder = Path(weights_dir) if weights_dir else Path(torch.hub.get_dir()) / "checkpoints"
    return folder / file_name(arch)


def file_sha256(path):
    stat = Path(path).stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def is_imagenet_file(arch, path):
    expected_prefix = Path(BACKBONES[arch][1].url).stem.rsplit("-", 1)[-1]
    return file_sha256(path).startswith(expected_prefix)


def load_features(arch, metric_name, weights_dir=None, stand_in=False):
    """``(features, weights_note)``: the backbone's ``features`` (frozen, eval mode) and ``IMAGENET`` or
    ``STAND_IN``. Raises ``WeightsError`` when the file is absent or not ImageNet's and stand-ins were not asked."""
    build, weights = BACKBONES[arch]
    path = backbone_path(arch, weights_dir)
    present = path.is_file()
    imagenet = present and is_imagenet_file(arch, path)
    if not present and not stand_in:
        raise WeightsError(
            f"{metric_name} needs torchvision's ImageNet {arch} weights, not found at {path}; nothing is "
            f"downloaded here. Place {file_name(arch)} (from {weights.url}) in $TORCH_HOME/hub/checkpoints/ or "
            f"in the folder given with --metric-weights-dir, or pass --metric-stand-in-weights to compute it with "
            f"random stand-in weights (figures marked {STAND_IN})"
        )
    if present and not (imagenet or stand_in):
        raise WeightsError(
            f"{metric_name}: {path} is not torchvision's ImageNet {arch} weights (its SHA-256 does not start "
            f"with the prefix in its name); put {file_name(arch)} from {weights.url} there, or pass "
            f"--metric-stand-in-weights to use this file as a stand-in (figures marked {STAND_IN})"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(STAND_IN_SEED)  # stand-in random weights are the same in every run
        features = build()
    if present:
        _load_state(features, path, arch)
    return features.requires_grad_(False).eval(), IMAGENET if imagenet else STAND_IN


def _load_state(features, path, arch):
    """The ``features.*`` tensors of a torchvision state_dict file into ``features`` (the classifier, which no
    metric uses, may be absent)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (torch raises many kinds for a file that is not a state_dict)
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise WeightsError(f"{path} is not a torch state_dict file ({type(error).__name__}: {first_line})") from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a torchvision {arch} state_dict")
    prefix = "features."
    ours = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    missing = [key for key in features.state_dict() if key not in ours]
    if missing:
        raise WeightsError(
            f"{path} is not a torchvision {arch} state_dict (missing {prefix}{missing[0]} and {len(missing) - 1} more)"
        )
    try:
        features.load_state_dict(ours)
    except RuntimeError as error:
        raise WeightsError(f"{path} does not fit torchvision's {arch}: {first_mismatch(error)}") from None
