"""The exact rewrites fuse_for_inference makes, each against the plain layers it replaces (float64: only the order
of the sums differs, so the outputs agree to rounding)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sr_models.archs import SRResNet
from sr_models.errors import SRMOSError
from sr_models.inference import UpsampleTail, fuse_for_inference, phase_major_order, reorder_output_channels


def plain_upsample_tail(conv, slope, tail, x):
    """What SRResNet computes: conv to 4C, PixelShuffle(2), one-slope PReLU, then the tail conv."""
    return tail(F.leaky_relu(F.pixel_shuffle(conv(x), 2), slope))


def layers(channels=8, out=3, kernel=9, seed=0):
    torch.manual_seed(seed)
    conv = nn.Conv2d(channels, 4 * channels, 3, padding=1).double()
    tail = nn.Conv2d(channels, out, kernel, padding=kernel // 2).double()
    return conv, tail


@pytest.mark.parametrize(
    ("kernel", "strip_rows", "shape"),
    [
        (9, None, (2, 8, 13, 11)),  # one strip, a batch
        (9, 4, (1, 8, 13, 11)),  # strips of 4 rows, the last one shorter
        (9, 1, (2, 8, 5, 7)),  # one row per strip: every strip borrows context from both neighbours
        (3, 5, (1, 8, 12, 9)),
        (5, 100, (1, 8, 6, 6)),
        (1, 2, (1, 8, 4, 3)),  # a 1x1 tail: no row taps to add
    ],
)
def test_upsample_tail_equals_the_plain_layers(kernel, strip_rows, shape):
    conv, tail = layers(kernel=kernel)
    x = torch.rand(*shape, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = plain_upsample_tail(conv, 0.3, tail, x)
        got = UpsampleTail(conv, 0.3, tail, strip_rows=strip_rows)(x)
    assert got.shape == expected.shape == (shape[0], 3, 2 * shape[2], 2 * shape[3])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_upsample_tail_default_strips_keep_each_strip_under_the_budget():
    conv, tail = layers(channels=64)
    module = UpsampleTail(conv, 0.25, tail)
    # BSD100 at 2x (160 x 240) gives a 39 MB 256-channel map: split into near-equal strips under 24 MiB each.
    strips = module.strips(160, 240)
    assert strips[0][0] == 0 and strips[-1][1] == 160
    assert all(a[1] == b[0] for a, b in zip(strips, strips[1:]))
    assert all((end - start) * 240 * 256 * 4 <= UpsampleTail.STRIP_BYTES for start, end in strips)
    assert len(strips) == 2
    assert module.strips(20, 30) == [(0, 20)]  # small maps stay whole
    assert len(module.strips(160, 240, batch=4)) == 7  # the budget holds for a batch: 23 rows of 4 images


def test_upsample_tail_float32_on_the_paper_layer_sizes():
    conv, tail = (layer.float() for layer in layers(channels=64))
    x = torch.rand(1, 64, 40, 60).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        expected = plain_upsample_tail(conv, 0.2, tail, x)
        got = UpsampleTail(conv, 0.2, tail, strip_rows=16)(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_phase_major_order_reads_the_shuffled_map_as_hr_rows_side_by_side():
    # With the channels in (j, i, c) order, the NHWC memory of the 4C-channel map is that of a 2C-channel map
    # (channel i*C + c) at twice the width: HR row 2h + i of the shuffled image in channel block i.
    n, c, h, w = 2, 3, 4, 5
    u = torch.rand(n, 4 * c, h, w, dtype=torch.float64)
    hr = F.pixel_shuffle(u, 2)  # n, c, 2h, 2w
    reordered = u[:, phase_major_order(4 * c)].contiguous(memory_format=torch.channels_last)
    phases = reordered.permute(0, 2, 3, 1).reshape(n, h, 2 * w, 2 * c).permute(0, 3, 1, 2)
    for i in range(2):
        assert torch.equal(phases[:, i * c : (i + 1) * c], hr[:, :, i::2])


def test_reorder_output_channels_keeps_the_numbers():
    conv = nn.Conv2d(4, 8, 3, padding=1).double()
    order = phase_major_order(8)
    x = torch.rand(1, 4, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(reorder_output_channels(conv, order)(x), conv(x)[:, order])
    assert sorted(order) == list(range(8))


def test_upsample_tail_refuses_layers_it_cannot_rewrite():
    conv, tail = layers()
    with pytest.raises(SRMOSError, match="3x3 conv to 4C"):
        UpsampleTail(conv, 0.2, nn.Conv2d(8, 3, 4, padding=2))  # even kernel
    with pytest.raises(SRMOSError, match="3x3 conv to 4C"):
        UpsampleTail(nn.Conv2d(8, 16, 3, padding=1), 0.2, tail)  # not 4C channels
    assert not UpsampleTail.fits(conv, nn.Conv2d(8, 3, 9, padding=4, stride=2))


@pytest.mark.parametrize("scale", [2, 4])
def test_fused_network_equals_the_plain_one_at_both_scales(scale):
    torch.manual_seed(scale)
    model = SRResNet(num_blocks=2, num_features=16, scale=scale).eval()
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
    fused = fuse_for_inference(model)
    assert isinstance(fused.tail, UpsampleTail)
    x = torch.rand(2, 3, 11, 9)
    with torch.inference_mode():
        torch.testing.assert_close(
            fused(x.contiguous(memory_format=torch.channels_last)), model(x), rtol=1e-4, atol=1e-5
        )
