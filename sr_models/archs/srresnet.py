"""SRResNet, the SRGAN paper's generator (Ledig et al. 2017, arXiv 1609.04802, Fig. 4).

LR input in [0, 1], output in [-1, 1] (no final activation: inference clips). Layout:
9x9 conv + PReLU; ``num_blocks`` residual blocks (3x3 conv, BN, PReLU, 3x3 conv, BN, sum); 3x3 conv + BN + long skip;
log2(scale) upsampling blocks (3x3 conv to 4x features, PixelShuffle x2, PReLU); 9x9 conv to ``out_channels``.
Conv/BN pairs sit next to each other in ``nn.Sequential`` containers so ``fuse_for_inference`` can fold them.
"""

import math

from torch import nn

from ..errors import SRMOSError

SCALES = (2, 4, 8)


class ResidualBlock(nn.Module):
    def __init__(self, num_features=64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(num_features, num_features, 3, padding=1),
            nn.BatchNorm2d(num_features),
            nn.PReLU(),
            nn.Conv2d(num_features, num_features, 3, padding=1),
            nn.BatchNorm2d(num_features),
        )

    def forward(self, x):
        return x + self.body(x)


class UpsampleBlock(nn.Sequential):
    """Sub-pixel convolution x2: conv to 4C channels, PixelShuffle(2) (channel c*4 + i*2 + j -> pixel (2h+i, 2w+j))."""

    def __init__(self, num_features=64):
        super().__init__(
            nn.Conv2d(num_features, num_features * 4, 3, padding=1),
            nn.PixelShuffle(2),
            nn.PReLU(),
        )


class SRResNet(nn.Module):
    def __init__(self, in_channels=3, out_channels=3, num_features=64, num_blocks=16, scale=4):
        super().__init__()
        if scale not in SCALES:
            raise SRMOSError(f"SRResNet scale must be one of {SCALES}, not {scale!r}")
        # Kept so a checkpoint can rebuild the same network (sr_models.checkpoint).
        self.arch_args = dict(
            in_channels=in_channels,
            out_channels=out_channels,
            num_features=num_features,
            num_blocks=num_blocks,
            scale=scale,
        )
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(in_channels, num_features, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(*[ResidualBlock(num_features) for _ in range(num_blocks)])
        self.body_tail = nn.Sequential(
            nn.Conv2d(num_features, num_features, 3, padding=1), nn.BatchNorm2d(num_features)
        )
        self.upsample = nn.Sequential(*[UpsampleBlock(num_features) for _ in range(int(math.log2(scale)))])
        self.tail = nn.Conv2d(num_features, out_channels, 9, padding=4)

    def forward(self, x):
        features = self.head(x)
        x = features + self.body_tail(self.body(features))
        return self.tail(self.upsample(x))


def receptive_radius(num_blocks=16, scale=4):
    """How many LR pixels on each side of an LR pixel can change the HR pixels it becomes.

    9x9 head: 4; two 3x3 convs per block: 2 * num_blocks; body tail 3x3: 1; each upsampling 3x3 conv at 2^k x
    resolution: 1 / 2^k LR pixels; 9x9 tail at ``scale`` x: 4 / scale. Rounded up: 40 for the paper's network.
    """
    radius = 4 + 2 * num_blocks + 1 + sum(1 / 2**k for k in range(int(math.log2(scale)))) + 4 / scale
    return math.ceil(radius)
