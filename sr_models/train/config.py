"""Training configuration: one dataclass, one preset per learned registry method, overrides from files and flags.

Precedence: preset < config file (TOML or JSON) < command-line flags. Every field is a flag (``--crop-size 64``).
"""

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from sr_models.errors import SRMOSError

CONTENT_LOSSES = ("mse", "vgg22", "vgg54")
AMP_MODES = ("none", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Everything one training run needs; the defaults are the paper's SRResNet-MSE settings."""

    method: str = "srresnet-mse"  # name written into checkpoints (the registry method they serve)
    # data
    data: list = field(default_factory=list)  # folders of HR images (or of pre-extracted HR sub-images)
    lr_data: Optional[str] = None  # folder of pre-made LR images with the same names as data[0]'s, else LR on the fly
    scale: int = 4
    crop_size: int = 96  # HR crop; the LR crop is crop_size // scale
    batch_size: int = 16  # global batch: split across processes under torchrun
    augment: bool = False  # random flips and 90-degree rotations (the paper used none)
    num_workers: int = 4
    cache_images: bool = False  # keep decoded images in memory (each worker its own copy): for small sets
    # networks (paper: 64 features, 16 residual blocks; discriminator with the dense head)
    num_features: int = 64
    num_blocks: int = 16
    disc_features: int = 64
    disc_head: str = "dense"
    zero_init_residual: bool = False  # start each residual branch's last BN at scale 0 (faster start; not the paper's)
    # losses
    content_loss: str = "mse"
    vgg_rescale: float = 1.0 / 12.75**2
    adversarial_weight: float = 0.0  # 0: SRResNet stage; 1e-3: SRGAN stage
    vgg_weights: Optional[str] = None  # a VGG19 state_dict file; None: torchvision's cached ImageNet weights
    vgg_random_weights_for_testing: bool = False
    # optimisation
    steps: int = 1_000_000
    lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    lr_milestones: list = field(default_factory=list)  # steps where lr is multiplied by lr_gamma
    lr_gamma: float = 0.1
    init: Optional[str] = None  # generator checkpoint to start from; "scratch" starts a GAN from random weights
    seed: int = 0
    # speed
    device: str = "auto"
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    # bookkeeping
    output_dir: str = "runs/train"
    log_every: int = 100
    val_every: int = 5000
    checkpoint_every: int = 10000
    keep_last: int = 3
    progress: bool = True
    val_data_dir: Optional[str] = None  # where the validation set lives; None: $SRMOS_DATA_DIR or data/datasets
    val_dataset: str = "Set5"

    @property
    def gan(self):
        return self.adversarial_weight > 0

    def to_dict(self):
        return dataclasses.asdict(self)

    def check(self):
        """Raise SRMOSError on values that cannot work, before anything is built."""
        problems = []
        if self.content_loss not in CONTENT_LOSSES:
            problems.append(f"content_loss must be one of {', '.join(CONTENT_LOSSES)}, not {self.content_loss!r}")
        if self.amp not in AMP_MODES:
            problems.append(f"amp must be one of {', '.join(AMP_MODES)}, not {self.amp!r}")
        if self.crop_size % self.scale:
            problems.append(f"crop_size {self.crop_size} is not a multiple of scale {self.scale}")
        for name in ("scale", "crop_size", "batch_size", "steps", "log_every", "val_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        if self.keep_last < 1:
            problems.append("keep_last must be at least 1")
        if not self.data:
            problems.append("no training data: give --data DIR (a folder of HR images)")
        if self.gan and self.init is None:
            problems.append(
                "SRGAN training starts from a trained SRResNet: give --init CHECKPOINT "
                "(the SRResNet-MSE stage's result: its checkpoints/best.pt, the highest validation PSNR, or its final "
                "step_*.pt), or --init scratch"
            )
        if problems:
            raise SRMOSError("bad training configuration: " + "; ".join(problems))
        return self


def _srgan(content_loss):
    # Paper: generator initialised from SRResNet-MSE, 1e5 updates at 1e-4 then 1e5 at 1e-5, k = 1.
    return dict(
        content_loss=content_loss,
        adversarial_weight=1e-3,
        steps=200_000,
        lr=1e-4,
        lr_milestones=[100_000],
        lr_gamma=0.1,
        checkpoint_every=5000,
        val_every=2500,
    )


PRESETS = {
    "srresnet-mse": dict(content_loss="mse", adversarial_weight=0.0, steps=1_000_000, lr=1e-4),
    "srresnet-vgg22": dict(content_loss="vgg22", adversarial_weight=0.0, steps=1_000_000, lr=1e-4),
    "srgan-mse": _srgan("mse"),
    "srgan-vgg22": _srgan("vgg22"),
    "srgan-vgg54": _srgan("vgg54"),
}


def preset(name):
    """The paper's settings for one registry method, as a TrainConfig."""
    if name not in PRESETS:
        raise SRMOSError(f"unknown training preset {name!r}: choose one of {', '.join(PRESETS)}")
    return TrainConfig(method=name, **PRESETS[name])


def read_config_file(path):
    """A dict of overrides from a .toml or .json file (flat keys named like the TrainConfig fields)."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise SRMOSError(f"cannot read the config file {path}: {exc.strerror}") from exc
    try:
        if path.suffix == ".toml":
            values = tomllib.loads(text.decode())
        elif path.suffix == ".json":
            values = json.loads(text)
        else:
            raise SRMOSError(f"config file {path} must end in .toml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SRMOSError(f"config file {path} is not valid {path.suffix[1:].upper()}: {exc}") from exc
    if not isinstance(values, dict):
        raise SRMOSError(f"config file {path} must hold a table of settings")
    return values


def apply_overrides(config, overrides, source="overrides"):
    """A copy of config with overrides applied; unknown keys and wrong types are SRMOSErrors."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    changes = {}
    for key, value in overrides.items():
        name = key.replace("-", "_")
        if name not in fields:
            raise SRMOSError(f"unknown setting {key!r} in {source}: known settings are {', '.join(fields)}")
        changes[name] = _coerce(name, value, getattr(config, name), source)
    if isinstance(changes.get("data"), str):
        changes["data"] = [changes["data"]]
    return dataclasses.replace(config, **changes)


def _coerce(name, value, current, source):
    """Check that a value fits the field it replaces (ints may stand for floats; None clears optional fields)."""
    if value is None or current is None:
        return value
    if isinstance(current, bool):
        ok = isinstance(value, bool)
    elif isinstance(current, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(current, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(current, list):
        ok = isinstance(value, (list, tuple, str))
        value = list(value) if isinstance(value, (list, tuple)) else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise SRMOSError(f"setting {name!r} in {source} should be like {current!r}, got {value!r}")
    return value
