"""The checkpoints shipped in sr_models/weights/: the file, its SHA-256, its provenance and its Set5 PSNR are what the
README beside them says, so a changed network, loader or metric cannot pass unnoticed."""

import hashlib
import re

import numpy as np
import pytest

from sr_models import methods
from sr_models.checkpoint import load_checkpoint
from sr_models.datasets import get_dataset
from sr_models.metrics import mean_psnr_ssim

SHIPPED = methods.SHIPPED_WEIGHTS_DIR
README = SHIPPED / "README.md"
SHIPPED_METHODS = ("srresnet-mse", "srgan-mse")


def readme_row(method):
    """The README table row of ``method`` as {column: cell}."""
    lines = [line for line in README.read_text().splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    for line in lines[2:]:
        cells = [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        if cells[0] == method:
            return dict(zip(header, cells, strict=True))
    raise AssertionError(f"{README} has no row for {method}")


def figures(cell):
    psnr, ssim = re.fullmatch(r"([\d.]+) / ([\d.]+)", cell).groups()
    return float(psnr), float(ssim)


@pytest.mark.parametrize("method", SHIPPED_METHODS)
def test_the_shipped_checkpoint_is_the_one_the_readme_describes(method):
    path = SHIPPED / f"{method}.pt"
    row = readme_row(method)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == row["SHA-256"]
    checkpoint = load_checkpoint(path)
    provenance = checkpoint["provenance"]
    assert checkpoint["method"] == method and checkpoint["extra"] == {}  # inference only: no optimiser state
    assert provenance["training_steps"] == checkpoint["step"] == int(row["updates"])
    assert provenance["stand_in_features"] is False and provenance["content_loss"] == "mse"
    assert "train_demo" in provenance["data_name"] and provenance["label"].startswith("srmos CPU-trained")
    assert f"{checkpoint['step']} updates" in provenance["label"]
    assert (provenance["adversarial_weight"] > 0) == method.startswith("srgan")


@pytest.mark.slow
@pytest.mark.parametrize("method", SHIPPED_METHODS)
def test_the_shipped_checkpoint_reaches_the_readme_figure_on_set5(method, embedded_datasets, tmp_path, monkeypatch):
    monkeypatch.setenv("SRMOS_WEIGHTS_DIR", str(tmp_path))  # an empty folder of the user's: the shipped file serves
    upscaler = methods.load(method, device="cpu")
    assert upscaler.info["weights"] == str(SHIPPED / f"{method}.pt")
    dataset = get_dataset("Set5", data_dir=embedded_datasets)
    measured = mean_psnr_ssim(upscaler.upscale, [dataset.load(image) for image in dataset.images])
    psnr, ssim = figures(readme_row(method)["Set5"])
    assert abs(measured[0] - psnr) < 0.01 and abs(measured[1] - ssim) < 0.0001


def test_upscale_runs_with_the_shipped_weights_and_no_weights_flag(tmp_path, monkeypatch):
    from PIL import Image

    from sr_models.__main__ import main

    monkeypatch.setenv("SRMOS_WEIGHTS_DIR", str(tmp_path / "nothing-here-yet"))
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(photo)
    assert main(["upscale", "--method", "srresnet-mse", str(photo), "--output-dir", str(tmp_path / "out")]) == 0
    assert Image.open(tmp_path / "out" / "photo.png").size == (40, 48)
