"""GAN runs keep no PSNR-best checkpoint, the TensorBoard sample is one fixed validation crop, the CPU GAN preset."""

import dataclasses

import numpy as np
import torch

from sr_models.train.cli import sample_crop, summary
from sr_models.train.config import TrainConfig, apply_overrides, preset, read_config_file
from sr_models.train.trainer import Trainer, train
from tests.training.helpers import tiny_config, tiny_gan_config


def test_a_gan_run_keeps_no_best_checkpoint_and_says_the_final_one_is_the_model(images, tmp_path):
    init = train(tiny_config(images, tmp_path / "init", steps=2))["checkpoint"]
    scores = iter([30.0, 20.0, 21.0, 22.0])
    config = tiny_gan_config(
        images,
        tmp_path / "gan",
        init=str(init),
        steps=4,
        val_every=1,
        checkpoint_every=2,
    )
    result = train(config, validate=lambda generator: {"psnr": next(scores), "ssim": 0.5})
    names = sorted(p.name for p in (tmp_path / "gan" / "checkpoints").iterdir())
    assert names == ["step_00000002.pt", "step_00000004.pt"]  # no best.pt, though step 1 had the best PSNR
    assert result["best"] is None
    text = summary({**result, "gan": True})
    assert "step_00000004.pt" in text and "install this one" in text and "(best.pt)" not in text


def test_the_mse_stage_still_keeps_best(images, tmp_path):
    scores = iter([30.0, 20.0])
    config = tiny_config(images, tmp_path / "mse", steps=2, val_every=1, checkpoint_every=2)
    result = train(config, validate=lambda generator: {"psnr": next(scores)})
    assert (tmp_path / "mse" / "checkpoints" / "best.pt").is_file() and result["best"]["step"] == 1
    assert "(best.pt)" in summary(result)


def test_sample_is_a_fixed_centre_crop_of_a_validation_image():
    lr = np.arange(60 * 50 * 3, dtype=np.uint8).reshape(60, 50, 3)
    hr = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)
    a, b = sample_crop(lr, hr, 4, size=16)
    assert a.shape == (1, 3, 16, 16) and b.shape == (1, 3, 64, 64)
    torch.testing.assert_close(a[0, :, 0, 0] * 255, torch.tensor(lr[22, 17], dtype=torch.float32))
    torch.testing.assert_close((b[0, :, 0, 0] + 1) * 127.5, torch.tensor(hr[88, 68], dtype=torch.float32))
    grey_lr, grey_hr = sample_crop(lr[..., 0], hr[..., 0], 4, size=100)  # smaller than the crop: the whole image
    assert grey_lr.shape == (1, 3, 60, 50) and grey_hr.shape == (1, 3, 240, 200)


def test_tensorboard_sample_is_the_validators_crop_beside_bicubic(images, tmp_path):
    def validate(generator):
        return {"psnr": 1.0}

    lr = torch.rand(1, 3, 8, 8)
    validate.sample = (lr, torch.rand(1, 3, 32, 32) * 2 - 1)
    trainer = Trainer(tiny_config(images, tmp_path / "s"), validate=validate)
    trainer.generator.eval()
    with torch.no_grad():
        first = trainer._sample_row(torch.rand(4, 3, 4, 4), torch.rand(4, 3, 16, 16))
        second = trainer._sample_row(torch.rand(4, 3, 4, 4), torch.rand(4, 3, 16, 16))
    assert first.shape == (1, 3, 32, 96)  # bicubic | SR | HR of the validation crop, not of the training batch
    torch.testing.assert_close(first, second)
    from sr_models.resize import imresize_torch

    torch.testing.assert_close(first[..., :32], imresize_torch(lr, 4).clamp(0, 1))


def test_cpu_gan_preset_is_a_small_gan_recipe(repo_root):
    values = read_config_file(repo_root / "presets" / "srgan-mse-cpu.toml")
    config = apply_overrides(preset(values.pop("preset")), values, source="preset file")
    assert config.gan and config.method == "srgan-mse" and config.disc_head == "global_pool"
    assert (config.num_blocks, config.num_features, config.crop_size) == (4, 32, 64)
    tiny = read_config_file(repo_root / "presets" / "tiny-cpu.toml")  # its init is the tiny-cpu generator
    assert (tiny["num_blocks"], tiny["num_features"]) == (config.num_blocks, config.num_features)


def test_old_checkpoints_resume_config_without_new_fields():
    stored = dataclasses.asdict(TrainConfig())
    assert apply_overrides(TrainConfig(), stored).gan is False
