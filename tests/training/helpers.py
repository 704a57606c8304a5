"""Helpers of the training tests (fixtures are in conftest.py)."""

import dataclasses

from sr_models.train.config import TrainConfig


def tiny_config(images, output_dir, **changes):
    """A TrainConfig small enough for a test: 1 block of 8 features, 6 steps on 16x16 crops, no validation."""
    config = TrainConfig(
        method="srresnet-mse",
        data=[str(images)],
        crop_size=16,
        batch_size=4,
        num_blocks=1,
        num_features=8,
        disc_features=4,
        steps=6,
        lr=1e-3,
        num_workers=0,
        progress=False,
        log_every=1,
        val_every=100,
        checkpoint_every=3,
        keep_last=5,
        device="cpu",
        output_dir=str(output_dir),
        val_dataset="none",
    )
    return dataclasses.replace(config, **changes)


def tiny_gan_config(images, output_dir, **changes):
    """``tiny_config`` of an SRGAN run (srgan-mse, adversarial weight 1e-3, from scratch unless ``changes`` say)."""
    return tiny_config(
        images, output_dir, **{"method": "srgan-mse", "adversarial_weight": 1e-3, "init": "scratch", **changes}
    )


def tiny_cli_args(images, *, batch_size=4):
    """The command-line flags of a tiny CPU run on ``images`` (``python -m sr_models train`` and ``manage.py
    train_model`` take the same): 1 block of 8 features on 16x16 crops, no validation, no progress bar."""
    return [
        "--data",
        str(images),
        "--crop-size",
        "16",
        "--batch-size",
        str(batch_size),
        "--num-blocks",
        "1",
        "--num-features",
        "8",
        "--num-workers",
        "0",
        "--no-progress",
        "--val-dataset",
        "none",
        "--device",
        "cpu",
    ]
