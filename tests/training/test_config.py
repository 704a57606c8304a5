"""Presets carry the paper's settings; config files and flags override them; bad values are clear errors."""

import json

import pytest

from sr_models.errors import SRMOSError
from sr_models.train.cli import build_parser, config_from_args
from sr_models.train.config import PRESETS, TrainConfig, apply_overrides, preset


def test_presets_cover_every_learned_method_with_the_paper_settings():
    assert set(PRESETS) == {"srresnet-mse", "srresnet-vgg22", "srgan-mse", "srgan-vgg22", "srgan-vgg54"}
    for name in PRESETS:
        c = preset(name)
        assert c.method == name and c.lr == 1e-4 and c.beta1 == 0.9
        assert (c.batch_size, c.crop_size, c.scale, c.num_blocks, c.num_features) == (16, 96, 4, 16, 64)
        assert c.vgg_rescale == pytest.approx(1 / 12.75**2)
    assert preset("srresnet-mse").content_loss == "mse" and not preset("srresnet-mse").gan
    assert preset("srresnet-mse").steps == 1_000_000
    assert preset("srresnet-vgg22").content_loss == "vgg22"
    gan = preset("srgan-vgg54")
    assert gan.content_loss == "vgg54" and gan.adversarial_weight == 1e-3 and gan.gan
    assert gan.steps == 200_000 and gan.lr_milestones == [100_000] and gan.lr_gamma == pytest.approx(0.1)
    assert preset("srgan-mse").content_loss == "mse" and preset("srgan-vgg22").content_loss == "vgg22"
    with pytest.raises(SRMOSError, match="unknown training preset"):
        preset("esrgan")


def test_file_then_flags_override_the_preset(tmp_path):
    (tmp_path / "c.toml").write_text("crop_size = 64\nbatch_size = 8\nlr_milestones = [10, 20]\naugment = true\n")
    args = build_parser().parse_args(
        [
            "--preset",
            "srgan-mse",
            "--config",
            str(tmp_path / "c.toml"),
            "--batch-size",
            "4",
            "--data",
            "a",
            "b",
            "--init",
            "scratch",
            "--no-augment",
        ]
    )
    config, resume = config_from_args(args)
    assert resume is None and config.method == "srgan-mse"
    assert (config.crop_size, config.batch_size, config.lr_milestones) == (64, 4, [10, 20])
    assert config.data == ["a", "b"] and config.augment is False and config.adversarial_weight == 1e-3
    (tmp_path / "c.json").write_text(json.dumps({"lr": 1, "steps": 5}))
    config, _ = config_from_args(build_parser().parse_args(["--config", str(tmp_path / "c.json")]))
    assert config.lr == 1.0 and isinstance(config.lr, float) and config.steps == 5


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(SRMOSError, match="unknown setting 'crop'"):
        apply_overrides(TrainConfig(), {"crop": 3})
    with pytest.raises(SRMOSError, match="'steps'.*got 'many'"):
        apply_overrides(TrainConfig(), {"steps": "many"})
    (tmp_path / "bad.toml").write_text("steps = [")
    with pytest.raises(SRMOSError, match="not valid TOML"):
        config_from_args(build_parser().parse_args(["--config", str(tmp_path / "bad.toml")]))
    with pytest.raises(SRMOSError, match="no training data"):
        TrainConfig().check()
    with pytest.raises(SRMOSError, match="not a multiple of scale"):
        TrainConfig(data=["x"], crop_size=30).check()
    with pytest.raises(SRMOSError, match="--init CHECKPOINT"):
        preset("srgan-vgg54").__class__(**{**preset("srgan-vgg54").to_dict(), "data": ["x"]}).check()


def test_example_config_files_load(repo_root):
    files = sorted((repo_root / "presets").glob("*.toml"))
    assert files
    for path in files:
        config, _ = config_from_args(build_parser().parse_args(["--config", str(path)]))
        assert config.method in PRESETS
