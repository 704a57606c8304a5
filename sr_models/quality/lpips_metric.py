"""LPIPS v0.1 (Zhang et al., CVPR 2018) with AlexNet or VGG16 features: srmos's own forward pass, with the
calibrated linear layers read from the ``lpips`` 0.1.4 wheel (``lpips/weights/v0.1/{alex,vgg}.pth``) and the
backbone from torchvision's ImageNet weights (``backbones``).

Input RGB in [0, 1], mapped to [-1, 1] and shifted/scaled by LPIPS's ScalingLayer; at each of 5 ReLU outputs the
features are unit-normalised along channels, their squared difference weighted by the linear layer and averaged over
the image; the 5 figures are summed. Grey images are repeated to 3 channels. Lower is better.
"""

from pathlib import Path

import torch
from torch import nn

from . import backbones
from .registry import FULL_REFERENCE, QualityMetric, register, require
from .tensors import score_batches

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10
# Where each of the five LPIPS layers ends in torchvision's ``features`` (after its ReLU).
CUTS = {"alexnet": (2, 5, 8, 10, 12), "vgg16": (4, 9, 16, 23, 30)}
LINEAR_FILES = {"alexnet": "alex.pth", "vgg16": "vgg.pth"}
_MODELS = {}


class LPIPS(nn.Module):
    def __init__(self, features, cuts, linear_weights):
        super().__init__()
        self.features = features
        self.cuts = cuts
        self.linear = nn.ParameterList(
            [nn.Parameter(w.reshape(1, -1, 1, 1), requires_grad=False) for w in linear_weights]
        )
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    def layers(self, x):
        x = ((2 * x - 1) - self.shift) / self.scale
        outputs, start = [], 0
        for end in self.cuts:
            x = self.features[start:end](x)
            outputs.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS))
            start = end
        return outputs

    def forward(self, x, y):
        total = 0
        for fx, fy, weight in zip(self.layers(x), self.layers(y), self.linear):
            total = total + ((fx - fy) ** 2 * weight).sum(dim=1).mean(dim=(1, 2))
        return total


def linear_weights(arch, metric_name):
    package = require("lpips", metric_name)
    path = Path(package.__file__).parent / "weights" / "v0.1" / LINEAR_FILES[arch]
    state = torch.load(path, map_location="cpu", weights_only=True)
    return [state[f"lin{k}.model.1.weight"] for k in range(len(CUTS[arch]))]


def model(arch, metric_name, context):
    """The LPIPS network for a context (built once per process): ``(model, weights_note)``."""
    key = (arch, context.device, str(backbones.backbone_path(arch, context.weights_dir)), context.stand_in)
    if key not in _MODELS:
        weights = linear_weights(arch, metric_name)
        features, note = backbones.load_features(arch, metric_name, context.weights_dir, context.stand_in)
        _MODELS[key] = (LPIPS(features, CUTS[arch], weights).to(context.device).eval(), note)
    return _MODELS[key]


def _batch(arch, metric_name):
    def batch(srs, hrs, context):
        network, _ = model(arch, metric_name, context)
        return score_batches(srs, hrs, context.device, lambda sr, hr: network(_rgb(sr), _rgb(hr)))

    return batch


def _note(arch, metric_name):
    return lambda context: model(arch, metric_name, context)[1]


def _rgb(batch):
    return batch if batch.shape[1] == 3 else batch.expand(-1, 3, -1, -1)


for _name, _arch, _label in (("lpips_alex", "alexnet", "AlexNet"), ("lpips_vgg", "vgg16", "VGG16")):
    register(
        QualityMetric(
            name=_name,
            kind=FULL_REFERENCE,
            higher_is_better=False,
            space="rgb01",
            convention="RGB in [0, 1] (uint8 / 255, mapped to [-1, 1] inside), the same border removed as for PSNR; "
            f"LPIPS v0.1, {_label} features, grey repeated to 3 channels",
            source=f"srmos forward pass; lpips 0.1.4 linear layers (weights/v0.1/{LINEAR_FILES[_arch]}); "
            f"torchvision ImageNet {_arch} ({backbones.file_name(_arch)})",
            paper="Zhang, Isola, Efros, Shechtman, Wang, 'The unreasonable effectiveness of deep features as a "
            "perceptual metric', CVPR 2018",
            batch=_batch(_arch, _name),
            requires="lpips",
            learned=True,
            note=_note(_arch, _name),
            min_side=32,
        )
    )
