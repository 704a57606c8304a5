import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sr_models.archs import SRResNet
from sr_models.archs.srresnet import receptive_radius
from sr_models.errors import ImageError, SRMOSError
from sr_models.inference import (
    DEFAULT_TILE_OVERLAP,
    SubPixelConv,
    UpsampleTail,
    fuse_for_inference,
    resolve_device,
    tile_spans,
    to_uint8,
    upscale_array,
    upscale_batch,
)
from sr_models.resize import imresize
from tests.sr_models.test_checkpoint import small_generator


def random_image(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


class NearestModel(nn.Module):
    """Maps LR v/255 to 2 v/255 - 1, nearest x4: the pipeline must give back nearest-upscaled LR exactly."""

    scale = 4

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return F.interpolate(x * 2 - 1, scale_factor=4, mode="nearest") + self.dummy


def test_lr_scaling_and_output_conversion_are_exact():
    image = random_image((5, 7, 3))
    assert np.array_equal(upscale_array(NearestModel(), image), image.repeat(4, 0).repeat(4, 1))


def test_to_uint8_rounds_and_clips():
    values = torch.tensor([-3.0, -1.0, -0.999, 0.0, 1.0, 2.0, 0.5]).view(1, 1, 1, 7).expand(1, 3, 1, 7)
    # (x + 1) / 2 * 255: -0.999 -> 0.1275 -> 0; 0 -> 127.5 -> 128 (half to even); 0.5 -> 191.25 -> 191.
    assert to_uint8(values)[0, 0, :, 0].tolist() == [0, 0, 0, 128, 255, 255, 191]
    grey = torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1, 1)  # channel mean 0 -> 128
    assert to_uint8(grey, grey=True).tolist() == [[[128]]]


def test_fuse_for_inference_keeps_outputs():
    torch.manual_seed(0)
    model = SRResNet().eval()
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
    fused = fuse_for_inference(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert isinstance(fused.tail, UpsampleTail) and isinstance(fused.upsample[-1], nn.Identity)
    assert not any(isinstance(m, nn.PReLU) for m in fused.modules())  # all 19 computed in place
    assert sum(isinstance(m, nn.LeakyReLU) and m.inplace for m in fused.modules()) == 18  # the 19th in UpsampleTail
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = torch.rand(2, 3, 13, 10)
    with torch.inference_mode():
        torch.testing.assert_close(
            fused(x.contiguous(memory_format=torch.channels_last)), model(x), rtol=1e-4, atol=1e-4
        )


@pytest.mark.parametrize("kernel", [3, 5, 9])
def test_sub_pixel_conv_equals_conv_after_pixel_shuffle(kernel):
    torch.manual_seed(kernel)
    conv = nn.Conv2d(4, 3, kernel, padding=kernel // 2).double()
    a = torch.rand(2, 16, 6, 7, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(SubPixelConv(conv)(a), conv(F.pixel_shuffle(a, 2)))


def test_tile_spans_cover_the_axis():
    assert tile_spans(10, 4, 2) == [(0, 4, 0, 6), (4, 8, 2, 10), (8, 10, 6, 10)]
    assert tile_spans(100, 64, 40) == [(0, 50, 0, 90), (50, 100, 10, 100)]
    assert tile_spans(5, 64, 40) == [(0, 5, 0, 5)]


def test_tiling_matches_untiled_once_overlap_covers_receptive_field():
    model = small_generator()
    image = random_image((37, 29, 3))
    whole = upscale_array(model, image, tile=0)
    radius = receptive_radius(num_blocks=2)
    assert np.array_equal(upscale_array(model, image, tile=12, tile_overlap=radius), whole)
    too_little = upscale_array(model, image, tile=12, tile_overlap=2)
    assert np.abs(too_little.astype(int) - whole).max() > 1


@pytest.mark.slow
def test_tiling_the_paper_network_with_the_default_overlap():
    assert DEFAULT_TILE_OVERLAP == receptive_radius() == 40
    torch.manual_seed(0)
    model = fuse_for_inference(SRResNet().eval())
    image = random_image((90, 12, 3))  # two tiles of 45 rows; each window stops 40 rows past its core
    whole = upscale_array(model, image, tile=0)
    tiled = upscale_array(model, image, tile=48)
    assert np.abs(tiled.astype(int) - whole).max() <= 1 and (tiled != whole).mean() < 1e-4


def test_large_images_tile_automatically_and_batch_tiles(monkeypatch):
    model = small_generator()
    image = random_image((30, 20, 3))
    whole = upscale_array(model, image, tile=0)
    monkeypatch.setattr("sr_models.inference.DEFAULT_TILE", 10)
    calls = []
    model.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    tiled = upscale_batch(model, [image], tile_overlap=12, batch_size=4)[0]
    assert np.array_equal(tiled, whole)
    assert sum(calls) == 6 and max(calls) > 1  # 3 x 2 tiles, equal-sized ones together


def test_grey_output_is_the_channel_mean():
    model = small_generator()
    grey = random_image((9, 11))
    out = upscale_array(model, grey)
    assert out.shape == (36, 44) and out.dtype == np.uint8
    rgb = upscale_array(model, np.dstack([grey] * 3)).astype(float)
    assert np.abs(out - rgb.mean(axis=2)).max() <= 1


def test_rgba_alpha_is_bicubic_and_colour_is_unchanged():
    model = small_generator()
    rgba = random_image((8, 6, 4))
    out = upscale_array(model, rgba)
    assert out.shape == (32, 24, 4)
    assert np.array_equal(out[:, :, 3], imresize(rgba[:, :, 3], scale=4, method="bicubic"))
    assert np.array_equal(out[:, :, :3], upscale_array(model, np.ascontiguousarray(rgba[:, :, :3])))


def test_odd_sizes_and_batches_match_single_images():
    model = small_generator()
    images = [
        random_image((7, 5, 3), 1),
        random_image((7, 5, 3), 2),
        random_image((3, 9), 3),
        random_image((7, 5, 3), 4),
        random_image((1, 1, 3), 5),
    ]
    batched = upscale_batch(model, images, batch_size=2)
    for image, out in zip(images, batched):
        assert out.shape == (image.shape[0] * 4, image.shape[1] * 4) + image.shape[2:]
        assert np.array_equal(out, upscale_array(model, image))


def test_training_mode_is_restored():
    model = small_generator().train()
    upscale_array(model, random_image((4, 4, 3)))
    assert model.training


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((4, 4, 3), np.float32), "upscaling takes uint8 images, got float32"),
        (np.zeros((4, 4, 2), np.uint8), r"HxW, HxWx3 or HxWx4 images, got shape \(4, 4, 2\)"),
        (np.zeros((4,), np.uint8), r"got shape \(4,\)"),
    ],
)
def test_bad_images(image, message):
    with pytest.raises(ImageError, match=message):
        upscale_array(small_generator(), image)


def test_bad_tiles_and_devices(monkeypatch):
    with pytest.raises(SRMOSError, match=r"tile \(-1\) and tile overlap \(40\) must not be negative"):
        upscale_array(small_generator(), random_image((4, 4, 3)), tile=-1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SRMOSError, match="device cuda was asked for but torch finds no CUDA GPU here"):
        resolve_device("cuda")
    with pytest.raises(SRMOSError, match="unknown device 'gpu0'; use cpu or cuda"):
        resolve_device("gpu0")
    assert resolve_device(None, small_generator()) == torch.device("cpu")


def test_runs_on_cuda_with_bf16_when_present():
    # On CPU-only machines this checks the CPU default instead: fp32, no autocast.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = fuse_for_inference(small_generator())
    image = random_image((16, 12, 3))
    out = upscale_array(model, image, device=device)
    reference = upscale_array(model.cpu(), image, device="cpu", amp=False)
    tolerance = 8 if device == "cuda" else 0  # bf16 keeps about 3 significant digits
    assert np.abs(out.astype(int) - reference).max() <= tolerance


class Residual(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


def test_fuse_for_inference_leaves_other_layouts_alone():
    # A PReLU that reads the block's input must not become in-place: the skip connection still needs that input.
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.Conv2d(4, 3, 1),
        Residual(nn.Sequential(nn.PReLU(init=0.1), nn.Conv2d(3, 3, 1))),
    ).eval()
    model[1].running_var.fill_(4.0)
    fused = fuse_for_inference(model)
    assert isinstance(fused[1], nn.Identity) and isinstance(fused[3].body[0], nn.PReLU)
    x = torch.rand(1, 3, 5, 5)
    with torch.inference_mode():
        torch.testing.assert_close(fused(x), model(x))
