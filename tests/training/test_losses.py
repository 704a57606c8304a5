"""The paper's losses against independently computed values."""

import math

import numpy as np
import pytest
import torch

from sr_models.errors import SRMOSError, WeightsError
from sr_models.losses import (
    VGG_RESCALE,
    PixelMSELoss,
    VGGContentLoss,
    content_loss,
    discriminator_loss,
    generator_adversarial_loss,
)


def log_sigmoid(x):
    return -math.log1p(math.exp(-x))


def test_adversarial_loss_is_minus_log_d_of_fake():
    logits = torch.tensor([[0.3], [-1.2], [2.0]], dtype=torch.float64)
    expected = np.mean([-log_sigmoid(x) for x in (0.3, -1.2, 2.0)])
    assert generator_adversarial_loss(logits).item() == pytest.approx(expected, rel=1e-12)


def test_discriminator_loss_is_binary_cross_entropy():
    real = torch.tensor([[1.5], [-0.5]], dtype=torch.float64)
    fake = torch.tensor([[0.2], [-2.5]], dtype=torch.float64)
    # -log D(HR) - log(1 - D(G)), with log(1 - sigmoid(x)) = log sigmoid(-x).
    expected = np.mean([-log_sigmoid(x) for x in (1.5, -0.5)]) + np.mean([-log_sigmoid(-x) for x in (0.2, -2.5)])
    assert discriminator_loss(real, fake).item() == pytest.approx(expected, rel=1e-12)


def test_losses_stay_finite_for_confident_discriminators():
    # sigmoid(-200) is 0 in float32: sigmoid-then-log would give inf; BCE-with-logits gives 200.
    logits = torch.tensor([[-200.0]], requires_grad=True)
    loss = generator_adversarial_loss(logits)
    loss.backward()
    assert loss.item() == pytest.approx(200.0)
    assert torch.isfinite(logits.grad).all() and logits.grad.item() == pytest.approx(-1.0)
    assert discriminator_loss(torch.tensor([[-300.0]]), torch.tensor([[300.0]])).item() == pytest.approx(600.0)


def test_pixel_mse():
    sr, hr = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert PixelMSELoss()(sr, hr).item() == pytest.approx(0.25)


def test_vgg_loss_maps_to_unit_range_and_rescales():
    assert VGG_RESCALE == pytest.approx(1 / 162.5625)
    torch.manual_seed(0)
    loss = VGGContentLoss("22", random_weights=True)
    sr = torch.rand(2, 3, 24, 24, requires_grad=True)
    hr = torch.rand(2, 3, 24, 24) * 2 - 1
    value = loss(sr * 2 - 1, hr)
    # Independently: ImageNet-normalise [0, 1] images and run torchvision's first 9 vgg19 layers.
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    features = loss.vgg.features
    expected = ((features((sr - mean) / std) - features(((hr + 1) / 2 - mean) / std)) ** 2).mean() / 12.75**2
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()
    assert sr.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())  # VGG stays frozen


def test_vgg_loss_without_weights_says_how_to_provide_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsError, match="hub cache"):
        content_loss("vgg54")
    with pytest.raises(WeightsError, match="does not exist"):
        content_loss("vgg22", vgg_weights=tmp_path / "nothing.pth")
    with pytest.raises(SRMOSError, match="mse, vgg22 or vgg54"):
        content_loss("l1")
