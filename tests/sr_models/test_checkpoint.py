import datetime
import os

import pytest
import torch
from torch import nn

from sr_models import checkpoint as ckpt_module
from sr_models.archs import Discriminator, SRResNet
from sr_models.checkpoint import FORMAT, build_generator, load_checkpoint, save_checkpoint, unwrap
from sr_models.errors import CheckpointError


def small_generator(seed=0, **arch_args):
    torch.manual_seed(seed)
    model = SRResNet(num_features=8, num_blocks=2, **arch_args)
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):  # non-trivial BN for fusion checks
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.1, 0.1)
    return model.eval()


def small_checkpoint(path, method="srresnet-mse", seed=0, **arch_args):
    """Save a small random SRResNet as an srmos checkpoint; returns (path, model)."""
    model = small_generator(seed, **arch_args)
    save_checkpoint(path, model, method=method, step=7, provenance={"note": "test"})
    return path, model


def test_round_trip_keeps_everything(tmp_path):
    model = small_generator(scale=2)
    extra = {"optimizer": {"state": {0: {"exp_avg": torch.ones(3)}}, "lr": 1e-4}, "rng": torch.arange(4)}
    path = save_checkpoint(
        tmp_path / "sub" / "g.pt",
        model,
        method="srgan-vgg54",
        step=12345,
        provenance={"dataset": "train_demo"},
        extra=extra,
    )
    ckpt = load_checkpoint(path)
    assert set(ckpt) == set(ckpt_module.KEYS)
    assert (ckpt["format"], ckpt["format_version"], ckpt["method"], ckpt["arch"], ckpt["step"]) == (
        FORMAT,
        1,
        "srgan-vgg54",
        "srresnet",
        12345,
    )
    assert ckpt["arch_args"] == model.arch_args
    assert ckpt["provenance"]["dataset"] == "train_demo"
    assert ckpt["provenance"]["torch_version"] == str(torch.__version__)
    assert {"srmos_version", "created_utc"} <= set(ckpt["provenance"])
    torch.testing.assert_close(ckpt["extra"]["optimizer"]["state"][0]["exp_avg"], torch.ones(3))
    rebuilt = build_generator(ckpt)
    assert not rebuilt.training and rebuilt.scale == 2
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


def test_wrapped_models_are_saved_unwrapped(tmp_path):
    model = small_generator()
    assert unwrap(nn.DataParallel(model)) is model
    save_checkpoint(tmp_path / "g.pt", nn.DataParallel(model), method="srresnet-mse")
    assert not any(k.startswith("module.") for k in load_checkpoint(tmp_path / "g.pt")["state_dict"])


def test_save_is_atomic_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path, _ = small_checkpoint(tmp_path / "g.pt")
    before = path.read_bytes()

    def broken_save(obj, file):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, small_generator(seed=1), method="srresnet-mse")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["g.pt"]


def test_save_refuses_what_could_not_be_loaded(tmp_path):
    with pytest.raises(
        CheckpointError,
        match=r"not saving .*g.pt: a datetime.date object, which safe loading "
        "refuses; keep provenance and extra to tensors",
    ):
        save_checkpoint(
            tmp_path / "g.pt",
            small_generator(),
            method="srresnet-mse",
            extra={"config": {"started": datetime.date(2026, 1, 1)}},
        )
    assert os.listdir(tmp_path) == []


def test_save_needs_arch_args(tmp_path):
    with pytest.raises(CheckpointError, match="Conv2d has no arch_args"):
        save_checkpoint(tmp_path / "g.pt", nn.Conv2d(3, 3, 3), method="x")


def test_load_errors(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint .*missing.pt does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match=r"junk.pt is not an srmos checkpoint: torch cannot read it"):
        load_checkpoint(junk)
    bare = tmp_path / "bare.pt"
    torch.save(small_generator().state_dict(), bare)
    with pytest.raises(
        CheckpointError,
        match=r"bare.pt is not an srmos checkpoint \(it looks like a bare "
        r"state_dict\); make one with sr_models.checkpoint.save_checkpoint",
    ):
        load_checkpoint(bare)
    path, _ = small_checkpoint(tmp_path / "g.pt")
    ckpt = torch.load(path, weights_only=True)
    torch.save({**ckpt, "format_version": 2}, tmp_path / "v2.pt")
    with pytest.raises(CheckpointError, match="format version 2; this srmos reads version 1"):
        load_checkpoint(tmp_path / "v2.pt")
    torch.save({k: v for k, v in ckpt.items() if k != "step"}, tmp_path / "damaged.pt")
    with pytest.raises(CheckpointError, match="damaged.pt is a damaged srmos checkpoint: it lacks step"):
        load_checkpoint(tmp_path / "damaged.pt")


def test_build_generator_errors(tmp_path):
    path, _ = small_checkpoint(tmp_path / "g.pt")
    ckpt = load_checkpoint(path)
    ckpt["arch_args"]["num_features"] = 16
    with pytest.raises(CheckpointError, match=r"weights do not fit srresnet .*'num_features': 16.*size mismatch"):
        build_generator(ckpt)
    ckpt = load_checkpoint(path)
    ckpt["arch"] = "vdsr"
    with pytest.raises(CheckpointError, match="unknown architecture 'vdsr'"):
        build_generator(ckpt)


def test_discriminator_checkpoints_rebuild(tmp_path):
    d = Discriminator(num_features=8, head="global_pool")
    save_checkpoint(tmp_path / "d.pt", d, method="srgan-vgg54", arch="discriminator")
    assert isinstance(build_generator(load_checkpoint(tmp_path / "d.pt")), Discriminator)
