"""A small SRResNet (the paper's layout, 4 blocks of 32 features) trained briefly on train_demo beats bicubic on
Set5."""

import numpy as np
import pytest
import torch

from sr_models.datasets import get_dataset
from sr_models.metrics import psnr_y
from sr_models.resize import imresize
from sr_models.train.cli import build_validator
from sr_models.train.config import apply_overrides, preset, read_config_file
from sr_models.train.trainer import train


@pytest.mark.slow
def test_small_srresnet_beats_bicubic_on_set5(shared_datasets, repo_root, tmp_path):
    # presets/tiny-cpu.toml is the documented recipe; validation only at the end keeps the test short.
    settings = read_config_file(repo_root / "presets" / "tiny-cpu.toml")
    settings.pop("preset")
    config = apply_overrides(preset("srresnet-mse"), settings)
    config = apply_overrides(
        config,
        {
            "data": [str(shared_datasets / "train_demo")],
            "output_dir": str(tmp_path / "run"),
            "progress": False,
            "num_workers": 0,
            "device": "cpu",
            "val_data_dir": str(shared_datasets),
            "val_every": config.steps,
            "checkpoint_every": config.steps,
        },
    )
    # One thread: the figure below was measured so (thread count changes oneDNN's summation order), and on a busy
    # 2-core machine one thread ran ~3 it/s where two fought each other to a crawl.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(config, validate=build_validator(config))
    finally:
        torch.set_num_threads(threads)
    # Bicubic on the same LR images, computed independently of the validator.
    set5 = get_dataset("Set5", data_dir=shared_datasets)
    bicubic = np.mean([psnr_y(imresize(lr, scale=4), hr, crop_border=4) for lr, hr in map(set5.load, set5.images)])
    assert bicubic == pytest.approx(28.42, abs=0.05)
    print(f"Set5 PSNR after {config.steps} steps: {result['metrics']['psnr']:.2f} dB, bicubic {bicubic:.2f} dB")
    assert result["metrics"]["psnr"] > bicubic
