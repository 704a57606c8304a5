"""Reading images into uint8 numpy arrays and writing them as bare PNGs.

``read_image`` modes:

- ``"auto"`` (default): greyscale files (modes ``1``, ``L``, ``I;16``, ``I``) give ``HxW``; everything else gives
  ``HxWx3`` RGB. Alpha is dropped, not composited (the colour channels are kept as stored).
- ``"rgb"``: always ``HxWx3`` (grey is repeated into three channels); alpha dropped.
- ``"keep"``: like ``"auto"`` but an image with alpha (RGBA, LA, palette with transparency) stays ``HxWx4``.

16-bit samples become 8-bit as ``round(v * 255 / 65535)``. EXIF orientation is applied (JPEG, WebP, TIFF; not to
16-bit colour PNGs, which are decoded separately). Floating-point images (mode F) are refused. Sizes are checked
from the header before any pixel is decoded (``max_pixels``).

``write_png`` stores no metadata chunks (no text, no time, no gamma), so a file says nothing about what made it and the
same pixels always give the same bytes.
"""

import hashlib
import io
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from sr_models.errors import ImageError
from sr_models.fileio import atomic_write

MAX_PIXELS = 100_000_000
MODES = ("auto", "rgb", "keep")
GREY_MODES = ("1", "L", "I;16", "I;16L", "I;16B", "I;16N", "I")
# Pillow keeps only the high byte of 16-bit colour PNG samples; reading the same data with the little-endian
# unpacker gives the low byte, so both together give the full 16-bit value.
_LOW_BYTE_RAWMODES = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L"}


def read_image(path, mode="auto", max_pixels=MAX_PIXELS):
    """Read an image file as a uint8 array (see the module docstring for ``mode``); raise ``ImageError`` if unfit."""
    if mode not in MODES:
        raise ImageError(f"unknown read mode {mode!r}; use one of {', '.join(MODES)}")
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below replaces Pillow's warning; its hard error is still turned into ours.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                pixels = img.width * img.height
                if pixels > max_pixels:
                    raise ImageError(
                        f"{path}: {img.width}x{img.height} is {pixels} pixels, more than the limit of "
                        f"{max_pixels} (a possible decompression bomb); pass a larger max_pixels "
                        f"if the file is trusted"
                    )
                array = _decode(img, mode, path)
    except ImageError:
        raise
    except PermissionError as exc:
        raise ImageError(f"{path}: cannot be read, permission denied") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: refused as a possible decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{path}: not an image file Pillow can read") from exc
    except (OSError, SyntaxError, EOFError, zlib.error) as exc:
        raise ImageError(f"{path}: cannot decode the image, the file is truncated or corrupt ({exc})") from exc
    except ValueError as exc:
        raise ImageError(f"{path}: cannot decode the image: {exc}") from exc
    return array


def _decode(img, mode, path):
    """Decode an opened Pillow image into the uint8 layout ``mode`` asks for."""
    colour16 = _decode_16bit_colour(img, path)
    if colour16 is not None:
        return colour16 if mode == "keep" else np.ascontiguousarray(colour16[..., :3])
    if img.mode == "F":
        raise ValueError("floating-point images are not supported; save it as 8- or 16-bit")
    img.load()
    if img.getexif().get(ExifTags.Base.Orientation, 1) != 1:
        img = ImageOps.exif_transpose(img)
    if img.mode in GREY_MODES:
        grey = _to_uint8(np.asarray(img.convert("L") if img.mode == "1" else img))
        return np.repeat(grey[..., None], 3, axis=2) if mode == "rgb" else grey
    has_alpha = img.mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in img.info
    if mode == "keep" and has_alpha:
        return np.asarray(img.convert("RGBA"))
    return np.asarray(img.convert("RGB"))


def _decode_16bit_colour(img, path):
    """16-bit colour PNGs: full-precision samples rounded to 8 bits, or None for any other image."""
    if img.format != "PNG" or len(img.tile) != 1:
        return None
    tile = img.tile[0]
    low_rawmode = _LOW_BYTE_RAWMODES.get(tile.args if isinstance(tile.args, str) else None)
    if low_rawmode is None:
        return None
    high = np.asarray(img).astype(np.uint32)  # decodes with the high-byte unpacker
    with Image.open(path) as again:
        again.tile = [again.tile[0]._replace(args=low_rawmode)]
        low = np.asarray(again).astype(np.uint32)
    return _to_uint8((high << 8) | low)


def _to_uint8(array):
    """8-bit data as is; 16-bit data as round(v * 255 / 65535) = round(v / 257)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    values = array.astype(np.int64)
    if values.min(initial=0) < 0 or values.max(initial=0) > 65535:
        raise ValueError("sample values outside 0..65535: only 8- and 16-bit images are supported")
    return ((values + 128) // 257).astype(np.uint8)  # exact rounding: v/257 is never halfway for integer v


def _check_writable(image):
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ImageError(f"write_png takes uint8 images, got {image.dtype}; round and clip to 0..255 first")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))):
        raise ImageError(f"write_png takes HxW, HxWx3 or HxWx4 images, got shape {image.shape}")
    return image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image


def png_bytes(image):
    """Encode a uint8 image as PNG bytes with no metadata chunks; the same pixels always give the same bytes."""
    image = _check_writable(image)
    buffer = io.BytesIO()
    # Pillow writes only IHDR, IDAT and IEND here: no pnginfo, no icc_profile, no dpi given.
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def sha256_hex(data):
    """Hex SHA-256 of bytes (content addressing of outputs)."""
    return hashlib.sha256(data).hexdigest()


def image_sha256(image):
    """Hex SHA-256 of the image's PNG bytes as ``png_bytes`` encodes them."""
    return sha256_hex(png_bytes(image))


def write_png(path, image):
    """Write ``image`` as a PNG atomically (``sr_models.fileio.atomic_write``); returns the path."""
    return atomic_write(path, png_bytes(image))
