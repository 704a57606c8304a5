import pytest
import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from sr_models.archs import ARCHS, Discriminator, SRResNet, VGGFeatureExtractor, build
from sr_models.archs.srresnet import UpsampleBlock, receptive_radius
from sr_models.archs.vgg import imagenet_cache_file
from sr_models.errors import CheckpointError, SRMOSError, WeightsError


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_srresnet_parameter_count_pinned():
    # Counted by hand: head 3*64*81+64 + PReLU 1; 16 blocks of 2*(64*64*9+64) + 2 BN*128 + 1; body tail
    # 64*64*9+64 + 128; two upsamplers of 64*256*9+256 + 1; tail 64*3*81+3.
    by_hand = (
        (3 * 64 * 81 + 64 + 1)
        + 16 * (2 * (64 * 64 * 9 + 64) + 2 * 128 + 1)
        + (64 * 64 * 9 + 64 + 128)
        + 2 * (64 * 256 * 9 + 256 + 1)
        + (64 * 3 * 81 + 3)
    )
    assert by_hand == 1_549_462
    assert count(SRResNet()) == 1_549_462


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_srresnet_shapes_for_each_scale_and_odd_sizes(scale):
    model = SRResNet(num_blocks=1, num_features=8, scale=scale).eval()
    assert len(model.upsample) == {2: 1, 4: 2, 8: 3}[scale]
    assert model(torch.rand(2, 3, 7, 9)).shape == (2, 3, 7 * scale, 9 * scale)
    assert model.arch_args == dict(in_channels=3, out_channels=3, num_features=8, num_blocks=1, scale=scale)


def test_srresnet_refuses_other_scales():
    with pytest.raises(SRMOSError, match=r"scale must be one of \(2, 4, 8\), not 3"):
        SRResNet(scale=3)


def test_pixel_shuffle_order_channel_to_position():
    # Output channel k of the conv is (k + 1) * input; PixelShuffle puts channel c*4 + i*2 + j at pixel (2h+i, 2w+j).
    block = UpsampleBlock(num_features=1)
    with torch.no_grad():
        block[0].weight.zero_()
        block[0].bias.zero_()
        for k in range(4):
            block[0].weight[k, 0, 1, 1] = k + 1
    out = block(torch.tensor([[[[1.0, 10.0]]]]))
    assert out.tolist() == [[[[1.0, 2.0, 10.0, 20.0], [3.0, 4.0, 30.0, 40.0]]]]


@pytest.mark.parametrize("num_blocks", [1, 3])
def test_receptive_radius_matches_the_network(num_blocks):
    # Perturb one LR pixel; the HR pixels that change must lie within the computed radius (in LR pixels).
    assert receptive_radius() == 40
    torch.manual_seed(0)
    model = SRResNet(num_features=4, num_blocks=num_blocks).double().eval()
    size, centre = 41, 20
    x = torch.rand(1, 3, size, size, dtype=torch.float64)
    y = x.clone()
    y[..., centre, centre] += 1
    with torch.no_grad():
        changed = (model(x) - model(y)).abs().amax(dim=(0, 1)) > 0
    rows, cols = torch.nonzero(changed, as_tuple=True)
    reach = max((rows // 4 - centre).abs().max(), (cols // 4 - centre).abs().max()).item()
    radius = receptive_radius(num_blocks)
    assert radius == 8 + 2 * num_blocks  # 4 + 2B + 1 + (1 + 1/2 + 1), rounded up
    assert radius - 1 <= reach <= radius


def test_discriminator_paper_layout_and_parameter_count():
    d = Discriminator()
    convs = [m for m in d.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.features) == 7
    assert all(m.negative_slope == 0.2 for m in d.modules() if isinstance(m, nn.LeakyReLU))
    chans = [3, 64, 64, 128, 128, 256, 256, 512, 512]
    conv_params = sum(chans[i] * chans[i + 1] * 9 for i in range(8)) + 64 + 2 * sum(chans[2:])
    dense = 512 * 6 * 6 * 1024 + 1024 + 1024 + 1
    assert count(d) == conv_params + dense
    assert d(torch.rand(2, 3, 96, 96)).shape == (2, 1)


def test_discriminator_global_pool_head_any_size():
    d = Discriminator(num_features=8, head="global_pool")
    assert d(torch.rand(3, 3, 40, 56)).shape == (3, 1)
    assert count(d) < count(Discriminator(num_features=8))


def test_discriminator_errors():
    with pytest.raises(SRMOSError, match="takes 96x96 crops, got \\(64, 64\\).*global_pool"):
        Discriminator(num_features=8)(torch.rand(1, 3, 64, 64))
    with pytest.raises(SRMOSError, match="head must be one of"):
        Discriminator(head="mlp")
    with pytest.raises(SRMOSError, match="divisible by 16"):
        Discriminator(input_size=100)


def test_build_by_name():
    assert set(ARCHS) == {"srresnet", "discriminator"}
    assert isinstance(build("srresnet", num_blocks=1), SRResNet)
    with pytest.raises(CheckpointError, match="unknown architecture 'unet'; known: discriminator, srresnet"):
        build("unet")
    with pytest.raises(CheckpointError, match="bad arguments for architecture 'srresnet'"):
        build("srresnet", blocks=3)


# ---- VGG19 ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vgg19_file(tmp_path_factory):
    """A torchvision-format vgg19 state_dict ("features.N.*" keys) from random weights."""
    torch.manual_seed(1)
    features = make_layers(cfgs["E"])
    path = tmp_path_factory.mktemp("vgg") / "vgg19-random.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path, features


@pytest.mark.parametrize("layer, channels, stride", [("22", 128, 2), ("54", 512, 16)])
def test_vgg_cut_points_and_normalisation(vgg19_file, layer, channels, stride):
    path, features = vgg19_file
    extractor = VGGFeatureExtractor(layer=layer, weights=path)
    x = torch.rand(1, 3, 32, 48)
    out = extractor(x)
    assert out.shape == (1, channels, 32 // stride, 48 // stride)
    # phi_{2,2} ends at the ReLU after conv2_2 (torchvision index 8), phi_{5,4} after conv5_4 (index 35).
    cut = {"22": 9, "54": 36}[layer]
    assert isinstance(features[cut - 1], nn.ReLU) and isinstance(features[cut], nn.MaxPool2d)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(out, features[:cut]((x - mean) / std))


def test_vgg_is_frozen_and_stays_in_eval(vgg19_file):
    extractor = VGGFeatureExtractor(layer="22", weights=vgg19_file[0])
    assert not any(p.requires_grad for p in extractor.parameters())
    nn.Sequential(extractor).train()
    assert not extractor.training


def test_vgg_random_weights_only_when_asked(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert VGGFeatureExtractor(layer="22", random_weights=True)(torch.rand(1, 3, 8, 8)).shape == (1, 128, 4, 4)


def test_vgg_hub_cache_never_downloads(monkeypatch, tmp_path, vgg19_file):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    expected = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert imagenet_cache_file() == expected
    with pytest.raises(
        WeightsError,
        match=r"not in the torch hub cache .*nothing is downloaded.*"
        r"\$TORCH_HOME/hub/checkpoints/ or pass a torchvision vgg19 state_dict",
    ):
        VGGFeatureExtractor(layer="22")
    # The same file placed in the cache loads through torchvision's own weights loader.
    expected.parent.mkdir(parents=True)
    expected.write_bytes(vgg19_file[0].read_bytes())
    cached = VGGFeatureExtractor(layer="22")
    torch.testing.assert_close(cached.features[0].weight, vgg19_file[1][0].weight)


def test_vgg_file_errors(tmp_path):
    with pytest.raises(WeightsError, match="nope.pth does not exist; pass a torchvision vgg19 state_dict"):
        VGGFeatureExtractor(weights=tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_text("not a tensor file")
    with pytest.raises(WeightsError, match="junk.pth is not a torch state_dict file"):
        VGGFeatureExtractor(weights=junk)
    other = tmp_path / "other.pth"
    torch.save(SRResNet(num_blocks=1).state_dict(), other)
    with pytest.raises(
        WeightsError,
        match=r"other.pth is not a torchvision vgg19 state_dict "
        r"\(missing features.0.weight",
    ):
        VGGFeatureExtractor(weights=other)
    wrong = {f"features.{k}": torch.zeros(1) for k in make_layers(cfgs["E"]).state_dict()}
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(WeightsError, match="wrong.pth does not fit vgg19: .*size mismatch"):
        VGGFeatureExtractor(weights=tmp_path / "wrong.pth")
    with pytest.raises(SRMOSError, match="VGG layer must be one of"):
        VGGFeatureExtractor(layer="33", random_weights=True)
