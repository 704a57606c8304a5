"""DISTS (Ding, Ma, Wang, Simoncelli, IEEE TPAMI 2020): srmos's own forward pass, with the alpha/beta weights read
from the ``DISTS_pytorch`` 0.1 wheel (``weights.pt``) and VGG16 from torchvision's ImageNet weights (``backbones``).

Input RGB in [0, 1], normalised with ImageNet's mean and std; VGG16's max-pools become L2 pooling (a 3x3 Hann window,
stride 2); at the image and at the 5 stages' outputs, per channel, a texture term (means) and a structure term
(variances and covariance) are weighted by alpha and beta; DISTS = 1 - their sum. Lower is better.
"""

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import backbones
from .registry import FULL_REFERENCE, QualityMetric, register, require
from .tensors import score_batches

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STAGES = ((0, 4), (5, 9), (10, 16), (17, 23), (24, 30))  # VGG16 features between its max-pools (4, 9, 16, 23)
CHANNELS = (3, 64, 128, 256, 512, 512)
C1 = C2 = 1e-6
_MODELS = {}


class L2Pool(nn.Module):
    """sqrt(Hann-weighted mean of x^2), stride 2: DISTS's anti-aliased replacement of max-pooling."""

    def __init__(self, channels):
        super().__init__()
        window = np.hanning(5)[1:-1]
        kernel = torch.tensor(np.outer(window, window), dtype=torch.float32)
        self.register_buffer("kernel", (kernel / kernel.sum()).expand(channels, 1, 3, 3).contiguous())

    def forward(self, x):
        out = F.conv2d(x**2, self.kernel, stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class DISTS(nn.Module):
    def __init__(self, features, alpha, beta):
        super().__init__()
        self.stages = nn.ModuleList(features[a:b] for a, b in STAGES)
        self.pools = nn.ModuleList(L2Pool(c) for c in CHANNELS[1:-1])
        total = alpha.sum() + beta.sum()
        self.alpha = nn.ParameterList(
            nn.Parameter(a, requires_grad=False) for a in torch.split(alpha / total, CHANNELS, 1)
        )
        self.beta = nn.ParameterList(
            nn.Parameter(b, requires_grad=False) for b in torch.split(beta / total, CHANNELS, 1)
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def layers(self, x):
        h = self.stages[0]((x - self.mean) / self.std)
        outputs = [x, h]
        for pool, stage in zip(self.pools, self.stages[1:]):
            h = stage(pool(h))
            outputs.append(h)
        return outputs

    def forward(self, x, y):
        texture = structure = 0
        for fx, fy, alpha, beta in zip(self.layers(x), self.layers(y), self.alpha, self.beta):
            mx, my = fx.mean((2, 3), keepdim=True), fy.mean((2, 3), keepdim=True)
            vx, vy = ((fx - mx) ** 2).mean((2, 3), keepdim=True), ((fy - my) ** 2).mean((2, 3), keepdim=True)
            cov = (fx * fy).mean((2, 3), keepdim=True) - mx * my
            texture = texture + (alpha * (2 * mx * my + C1) / (mx**2 + my**2 + C1)).sum(1)
            structure = structure + (beta * (2 * cov + C2) / (vx + vy + C2)).sum(1)
        return 1 - (texture + structure).reshape(-1)


def alpha_beta():
    package = require("DISTS_pytorch", "dists")
    state = torch.load(Path(package.__file__).parent / "weights.pt", map_location="cpu", weights_only=True)
    return state["alpha"], state["beta"]


def model(context):
    """The DISTS network for a context (built once per process): ``(model, weights_note)``."""
    key = (context.device, str(backbones.backbone_path("vgg16", context.weights_dir)), context.stand_in)
    if key not in _MODELS:
        alpha, beta = alpha_beta()
        features, note = backbones.load_features("vgg16", "dists", context.weights_dir, context.stand_in)
        _MODELS[key] = (DISTS(features, alpha, beta).to(context.device).eval(), note)
    return _MODELS[key]


def _batch(srs, hrs, context):
    network, _ = model(context)
    return score_batches(srs, hrs, context.device, lambda sr, hr: network(_rgb(sr), _rgb(hr)))


def _rgb(batch):
    return batch if batch.shape[1] == 3 else batch.expand(-1, 3, -1, -1)


register(
    QualityMetric(
        name="dists",
        kind=FULL_REFERENCE,
        higher_is_better=False,
        space="rgb01",
        convention="RGB in [0, 1] (uint8 / 255, ImageNet-normalised inside), the same border removed as for PSNR; "
        "full image (no resizing to 256), grey repeated to 3 channels",
        source="srmos forward pass; DISTS_pytorch 0.1 alpha/beta (weights.pt); torchvision ImageNet vgg16 "
        f"({backbones.file_name('vgg16')})",
        paper="Ding, Ma, Wang, Simoncelli, 'Image quality assessment: unifying structure and texture similarity', "
        "IEEE TPAMI 2020",
        batch=_batch,
        requires="DISTS_pytorch",
        learned=True,
        note=lambda context: model(context)[1],
        min_side=32,
    )
)
