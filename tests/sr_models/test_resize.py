"""MATLAB imresize, pinned with numbers derived by hand from MATLAB's published algorithm."""

import numpy as np
import pytest
import torch

from sr_models.errors import SRMOSError
from sr_models.resize import _contributions, cubic, imresize, imresize_torch


def keys(d):
    """Keys' cubic (a = -0.5), written out again here as the hand reference."""
    d = abs(d)
    if d <= 1:
        return 1.5 * d**3 - 2.5 * d**2 + 1
    if d <= 2:
        return -0.5 * d**3 + 2.5 * d**2 - 4 * d + 2
    return 0.0


def test_cubic_kernel_values():
    # c(0.25) = 1.5/64 - 2.5/16 + 1, c(1.25) = -0.5*125/64 + 2.5*25/16 - 5 + 2, ...
    points = np.array([0, 0.25, 0.75, 1, 1.25, 1.75, 2, 2.5, -0.25])
    expected = [1, 0.8671875, 0.2265625, 0, -0.0703125, -0.0234375, 0, 0, 0.8671875]
    np.testing.assert_allclose(cubic(points), expected, atol=1e-15)


def test_enlarge_2_to_4_by_hand():
    # scale 2: u = x/2 + 0.25 -> 0.75, 1.25, 1.75, 2.25; mirrored indices aux = [1, 2, 2, 1].
    # x=1: taps j=-1 (d=1.75, reads 2), 0 (d=0.75, reads 1), 1 (d=-0.25), 2 (d=-1.25)
    #      -> a*(c(.75)+c(.25)) + b*(c(1.75)+c(1.25)) = 1.09375 a - 0.09375 b
    # x=2: j=0 (1.25, reads 1), 1 (0.25), 2 (-0.75), 3 (-1.75, reads 2) -> 0.796875 a + 0.203125 b
    weights, indices = _contributions(2, 4, 2.0, cubic, 4.0, True)
    dense = np.zeros((4, 2))
    np.add.at(dense, (np.arange(4)[:, None].repeat(indices.shape[1], 1), indices), weights)
    expected = [[1.09375, -0.09375], [0.796875, 0.203125], [0.203125, 0.796875], [-0.09375, 1.09375]]
    np.testing.assert_allclose(dense, expected, atol=1e-15)

    row = np.array([[0.0, 32.0]])
    np.testing.assert_allclose(imresize(row, output_shape=(1, 4)), [[-3.0, 6.5, 25.5, 35.0]], atol=1e-12)
    # uint8: clipped at 0, and 6.5 -> 7, 25.5 -> 26 (round half away from zero, not to even).
    square = np.array([[0, 32], [0, 32]], dtype=np.uint8)
    out = imresize(square, 2)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 7, 26, 35]] * 4)
    np.testing.assert_array_equal(imresize(np.array([[0, 255], [0, 255]], np.uint8), 2)[0], [0, 52, 203, 255])


def test_shrink_8_to_2_with_antialiasing_by_hand():
    # scale 1/4: kernel h(d) = c(d/4)/4, width 16, u = 4x - 1.5 -> 2.5 and 6.5. Taps with |u - j| < 8: j = -5..10
    # (16 of them); the 16 samples of c at spacing 1/4 sum to 4, so normalised weights are exactly c((u-j)/4)/4.
    # Mirroring for n=8: j=0->1, -1->2, ..., -5->6; j=9->8, 10->7.  Output 1 reads, per input pixel k:
    c = keys
    w1 = (
        np.array(
            [
                c(0.375) + c(0.625),  # k=1: j=1, j=0
                c(0.125) + c(0.875),  # k=2: j=2, j=-1
                c(0.125) + c(1.125),  # k=3: j=3, j=-2
                c(0.375) + c(1.375),  # k=4: j=4, j=-3
                c(0.625) + c(1.625),  # k=5: j=5, j=-4
                c(0.875) + c(1.875),  # k=6: j=6, j=-5
                c(1.125) + c(1.875),  # k=7: j=7, j=10
                c(1.375) + c(1.625),  # k=8: j=8, j=9
            ]
        )
        / 4
    )
    w2 = w1[::-1]  # output 2 (u = 6.5) is the mirror image of output 1
    assert w1.sum() == pytest.approx(1.0, abs=1e-15)
    signal = np.array([3.0, 10, 40, 41, 90, 100, 180, 200])
    out = imresize(signal[None, :], output_shape=(1, 2))
    np.testing.assert_allclose(out[0], [w1 @ signal, w2 @ signal], atol=1e-12)
    # 16 raw taps were computed before trimming; j=-6 and j=11 (|d| = 8.5/4 > 2) had zero weight and are dropped.
    weights, indices = _contributions(8, 2, 0.25, cubic, 4.0, True)
    assert weights.shape == (2, 16)
    np.testing.assert_array_equal(indices[0], np.array([6, 5, 4, 3, 2, 1, 1, 2, 3, 4, 5, 6, 7, 8, 8, 7]) - 1)


def test_without_antialiasing_the_kernel_keeps_width_4():
    weights, indices = _contributions(8, 2, 0.25, cubic, 4.0, False)
    # u = 2.5: taps j = 1..4 at d = 1.5, 0.5, -0.5, -1.5
    np.testing.assert_allclose(weights[0], [keys(1.5), keys(0.5), keys(0.5), keys(1.5)], atol=1e-15)
    np.testing.assert_array_equal(indices[0], [0, 1, 2, 3])


def test_nearest():
    row = np.array([[10, 20, 30, 40, 50, 60, 70, 80]], dtype=np.uint8)
    # shrink 1/4: u = 2.5, 6.5 -> round half up -> pixels 3 and 7
    np.testing.assert_array_equal(imresize(row, output_shape=(1, 2), method="nearest"), [[30, 70]])
    # enlarge 4: u = x/4 + 0.375 -> 0.625..2.375 -> 1,1,1,1,2,2,2,2: plain pixel repetition
    small = np.arange(6, dtype=np.uint8).reshape(2, 3)
    big = imresize(small, 4, method="nearest")
    np.testing.assert_array_equal(big, small.repeat(4, 0).repeat(4, 1))
    assert big.dtype == np.uint8


def test_output_size_is_ceil_of_scale_times_size():
    assert imresize(np.zeros((7, 5)), 0.5).shape == (4, 3)
    assert imresize(np.zeros((7, 5, 3), np.uint8), 4).shape == (28, 20, 3)
    assert imresize(np.zeros((7, 5)), (2, 0.5)).shape == (14, 3)
    assert imresize(np.zeros((8, 8)), np.float32(0.5)).shape == (4, 4)
    assert imresize(np.zeros((8, 8)), np.int64(2)).shape == (16, 16)


def test_constant_and_channels():
    flat = np.full((9, 13), 77, np.uint8)
    np.testing.assert_array_equal(imresize(flat, 0.25), np.full((3, 4), 77))
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (21, 17, 3), dtype=np.uint8)
    together = imresize(rgb, 0.25)
    for ch in range(3):
        np.testing.assert_array_equal(together[..., ch], imresize(rgb[..., ch], 0.25))


def _one_axis(image, axis, out_len):
    """Resize one axis of a uint8 image with rounding, as MATLAB's imresizemex does."""
    shape = list(image.shape)
    shape[axis] = out_len
    return imresize(image, output_shape=tuple(shape[:2]))


@pytest.mark.parametrize("out_shape, first_axis", [((10, 30), 0), ((30, 10), 1)])
def test_smaller_scale_first_and_uint8_rounding_between_passes(out_shape, first_axis):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 40), dtype=np.uint8)
    second_axis = 1 - first_axis
    # The axis going to 10 (scale 0.25) has the smaller scale, so MATLAB resizes it first.
    smaller_first = _one_axis(_one_axis(image, first_axis, 10), second_axis, 30)
    larger_first = _one_axis(_one_axis(image, second_axis, 30), first_axis, 10)
    out = imresize(image, output_shape=out_shape)
    np.testing.assert_array_equal(out, smaller_first)
    assert (out != larger_first).any()  # the order matters once rounding happens between passes
    # Float images do not round between passes: both orders agree to rounding error.
    f = image.astype(float)
    np.testing.assert_allclose(
        imresize(f, output_shape=out_shape), _one_axis(_one_axis(f, second_axis, 30), first_axis, 10), atol=1e-9
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(scale=0.25),
        dict(scale=4),
        dict(output_shape=(13, 29)),
        dict(scale=4, method="nearest"),
        dict(scale=(0.5, 3)),
    ],
)
def test_torch_matches_numpy(kwargs):
    rng = np.random.default_rng(2)
    batch = rng.integers(0, 256, (3, 48, 36, 3), dtype=np.uint8)
    expected = np.stack([imresize(image, **kwargs) for image in batch])
    as_nchw = torch.from_numpy(batch).permute(0, 3, 1, 2)
    out_u8 = imresize_torch(as_nchw, **kwargs)
    assert out_u8.dtype == torch.uint8
    np.testing.assert_array_equal(out_u8.permute(0, 2, 3, 1).numpy(), expected)

    floats = batch.astype(np.float64) / 255
    expected_f = np.stack([imresize(image, **kwargs) for image in floats])
    for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
        out = imresize_torch(torch.from_numpy(floats).permute(0, 3, 1, 2).to(dtype), **kwargs)
        assert out.dtype == dtype and out.device.type == "cpu"
        np.testing.assert_allclose(out.permute(0, 2, 3, 1).numpy(), expected_f, atol=tol)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_keeps_device_and_dtype(device, dtype):
    x = torch.rand(2, 3, 32, 24, dtype=dtype, device=device)
    out = imresize_torch(x, 0.25)
    assert out.shape == (2, 3, 8, 6) and out.device == x.device and out.dtype == dtype
    expected = imresize(x[1, 2].double().cpu().numpy(), 0.25)
    np.testing.assert_allclose(out[1, 2].cpu().double().numpy(), expected, atol=1e-5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: imresize(np.zeros((4, 4)), 0.5, output_shape=(2, 2)), "exactly one"),
        (lambda: imresize(np.zeros((4, 4))), "exactly one"),
        (lambda: imresize(np.zeros((4, 4)), -1), "positive"),
        (lambda: imresize(np.zeros((4, 4)), float("nan")), "positive"),
        (lambda: imresize(np.zeros((4, 4)), output_shape=(0, 2)), "two positive integers"),
        (lambda: imresize(np.zeros((4, 4)), 2, method="lanczos3"), "unknown resize method"),
        (lambda: imresize(np.zeros(4), 2), "HxW"),
        (lambda: imresize(np.zeros((4, 4), np.int32), 2), "uint8 or floating"),
        (lambda: imresize(np.zeros((0, 4)), 2), "empty"),
        (lambda: imresize_torch(torch.zeros(4, 4), 2), "NCHW"),
    ],
)
def test_errors(call, message):
    with pytest.raises(SRMOSError, match=message):
        call()
