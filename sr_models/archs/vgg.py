"""VGG19 feature extractor for the SRGAN content losses.

phi_{i,j} is the feature map after the ReLU of the j-th conv before the i-th max-pool (paper, Sec. 2.2.2):
VGG22 = phi_{2,2} (torchvision ``features[:9]``), VGG54 = phi_{5,4} (``features[:36]``).
Input: RGB in [0, 1]; it is normalised inside with the ImageNet mean/std torchvision's weights expect.
Weights: torchvision's IMAGENET1K_V1 from the torch hub cache (never downloaded here), or a torchvision
``vgg19`` state_dict file. Parameters are frozen and the module stays in eval mode.
"""

from pathlib import Path

import torch
from torch import nn
from torchvision.models import VGG19_Weights
from torchvision.models.vgg import cfgs, make_layers

from ..errors import WeightsError, SRMOSError

# Number of torchvision ``vgg19().features`` layers to keep for each cut (up to and including the ReLU).
LAYER_CUTS = {"22": 9, "54": 36}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def first_mismatch(error: RuntimeError) -> str:
    """The first problem load_state_dict reports (its message lists every one, over many lines)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[1] if len(lines) > 1 else (lines[0] if lines else "")


def imagenet_cache_file():
    """Where torch.hub keeps torchvision's VGG19 ImageNet weights ($TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG19_Weights.IMAGENET1K_V1.url).name


def load_vgg19_state_dict(weights=None):
    """The ImageNet state_dict from the hub cache (``weights=None``) or a torchvision vgg19 state_dict file."""
    if weights is None:
        cached = imagenet_cache_file()
        if not cached.is_file():
            raise WeightsError(
                f"VGG19 ImageNet weights are not in the torch hub cache ({cached}); nothing is downloaded here. "
                f"Place {cached.name} (from {VGG19_Weights.IMAGENET1K_V1.url}) in $TORCH_HOME/hub/checkpoints/ "
                f"or pass a torchvision vgg19 state_dict file"
            )
        return VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(f"VGG19 weights file {path} does not exist; pass a torchvision vgg19 state_dict file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (torch raises many kinds for a file that is not a state_dict)
        first_line = (str(error).strip().splitlines() or [""])[0]  # torch appends paragraphs of advice
        raise WeightsError(f"{path} is not a torch state_dict file ({type(error).__name__}: {first_line})") from None


IMAGENET_SOURCE = "torchvision IMAGENET1K_V1"
RANDOM_SOURCE = "random (stand-in: the VGG losses are meaningless)"


def vgg_weights_source(content_loss, weights=None, random_weights=False):
    """Where a run's VGG features came from, for its provenance: not used, ImageNet, random, or a file's SHA-256.

    A file is recognised as torchvision's ImageNet weights by the SHA-256 prefix torchvision puts in its name."""
    if not str(content_loss).startswith("vgg"):
        return "not used"
    if random_weights:
        return RANDOM_SOURCE
    if weights is None:
        return IMAGENET_SOURCE
    import hashlib

    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    expected_prefix = Path(VGG19_Weights.IMAGENET1K_V1.url).stem.rsplit("-", 1)[-1]
    return IMAGENET_SOURCE if digest.startswith(expected_prefix) else f"file sha256:{digest}"


class VGGFeatureExtractor(nn.Module):
    def __init__(self, layer="54", weights=None, random_weights=False):
        super().__init__()
        layer = str(layer)
        if layer not in LAYER_CUTS:
            raise SRMOSError(f"VGG layer must be one of {sorted(LAYER_CUTS)} (phi_2,2 or phi_5,4), not {layer!r}")
        self.layer = layer
        self.features = make_layers(cfgs["E"])[: LAYER_CUTS[layer]]
        if not random_weights:
            self._load(load_vgg19_state_dict(weights), weights)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _load(self, state_dict, source):
        prefix = "features."
        wanted = self.features.state_dict().keys()
        ours = {key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)}
        missing = [key for key in wanted if key not in ours]
        if missing:
            raise WeightsError(
                f"{source or 'the cached file'} is not a torchvision vgg19 state_dict "
                f"(missing {prefix}{missing[0]} and {len(missing) - 1} more)"
            )
        try:
            self.features.load_state_dict({key: ours[key] for key in wanted})
        except RuntimeError as error:
            raise WeightsError(f"{source or 'the cached file'} does not fit vgg19: {first_mismatch(error)}") from None

    def train(self, mode=True):
        # Frozen loss network: always eval, whatever the surrounding model does.
        return super().train(False)

    def forward(self, x):
        return self.features((x - self.mean) / self.std)
