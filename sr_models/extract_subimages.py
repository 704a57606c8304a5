"""Cut large HR images into overlapping sub-images on disk, so training decodes small PNGs instead of whole photos.

``python -m sr_models.extract_subimages --input DIR [DIR ...] --output DIR [--size 480 --step 240 --workers 4]``
``--lr-output DIR --scale 4`` also writes each sub-image's MATLAB-bicubic LR under the same name, for training with
``--lr-data``. Sub-images are named ``<stem>_s<NNN>.png``; an unreadable image is reported and skipped. Existing
output files are left alone (a rerun continues an interrupted extraction).
"""

import argparse
import logging
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sr_models.errors import ImageError, SRMOSError
from sr_models.imageio import read_image, write_png
from sr_models.resize import imresize

log = logging.getLogger(__name__)


def crop_positions(length, size, step, min_remainder):
    """Start offsets covering ``length`` with windows of ``size`` every ``step``; a last window flush with the end
    when more than ``min_remainder`` pixels would otherwise be left out."""
    if length < size:
        return []
    starts = list(range(0, length - size + 1, step))
    if length - (starts[-1] + size) > min_remainder:
        starts.append(length - size)
    return starts


def extract_one(path, output, size=480, step=240, min_remainder=0, lr_output=None, scale=4):
    """Write the sub-images of one image; returns how many it has (written now or before)."""
    image = read_image(path, mode="rgb")
    height, width = image.shape[:2]
    count = 0
    for top in crop_positions(height, size, step, min_remainder):
        for left in crop_positions(width, size, step, min_remainder):
            name = f"{Path(path).stem}_s{count:03d}.png"
            count += 1
            if (Path(output) / name).exists() and (lr_output is None or (Path(lr_output) / name).exists()):
                continue
            crop = image[top : top + size, left : left + size]
            if lr_output is not None:
                write_png(Path(lr_output) / name, imresize(crop, scale=1.0 / scale))
            write_png(Path(output) / name, crop)
    return count


def _extract_or_report(job):
    path, kwargs = job
    try:
        return path, extract_one(path, **kwargs), None
    except (ImageError, OSError) as exc:
        return path, 0, str(exc)


def extract_subimages(inputs, output, *, size=480, step=240, min_remainder=0, lr_output=None, scale=4, workers=1):
    """Extract sub-images of every image under inputs; returns (sub-images, list of (path, error) skipped)."""
    from sr_models.train.data import list_images

    if size % scale:
        raise SRMOSError(f"sub-image size {size} must be a multiple of the scale {scale}")
    if step < 1:
        raise SRMOSError("step must be at least 1")
    Path(output).mkdir(parents=True, exist_ok=True)
    if lr_output is not None:
        Path(lr_output).mkdir(parents=True, exist_ok=True)
    kwargs = dict(output=output, size=size, step=step, min_remainder=min_remainder, lr_output=lr_output, scale=scale)
    jobs = [(path, kwargs) for path in list_images(inputs)]
    total, skipped = 0, []
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_extract_or_report, jobs, chunksize=4))
    else:
        results = map(_extract_or_report, jobs)
    for path, count, error in results:
        total += count
        if error is not None:
            log.warning("skipping %s: %s", path, error)
            skipped.append((path, error))
    return total, skipped


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sr_models.extract_subimages", description=__doc__.split("\n")[0])
    parser.add_argument("--input", nargs="+", required=True, help="folder(s) of HR images")
    parser.add_argument("--output", required=True, help="folder for the HR sub-images")
    parser.add_argument("--size", type=int, default=480, help="sub-image side in pixels (default 480)")
    parser.add_argument("--step", type=int, default=240, help="stride between sub-images (default 240)")
    parser.add_argument(
        "--min-remainder",
        type=int,
        default=0,
        help="add a last, end-flush sub-image when more than this many pixels are left over",
    )
    parser.add_argument("--lr-output", help="also write LR sub-images (MATLAB bicubic) here")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        total, skipped = extract_subimages(
            args.input,
            args.output,
            size=args.size,
            step=args.step,
            min_remainder=args.min_remainder,
            lr_output=args.lr_output,
            scale=args.scale,
            workers=args.workers,
        )
    except SRMOSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path, error in skipped:
        print(f"skipped {path}: {error}", file=sys.stderr)
    print(f"{total} sub-images in {args.output}" + (f"; {len(skipped)} unreadable images skipped" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
