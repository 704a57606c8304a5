"""``python -m sr_models upscale``: upscale image files with a registered method, writing PNGs named after them.

Bad method, weights, device or output names stop the run before anything is written (exit 2). An unreadable image is
reported on stderr and skipped; the others are still written and the exit status is 1.
"""

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from . import methods
from .errors import SRMOSError
from .imageio import read_image, write_png
from .inference import DEFAULT_TILE_OVERLAP


def build_parser(prog):
    parser = argparse.ArgumentParser(prog=prog, description="Upscale images x4 with an SR method.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files (PNG, JPEG, ...)")
    parser.add_argument(
        "--method", required=True, help=f"one of {', '.join(methods.available())}, or a plugin package.module:callable"
    )
    parser.add_argument(
        "--weights",
        help="checkpoint file (or folder of <method>.pt) for learned methods; "
        f"default <method>.pt in ${methods.WEIGHTS_DIR_ENV} (or var/weights), "
        "else the one shipped in sr_models/weights",
    )
    parser.add_argument("--output-dir", required=True, type=Path, help="folder for <input name>.png outputs")
    parser.add_argument(
        "--tile",
        type=int,
        default=None,
        help="LR tile side for large images (default 256, only for larger images; 0: no tiling)",
    )
    parser.add_argument(
        "--tile-overlap",
        type=int,
        default=DEFAULT_TILE_OVERLAP,
        help=f"LR pixels of context around each tile (default {DEFAULT_TILE_OVERLAP}, SRResNet's receptive radius)",
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when present")
    parser.add_argument("--force", action="store_true", help="use a checkpoint made for another method")
    return parser


def output_paths(inputs, output_dir):
    """<output_dir>/<input stem>.png per input; refuses two inputs with one output name or overwriting an input."""
    outputs, seen = [], {}
    resolved_inputs = {Path(p).resolve() for p in inputs}
    for path in inputs:
        out = Path(output_dir) / f"{Path(path).stem}.png"
        if out.name in seen:
            raise SRMOSError(f"{seen[out.name]} and {path} would both be written to {out}; upscale them separately")
        if out.resolve() in resolved_inputs:
            raise SRMOSError(f"writing {out} would overwrite an input; choose another --output-dir")
        seen[out.name] = path
        outputs.append(out)
    return outputs


def main(argv=None, prog="python -m sr_models upscale"):
    args = build_parser(prog).parse_args(argv)
    try:
        outputs = output_paths(args.inputs, args.output_dir)
        upscaler = methods.load(
            args.method,
            weights=args.weights,
            device=args.device,
            force=args.force,
            tile=args.tile,
            tile_overlap=args.tile_overlap,
        )
        args.output_dir.mkdir(parents=True, exist_ok=True)
    except (SRMOSError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed = 0
    for source, target in tqdm(list(zip(args.inputs, outputs)), desc=f"upscale {args.method}", unit="image"):
        try:
            write_png(target, upscaler.upscale(read_image(source, mode="keep")))
        except SRMOSError as error:  # an unreadable image, or a plugin's bad output: report it, go on
            tqdm.write(f"error: {error}", file=sys.stderr)
            failed += 1
    if failed:
        print(f"{failed} of {len(outputs)} images failed; the others are in {args.output_dir}", file=sys.stderr)
        return 1
    return 0
