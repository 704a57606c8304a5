"""Image reading/writing: modes, 16-bit scaling, EXIF, refusal of bad files, bare atomic PNGs."""

import hashlib
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from sr_models.errors import ImageError
from sr_models.imageio import image_sha256, png_bytes, read_image, sha256_hex, write_png


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(width, height, bit_depth, colour_type, rows=None):
    """A PNG built by hand: IHDR, one IDAT of unfiltered rows (or an empty stream), IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    body = b"".join(b"\x00" + row for row in rows) if rows is not None else b""
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b"")


def png16(array, colour_type):
    return raw_png(array.shape[1], array.shape[0], 16, colour_type, [r.astype(">u2").tobytes() for r in array])


def chunk_types(data):
    types, pos = [], 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        types.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return types


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_round_trip_grey_rgb_rgba(tmp_path, rng):
    grey = rng.integers(0, 256, (7, 5), dtype=np.uint8)
    rgb = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (7, 5, 4), dtype=np.uint8)
    for name, image in (("g.png", grey), ("c.png", rgb), ("a.png", rgba)):
        assert write_png(tmp_path / "sub" / "dir" / name, image) == tmp_path / "sub" / "dir" / name
    got = read_image(tmp_path / "sub/dir/g.png")
    assert got.dtype == np.uint8 and got.shape == (7, 5)
    np.testing.assert_array_equal(got, grey)
    np.testing.assert_array_equal(read_image(tmp_path / "sub/dir/g.png", mode="rgb"), np.dstack([grey] * 3))
    np.testing.assert_array_equal(read_image(tmp_path / "sub/dir/c.png"), rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "sub/dir/a.png", mode="keep"), rgba)
    # auto / rgb drop alpha and keep the colour channels as stored (no compositing)
    np.testing.assert_array_equal(read_image(tmp_path / "sub/dir/a.png"), rgba[..., :3])
    np.testing.assert_array_equal(read_image(tmp_path / "sub/dir/a.png", mode="rgb"), rgba[..., :3])


def test_png_has_no_metadata_and_is_deterministic(tmp_path, rng):
    image = rng.integers(0, 256, (9, 4, 3), dtype=np.uint8)
    data = png_bytes(image)
    assert data == png_bytes(image.copy())
    types = chunk_types(data)
    assert types[0] == b"IHDR" and types[-1] == b"IEND" and set(types[1:-1]) == {b"IDAT"}
    path = write_png(tmp_path / "x.png", image)
    assert path.read_bytes() == data
    assert image_sha256(image) == sha256_hex(data) == hashlib.sha256(data).hexdigest()
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_write_png_is_atomic_and_refuses_bad_arrays(tmp_path, rng):
    target = tmp_path / "keep.png"
    old = rng.integers(0, 256, (4, 4), dtype=np.uint8)
    write_png(target, old)
    with pytest.raises(ImageError, match="uint8"):
        write_png(target, old.astype(np.float32))
    with pytest.raises(ImageError, match="HxW, HxWx3 or HxWx4"):
        write_png(target, np.zeros((4, 4, 2), np.uint8))
    np.testing.assert_array_equal(read_image(target), old)  # untouched
    write_png(target, old[::-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]  # no temp files left behind
    np.testing.assert_array_equal(read_image(target), old[::-1])


def test_palette_la_and_one_bit(tmp_path):
    palette = Image.new("P", (3, 2))
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    palette.putdata([0, 1, 2, 2, 1, 0])
    palette.save(tmp_path / "p.png", transparency=2)
    got = read_image(tmp_path / "p.png")
    assert got.shape == (2, 3, 3)
    np.testing.assert_array_equal(got[0], [[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    kept = read_image(tmp_path / "p.png", mode="keep")
    assert kept.shape == (2, 3, 4) and kept[0, 2, 3] == 0 and kept[0, 0, 3] == 255

    Image.fromarray(np.array([[[10, 200], [90, 0]]], np.uint8).reshape(1, 2, 2), "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), [[[10, 10, 10], [90, 90, 90]]])
    np.testing.assert_array_equal(read_image(tmp_path / "la.png", mode="keep"), [[[10, 10, 10, 200], [90, 90, 90, 0]]])

    Image.fromarray(np.array([[True, False, True]])).save(tmp_path / "bits.png")
    got = read_image(tmp_path / "bits.png")
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, [[255, 0, 255]])


def test_16bit_grey_and_colour_are_rounded_not_truncated(tmp_path):
    # round(v / 257): 128 -> 0.498 -> 0, 129 -> 0.502 -> 1, 200 -> 0.78 -> 1, 65100 -> 253.3 -> 253
    # (Pillow's own 16-bit colour reading keeps the high byte: 200 -> 0, 65100 -> 254).
    grey = np.array([[0, 128, 129, 383, 65535]], dtype=np.uint16)
    (tmp_path / "g16.png").write_bytes(png16(grey, 0))
    got = read_image(tmp_path / "g16.png")
    assert got.dtype == np.uint8 and got.shape == (1, 5)
    np.testing.assert_array_equal(got, [[0, 0, 1, 1, 255]])

    colour = np.array([[[200, 65100, 32896], [65535, 0, 128]]], dtype=np.uint16)
    (tmp_path / "c16.png").write_bytes(png16(colour, 2))
    np.testing.assert_array_equal(read_image(tmp_path / "c16.png"), [[[1, 253, 128], [255, 0, 0]]])

    rgba = np.array([[[200, 65100, 32896, 65535], [129, 0, 65535, 200]]], dtype=np.uint16)
    (tmp_path / "a16.png").write_bytes(png16(rgba, 6))
    np.testing.assert_array_equal(read_image(tmp_path / "a16.png", mode="keep"), [[[1, 253, 128, 255], [1, 0, 255, 1]]])
    np.testing.assert_array_equal(read_image(tmp_path / "a16.png"), [[[1, 253, 128], [1, 0, 255]]])


def test_jpeg_exif_orientation_and_cmyk(tmp_path):
    stored = np.zeros((8, 16, 3), np.uint8)
    stored[:, :8] = (255, 0, 0)  # left half red
    stored[:, 8:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    Image.fromarray(stored).save(tmp_path / "o.jpg", exif=exif, quality=95)
    shown = read_image(tmp_path / "o.jpg")
    assert shown.shape == (16, 8, 3)
    assert shown[2, 4, 0] > 200 and shown[2, 4, 2] < 50  # the left (red) half is now on top
    assert shown[13, 4, 2] > 200 and shown[13, 4, 0] < 50

    Image.new("CMYK", (4, 3), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    cmyk = read_image(tmp_path / "cmyk.jpg")
    assert cmyk.shape == (3, 4, 3) and cmyk[1, 1, 0] > 200 and cmyk[1, 1, 1] < 50


def test_decompression_bombs_are_refused_from_the_header(tmp_path):
    # Headers claim huge sizes but carry no pixel data: a decode attempt would fail differently.
    (tmp_path / "big.png").write_bytes(raw_png(12_000, 10_000, 8, 0))  # 120 MP > our 100 MP default
    with pytest.raises(ImageError, match=r"big.png: 12000x10000 is 120000000 pixels, more than the limit"):
        read_image(tmp_path / "big.png")
    (tmp_path / "huge.png").write_bytes(raw_png(30_000, 30_000, 8, 2))  # 900 MP: Pillow's own hard limit
    with pytest.raises(ImageError, match="huge.png: .*decompression bomb"):
        read_image(tmp_path / "huge.png", max_pixels=10**12)
    small = tmp_path / "small.png"
    write_png(small, np.zeros((10, 10), np.uint8))
    with pytest.raises(ImageError, match="100 pixels, more than the limit of 99"):
        read_image(small, max_pixels=99)
    assert read_image(small, max_pixels=100).shape == (10, 10)


def test_unreadable_files(tmp_path):
    with pytest.raises(ImageError, match="nope.png: no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="not a file"):
        read_image(tmp_path)
    (tmp_path / "notes.png").write_text("hello, not an image")
    with pytest.raises(ImageError, match="notes.png: not an image file"):
        read_image(tmp_path / "notes.png")
    whole = png_bytes(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ImageError, match="cut.png: cannot decode the image, the file is truncated or corrupt"):
        read_image(tmp_path / "cut.png")
    (tmp_path / "empty.png").write_bytes(raw_png(4, 4, 8, 0, rows=[]))  # valid header, no pixel rows
    with pytest.raises(ImageError, match="empty.png: cannot decode"):
        read_image(tmp_path / "empty.png")
    Image.new("F", (4, 4), 0.5).save(tmp_path / "float.tif")
    with pytest.raises(ImageError, match="float.tif: cannot decode the image: floating-point images are not supported"):
        read_image(tmp_path / "float.tif")
    with pytest.raises(ImageError, match="unknown read mode"):
        read_image(tmp_path / "cut.png", mode="bgr")
