"""Network architectures by name, so checkpoints can rebuild them: ``build("srresnet", **arch_args)``."""

from ..errors import CheckpointError
from .discriminator import Discriminator
from .srresnet import SRResNet
from .vgg import VGGFeatureExtractor

ARCHS = {"srresnet": SRResNet, "discriminator": Discriminator}


def build(arch, **arch_args):
    if arch not in ARCHS:
        raise CheckpointError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHS))}")
    try:
        return ARCHS[arch](**arch_args)
    except TypeError as error:
        raise CheckpointError(f"bad arguments for architecture {arch!r}: {error}") from None


__all__ = ["ARCHS", "build", "SRResNet", "Discriminator", "VGGFeatureExtractor"]
