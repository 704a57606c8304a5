"""The trainer: exact resume for both stages, checkpoints the registry loads, keep-last/best, refusals that lose
nothing."""

import dataclasses

import numpy as np
import pytest
import torch

from sr_models.checkpoint import build_generator, load_checkpoint
from sr_models.errors import SRMOSError, WeightsError
from sr_models.train.cli import main
from sr_models.train.trainer import Trainer, config_from_checkpoint, train
from tests.training.helpers import tiny_cli_args, tiny_config, tiny_gan_config


def assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def check_resume_matches(config, tmp_path):
    """N steps straight == N/2, then --resume from the N/2 checkpoint into another folder, then N/2 more."""
    straight = train(config)
    halfway = tmp_path / "a" / "checkpoints" / "step_00000003.pt"
    resumed_config = config_from_checkpoint(halfway, {"output_dir": str(tmp_path / "b")})
    resumed = train(resumed_config, resume=halfway)
    a, b = load_checkpoint(straight["checkpoint"]), load_checkpoint(resumed["checkpoint"])
    assert a["step"] == b["step"] == 6
    assert_same_tensors(a["state_dict"], b["state_dict"])
    state_a, state_b = a["extra"]["training_state"], b["extra"]["training_state"]
    assert state_a["data"] == state_b["data"] and state_a["data"]["epoch"] >= 1  # crossed an epoch boundary
    assert state_a["scheduler_g"] == state_b["scheduler_g"]
    for moment in ("exp_avg", "exp_avg_sq"):
        for p in state_a["optimizer_g"]["state"]:
            torch.testing.assert_close(
                state_a["optimizer_g"]["state"][p][moment],
                state_b["optimizer_g"]["state"][p][moment],
                rtol=1e-5,
                atol=1e-8,
            )
    # A different run (another seed) ends elsewhere: the comparison above could fail.
    other = train(dataclasses.replace(config, seed=1, output_dir=str(tmp_path / "c")))
    assert not torch.allclose(
        load_checkpoint(other["checkpoint"])["state_dict"]["tail.weight"], a["state_dict"]["tail.weight"]
    )
    return a, b


@pytest.mark.slow
def test_srresnet_resume_equals_uninterrupted_run(images, tmp_path):
    a, _ = check_resume_matches(tiny_config(images, tmp_path / "a"), tmp_path)
    # The checkpoint is the registry's format: method named by the preset, generator rebuildable.
    assert a["method"] == "srresnet-mse" and a["arch"] == "srresnet"
    generator = build_generator(a)
    assert generator(torch.rand(1, 3, 4, 4)).shape == (1, 3, 16, 16)
    from sr_models import methods

    upscaler = methods.load("srresnet-mse", weights=tmp_path / "a" / "checkpoints" / "step_00000006.pt")
    assert upscaler.upscale(np.zeros((5, 7, 3), np.uint8)).shape == (20, 28, 3)


@pytest.mark.slow
def test_srgan_resume_equals_uninterrupted_run(images, tmp_path):
    init = train(tiny_config(images, tmp_path / "init", steps=2))["checkpoint"]
    config = tiny_gan_config(
        images,
        tmp_path / "a",
        method="srgan-vgg22",
        content_loss="vgg22",
        vgg_random_weights_for_testing=True,
        init=str(init),
        lr_milestones=[4],
        lr_gamma=0.1,
    )
    a, b = check_resume_matches(config, tmp_path)
    assert a["method"] == "srgan-vgg22"
    state_a, state_b = a["extra"]["training_state"], b["extra"]["training_state"]
    assert_same_tensors(state_a["discriminator"], state_b["discriminator"])
    assert state_a["scheduler_d"]["_last_lr"] == pytest.approx([1e-4])  # 1e-3 then x0.1 from step 4
    # The generator started from the init checkpoint, not from random weights.
    init_weights = load_checkpoint(init)["state_dict"]["head.0.weight"]
    fresh = Trainer(dataclasses.replace(config, output_dir=str(tmp_path / "d")))
    torch.testing.assert_close(fresh.generator.state_dict()["head.0.weight"], init_weights)


def test_keeps_last_k_and_the_best(images, tmp_path):
    scores = iter([20.0, 23.0, 25.0, 22.0, 21.0, 24.0])
    config = tiny_config(images, tmp_path / "run", checkpoint_every=2, val_every=1, keep_last=2)
    result = train(config, validate=lambda generator: {"psnr": next(scores), "ssim": 0.5})
    folder = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["best.pt", "step_00000004.pt", "step_00000006.pt"]
    best = load_checkpoint(folder / "best.pt")
    assert best["step"] == 3 and best["provenance"]["metrics"]["psnr"] == 25.0
    assert result["best"] == {"metric": "psnr", "value": 25.0, "step": 3}
    assert (tmp_path / "run" / "config.json").is_file()
    assert any((tmp_path / "run" / "tensorboard").iterdir())


def test_refuses_to_overwrite_another_run(images, tmp_path):
    config = tiny_config(images, tmp_path / "run", steps=3)
    train(config)
    before = sorted((tmp_path / "run" / "checkpoints").iterdir())
    with pytest.raises(SRMOSError, match="already holds checkpoints"):
        train(config)
    assert sorted((tmp_path / "run" / "checkpoints").iterdir()) == before


def test_vgg_without_weights_stops_before_any_step(images, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(WeightsError, match="--vgg-weights FILE"):
        Trainer(tiny_config(images, tmp_path / "run", content_loss="vgg22"))
    code = main(
        [
            "--preset",
            "srgan-vgg54",
            "--data",
            str(images),
            "--init",
            "scratch",
            "--output-dir",
            str(tmp_path / "run"),
            "--val-dataset",
            "none",
        ]
    )
    assert code == 2 and "--vgg-weights" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cli_trains_and_resumes(images, tmp_path, capsys):
    common = [*tiny_cli_args(images), "--checkpoint-every", "2"]
    assert main(["--preset", "srresnet-mse", "--steps", "2", "--output-dir", str(tmp_path / "a"), *common]) == 0
    assert "trained to step 2" in capsys.readouterr().out
    checkpoint = tmp_path / "a" / "checkpoints" / "step_00000002.pt"
    assert main(["train", "--resume", str(checkpoint), "--steps", "4"]) == 0
    assert load_checkpoint(tmp_path / "a" / "checkpoints" / "step_00000004.pt")["step"] == 4
    assert main(["--resume", str(tmp_path / "nothing.pt")]) == 2


def test_zero_init_residual_starts_as_a_plain_sub_pixel_network(images, tmp_path):
    trainer = Trainer(tiny_config(images, tmp_path / "run", num_blocks=2, zero_init_residual=True))
    g = trainer.generator.train()
    x = torch.rand(2, 3, 6, 6)
    torch.testing.assert_close(g(x), g.tail(g.upsample(g.head(x))))
    plain = Trainer(tiny_config(images, tmp_path / "run2", num_blocks=2)).generator.train()
    assert not torch.allclose(plain(x), plain.tail(plain.upsample(plain.head(x))))


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_and_channels_last_steps_run(images, tmp_path, amp):
    config = tiny_gan_config(
        images,
        tmp_path / "run",
        amp=amp,
        channels_last=True,
    )
    trainer = Trainer(config)
    lr, hr = trainer._to_device(next(trainer.stream))
    assert lr.is_contiguous(memory_format=torch.channels_last)
    before = trainer.generator.tail.weight.detach().clone()
    losses = trainer.train_step(lr, hr)
    assert all(torch.isfinite(v) for v in losses.values())
    assert trainer.scaler_g.is_enabled() == (amp == "fp16")
    assert not torch.equal(before, trainer.generator.tail.weight)
