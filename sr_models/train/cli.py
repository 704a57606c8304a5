"""``python -m sr_models train``: pick a preset, override it from a config file and flags, train, validate on Set5.

Every TrainConfig field is a flag (``--crop-size 64``, ``--augment/--no-augment``, ``--lr-milestones 100000``).
Precedence: preset < ``--config FILE`` (.toml/.json) < flags. ``--resume CHECKPOINT`` starts from the configuration
stored in the checkpoint instead of the preset. Under torchrun every process runs this; only rank 0 writes.
"""

import argparse
import dataclasses
import os
import sys

from sr_models.errors import SRMOSError
from sr_models.train.config import PRESETS, TrainConfig, apply_overrides, preset, read_config_file

# Flags with a short explanation; the rest are documented by their TrainConfig field name and default.
HELP = {
    "data": "folder(s) of HR training images, searched recursively",
    "init": "generator checkpoint to start from (SRGAN stage: the SRResNet-MSE result), or 'scratch'",
    "steps": "total number of updates (a resumed run continues up to this)",
    "output_dir": "where checkpoints/, tensorboard/ and config.json go",
    "vgg_weights": "torchvision vgg19 state_dict file (default: the torch hub cache)",
    "vgg_random_weights_for_testing": "random VGG19 weights: for tests only, the losses are meaningless",
    "amp": "mixed precision on the GPU: none, bf16 or fp16 (with a GradScaler)",
    "val_dataset": "validation set name or folder ('none' to skip validation)",
    "val_data_dir": "folder holding the validation set (default: $SRMOS_DATA_DIR or data/datasets)",
}


def add_arguments(parser):
    """Add --preset, --config, --resume and one flag per TrainConfig field; absent flags stay out of the namespace."""
    suppress = argparse.SUPPRESS
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=suppress,
        help="the paper's settings for a registry method (default: the config file's 'preset', else srresnet-mse)",
    )
    parser.add_argument(
        "--config", default=suppress, help="TOML or JSON file of settings named like the flags (with underscores)"
    )
    parser.add_argument(
        "--resume", default=suppress, help="training checkpoint to continue, with its optimiser, RNG and data state"
    )
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        text = HELP.get(f.name, f"default {default!r} (preset may change it)")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=suppress, help=text)
        elif isinstance(default, list):
            item = int if f.name == "lr_milestones" else str
            parser.add_argument(flag, nargs="*" if item is int else "+", type=item, default=suppress, help=text)
        elif isinstance(default, (int, float)):
            parser.add_argument(flag, type=type(default), default=suppress, help=text)
        else:
            parser.add_argument(flag, default=suppress, help=text)
    return parser


def build_parser(prog="python -m sr_models train"):
    parser = argparse.ArgumentParser(prog=prog, description="Train SRResNet / SRGAN as in the SRGAN paper.")
    return add_arguments(parser)


OPTION_NAMES = {"preset", "config", "resume", *(f.name for f in dataclasses.fields(TrainConfig))}


def config_from_args(args):
    """(TrainConfig, resume path or None) from parsed arguments."""
    options = {k: v for k, v in vars(args).items() if k in OPTION_NAMES}
    preset_name, config_file = options.pop("preset", None), options.pop("config", None)
    resume = options.pop("resume", None)
    file_values = read_config_file(config_file) if config_file is not None else {}
    preset_name = preset_name or file_values.pop("preset", None) or "srresnet-mse"
    file_values.pop("preset", None)
    if resume is not None:
        from sr_models.train.trainer import config_from_checkpoint

        config = config_from_checkpoint(resume)
    else:
        config = preset(preset_name)
    config = apply_overrides(config, file_values, source=config_file)
    return apply_overrides(config, options, source="the command line"), resume


SAMPLE_LR_SIZE = 48  # LR side of the fixed TensorBoard sample (192x192 HR at x4)


def sample_crop(lr, hr, scale, size=SAMPLE_LR_SIZE):
    """The fixed TensorBoard sample: the centre ``size`` x ``size`` LR crop of a validation image (the whole image
    when smaller) and its HR region, as NCHW float tensors (LR in [0, 1], HR in [-1, 1], grey made RGB)."""
    import numpy as np
    import torch

    lr, hr = (np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a[..., :3] for a in (lr, hr))
    h, w = min(size, lr.shape[0]), min(size, lr.shape[1])
    top, left = (lr.shape[0] - h) // 2, (lr.shape[1] - w) // 2
    lr = lr[top : top + h, left : left + w]
    hr = hr[top * scale : (top + h) * scale, left * scale : (left + w) * scale]

    def tensor(a):
        return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float()

    return tensor(lr) / 255.0, tensor(hr) / 127.5 - 1.0


def build_validator(config):
    """A validate(generator) callable: mean Y-channel PSNR/SSIM on the validation set (None when switched off).
    Its ``sample`` is the fixed crop of the first validation image that TensorBoard shows at every validation."""
    if config.val_dataset.lower() in ("", "none"):
        return None
    from sr_models.datasets import get_dataset
    from sr_models.inference import upscale_array
    from sr_models.metrics import mean_psnr_ssim

    dataset = get_dataset(config.val_dataset, data_dir=config.val_data_dir, scale=config.scale)
    pairs = [dataset.load(image) for image in dataset.images]

    def validate(generator):
        device = next(generator.parameters()).device

        def upscale(lr):
            return upscale_array(generator, lr, device=device, amp=False)  # fp32: PSNR of the weights, not of bf16

        psnr, ssim = mean_psnr_ssim(upscale, pairs, crop_border=config.scale)
        return {"psnr": psnr, "ssim": ssim}

    validate.sample = sample_crop(*pairs[0], config.scale)
    return validate


def run(args):
    """Train as the parsed arguments say; returns Trainer.run()'s dict. SRMOSErrors go to the caller."""
    from sr_models.train.trainer import train

    config, resume = config_from_args(args)
    result = train(config, validate=build_validator(config.check()), resume=resume)
    result.setdefault("gan", config.gan)
    return result


def summary(result, gan=None):
    """One line for the end of a run: which checkpoint is the model (GAN stage: the final one; MSE stage: best.pt,
    the highest validation PSNR, or the final one)."""
    gan = result.get("gan", False) if gan is None else gan
    best = result["best"]
    text = f"trained to step {result['step']}; last checkpoint {result['checkpoint']}"
    if gan:
        return text + " (the model of a GAN run: install this one; no PSNR-best checkpoint is kept)"
    return text + (f"; best {best['metric']} {best['value']:.3f} at step {best['step']} (best.pt)" if best else "")


def main(argv=None, prog="python -m sr_models train"):
    """Parse argv, train; returns the exit status (0 done, 2 a user error reported on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        argv = argv[1:]
    args = build_parser(prog).parse_args(argv)
    try:
        result = run(args)
    except SRMOSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result["checkpoint"] is not None or os.environ.get("RANK", "0") == "0":  # once under torchrun
        print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
