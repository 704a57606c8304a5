"""The SRGAN paper's losses (Sec. 2.2): pixel MSE, VGG content loss, adversarial and discriminator losses.

Generator outputs and HR targets are in [-1, 1]. Discriminators return logits, so every log-sigmoid goes through
``binary_cross_entropy_with_logits`` (stable where sigmoid-then-log would give -inf).
"""

import torch
import torch.nn.functional as F
from torch import nn

from .archs.vgg import VGGFeatureExtractor
from .errors import SRMOSError

VGG_RESCALE = 1.0 / 12.75**2  # the paper's rescaling of VGG losses, to make them comparable to the MSE loss
ADVERSARIAL_WEIGHT = 1e-3


class PixelMSELoss(nn.Module):
    """Mean squared error between SR and HR pixels (in the [-1, 1] range the network works in)."""

    def forward(self, sr, hr):
        return F.mse_loss(sr, hr)


class VGGContentLoss(nn.Module):
    """MSE between VGG19 phi_{i,j} feature maps of SR and HR, times ``rescale`` (1/12.75^2).

    SR and HR come in [-1, 1] and are mapped to [0, 1], the range the feature extractor normalises from.
    """

    def __init__(self, layer="54", rescale=VGG_RESCALE, weights=None, random_weights=False):
        super().__init__()
        self.vgg = VGGFeatureExtractor(layer=layer, weights=weights, random_weights=random_weights)
        self.rescale = rescale

    def forward(self, sr, hr):
        sr_features = self.vgg((sr + 1) / 2)
        with torch.no_grad():
            hr_features = self.vgg((hr + 1) / 2)
        return self.rescale * F.mse_loss(sr_features.float(), hr_features.float())


def content_loss(kind, *, rescale=VGG_RESCALE, vgg_weights=None, vgg_random_weights=False):
    """``"mse"``, ``"vgg22"`` or ``"vgg54"``; the VGG kinds raise WeightsError at once without VGG19 weights."""
    if kind == "mse":
        return PixelMSELoss()
    if kind in ("vgg22", "vgg54"):
        return VGGContentLoss(kind[3:], rescale=rescale, weights=vgg_weights, random_weights=vgg_random_weights)
    raise SRMOSError(f"content loss must be mse, vgg22 or vgg54, not {kind!r}")


def generator_adversarial_loss(fake_logits):
    """-log D(G(x)), averaged over the batch (the paper's l_Gen; unweighted)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_loss(real_logits, fake_logits):
    """-log D(HR) - log(1 - D(G(x))), each averaged over the batch."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake
