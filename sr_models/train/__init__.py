"""Training SRResNet and the SRGAN variants (two stages, one trainer). See docs/training.md."""

from sr_models.train.config import PRESETS, TrainConfig, preset


def train(config, *, validate=None, resume=None):
    """Train per ``config`` (a TrainConfig); see sr_models.train.trainer.train."""
    from sr_models.train.trainer import train as run

    return run(config, validate=validate, resume=resume)


__all__ = ["PRESETS", "TrainConfig", "preset", "train"]
