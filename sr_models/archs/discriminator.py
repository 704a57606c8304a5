"""The SRGAN paper's discriminator (Fig. 4): eight 3x3 convs with LeakyReLU(0.2), BN after all but the first,
then dense 1024, LeakyReLU, dense 1. Returns logits (N x 1); the sigmoid lives in the loss (BCE-with-logits).

``head="global_pool"`` replaces the dense layers on the flattened map by global average pooling, then dense 1024,
LeakyReLU, dense 1: far fewer parameters and any input size.
"""

import torch
from torch import nn

from ..errors import SRMOSError

HEADS = ("dense", "global_pool")


def conv_block(in_channels, out_channels, stride, batch_norm=True):
    layers = [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


class Discriminator(nn.Module):
    def __init__(self, in_channels=3, num_features=64, input_size=96, head="dense"):
        super().__init__()
        if head not in HEADS:
            raise SRMOSError(f"Discriminator head must be one of {HEADS}, not {head!r}")
        if head == "dense" and input_size % 16:
            raise SRMOSError(
                f"the dense head needs an input size divisible by 16 (four stride-2 convs), not {input_size}"
            )
        self.arch_args = dict(in_channels=in_channels, num_features=num_features, input_size=input_size, head=head)
        f = num_features
        # (out_channels, stride) for the paper's eight convs: k3n64s1, k3n64s2, k3n128s1, ..., k3n512s2.
        plan = [(f, 1), (f, 2), (2 * f, 1), (2 * f, 2), (4 * f, 1), (4 * f, 2), (8 * f, 1), (8 * f, 2)]
        layers, channels = [], in_channels
        for index, (out_channels, stride) in enumerate(plan):
            layers += conv_block(channels, out_channels, stride, batch_norm=index > 0)
            channels = out_channels
        self.features = nn.Sequential(*layers)
        if head == "dense":
            pooled = nn.Flatten()
            head_inputs = channels * (input_size // 16) ** 2
        else:
            pooled = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            head_inputs = channels
        self.head = nn.Sequential(
            pooled, nn.Linear(head_inputs, 1024), nn.LeakyReLU(0.2, inplace=True), nn.Linear(1024, 1)
        )
        self.input_size = input_size
        self.head_kind = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.head_kind == "dense" and x.shape[-2:] != (self.input_size, self.input_size):
            raise SRMOSError(
                f"this discriminator takes {self.input_size}x{self.input_size} crops, "
                f"got {tuple(x.shape[-2:])}; use head='global_pool' for other sizes"
            )
        return self.head(self.features(x))
