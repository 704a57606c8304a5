"""LPIPS (AlexNet, VGG16) and DISTS: srmos's forward passes against the reference packages' (lpips 0.1.4,
DISTS_pytorch 0.1) computed with the same weights, and the backbone files' rules. ImageNet weights cannot be
downloaded here, so the backbones are stand-ins: random torchvision weights saved under the torchvision file names
in a temporary TORCH_HOME."""

import lpips
import numpy as np
import pytest
import torch
from DISTS_pytorch import DISTS_pt
from torchvision import models
from torchvision.models.vgg import cfgs, make_layers

from sr_models import quality
from sr_models.datasets import get_dataset
from sr_models.errors import WeightsError
from sr_models.quality import backbones, dists_metric, lpips_metric
from sr_models.resize import imresize

ARCHS = {"lpips_alex": "alexnet", "lpips_vgg": "vgg16", "dists": "vgg16"}


def vgg16_features():
    return make_layers(cfgs["D"])  # torchvision's vgg16().features, without building the classifier


@pytest.fixture(scope="module")
def stand_in_home(tmp_path_factory):
    """A TORCH_HOME whose hub cache holds random AlexNet and VGG16 features under torchvision's file names."""
    home = tmp_path_factory.mktemp("torch_home")
    folder = home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.manual_seed(1234)
    for arch, build in (("alexnet", lambda: models.alexnet(weights=None).features), ("vgg16", vgg16_features)):
        features = {f"features.{k}": v for k, v in build().state_dict().items()}
        torch.save(features, folder / backbones.file_name(arch))
    return home


@pytest.fixture
def torch_home(stand_in_home, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(stand_in_home))
    return stand_in_home


@pytest.fixture(scope="module")
def pair(embedded_datasets):
    """A 96x128 crop of Set5's bird and of its bicubic x4 reconstruction (uint8 RGB), plus the border."""
    dataset = get_dataset("Set5", embedded_datasets)
    lr, hr = dataset.load(dataset.images[1])
    sr = imresize(lr, 4)
    return sr[60:164, 60:196], hr[60:164, 60:196]


def stand_in_state(torch_home, arch):
    return torch.load(backbones.backbone_path(arch), weights_only=True)


def as_tensor(image):
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_absent_backbone_is_one_line_naming_the_file_and_where_it_goes(tmp_path, monkeypatch, pair, name):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError) as error:
        quality.compute(name, *pair)
    message = str(error.value)
    assert "\n" not in message
    assert backbones.file_name(ARCHS[name]) in message
    assert str(tmp_path / "hub" / "checkpoints") in message and "$TORCH_HOME/hub/checkpoints/" in message
    assert "--metric-stand-in-weights" in message


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_a_file_that_is_not_imagenet_is_refused_without_the_stand_in_option(torch_home, pair, name):
    with pytest.raises(WeightsError, match="is not torchvision's ImageNet .* --metric-stand-in-weights"):
        quality.compute(name, *pair)


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_stand_in_file_is_loaded_and_marked(torch_home, pair, name):
    context = quality.context_for("cpu", stand_in=True)
    if name == "dists":
        network, note = dists_metric.model(context)
        loaded = torch.nn.Sequential(*[layer for stage in network.stages for layer in stage]).state_dict()
        names = [
            f"features.{i}.{p}" for i in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28) for p in ("weight", "bias")
        ]
        state = stand_in_state(torch_home, "vgg16")
        assert all(torch.equal(a, state[b]) for a, b in zip(loaded.values(), names))
    else:
        network, note = lpips_metric.model(ARCHS[name], name, context)
        state = stand_in_state(torch_home, ARCHS[name])
        assert all(torch.equal(value, state[f"features.{key}"]) for key, value in network.features.state_dict().items())
    assert note == quality.STAND_IN == quality.weights_note(name, context)


def reference_lpips(arch, torch_home):
    net = {"alexnet": "alex", "vgg16": "vgg"}[arch]
    reference = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
    state = stand_in_state(torch_home, arch)
    trunk = {key: state["features." + key.split(".", 1)[1]] for key in reference.net.state_dict()}
    reference.net.load_state_dict(trunk)
    return reference.eval()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lpips_alex", "lpips_vgg"])
def test_lpips_equals_the_lpips_package_with_the_same_weights(torch_home, pair, name):
    sr, hr = pair
    ours = quality.compute(name, sr, hr, crop_border=4, device="cpu", stand_in=True)
    with torch.no_grad():
        theirs = reference_lpips(ARCHS[name], torch_home)(
            as_tensor(sr[4:-4, 4:-4]), as_tensor(hr[4:-4, 4:-4]), normalize=True
        ).item()
    assert ours > 1e-4  # the images differ, so the score is not 0
    assert ours == pytest.approx(theirs, abs=1e-5, rel=1e-5)


@pytest.mark.slow
def test_dists_equals_the_dists_package_with_the_same_weights(torch_home, pair, monkeypatch):
    sr, hr = pair
    ours = quality.compute("dists", sr, hr, crop_border=4, device="cpu", stand_in=True)
    state = stand_in_state(torch_home, "vgg16")
    build_vgg16 = models.vgg16  # DISTS_pt.models is torchvision.models: keep the real builder

    def stand_in_vgg16(pretrained=False, **_):
        model = build_vgg16(weights=None)
        model.features.load_state_dict({key[len("features.") :]: value for key, value in state.items()})
        return model

    monkeypatch.setattr(DISTS_pt.models, "vgg16", stand_in_vgg16)
    reference = DISTS_pt.DISTS(load_weights=True).eval()  # alpha/beta from the wheel's weights.pt
    with torch.no_grad():
        theirs = reference(as_tensor(sr[4:-4, 4:-4]), as_tensor(hr[4:-4, 4:-4])).item()
    assert ours > 1e-4
    assert ours == pytest.approx(theirs, abs=1e-5, rel=1e-5)


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_identical_images_score_zero_and_grey_images_are_scored(torch_home, pair, name):
    sr, hr = pair
    assert quality.compute(name, hr, hr, stand_in=True, device="cpu") == pytest.approx(0.0, abs=1e-6)
    assert quality.compute(name, sr[..., 1], hr[..., 1], stand_in=True, device="cpu") > 0


def test_stand_in_random_weights_without_any_file_are_the_same_every_time(tmp_path, monkeypatch, pair):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    first = backbones.load_features("alexnet", "lpips_alex", stand_in=True)
    second = backbones.load_features("alexnet", "lpips_alex", stand_in=True)
    assert first[1] == second[1] == quality.STAND_IN
    assert all(torch.equal(a, b) for a, b in zip(first[0].state_dict().values(), second[0].state_dict().values()))


def test_a_file_with_imagenets_hash_prefix_is_recognised(tmp_path, monkeypatch):
    path = tmp_path / backbones.file_name("alexnet")
    path.write_bytes(b"x")
    monkeypatch.setattr(backbones, "file_sha256", lambda _: "7be5be79" + "0" * 56)
    assert backbones.is_imagenet_file("alexnet", path)
    monkeypatch.setattr(backbones, "file_sha256", lambda _: "0" * 64)
    assert not backbones.is_imagenet_file("alexnet", path)


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path):
    (tmp_path / backbones.file_name("vgg16")).write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="is not a torch state_dict file"):
        backbones.load_features("vgg16", "dists", weights_dir=tmp_path, stand_in=True)
