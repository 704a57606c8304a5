"""``python -m sr_models install CHECKPOINT --method NAME``: a training checkpoint becomes a method's inference weights.

Training checkpoints carry the optimiser, RNG, data-order and (for SRGAN) discriminator state: hundreds of MB. The
registry needs only the generator. ``install`` checks the checkpoint against the method, keeps the generator's weights
and the provenance, adds what a reader of a results table needs (training updates, data, last validation figures,
the source checkpoint's SHA-256, whether the features were stand-ins) and writes ``<weights_dir>/<method>.pt``
atomically, where ``sr_models.methods`` finds it.
"""

import argparse
import hashlib
import sys
from pathlib import Path

from .checkpoint import build_generator, load_checkpoint, save_checkpoint
from .errors import CheckpointError, SRMOSError
from .paths import weights_dir as default_weights_dir

CHUNK = 1 << 20


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def stand_in_features(provenance) -> bool:
    """True when the model was trained with VGG features that are not torchvision's ImageNet weights."""
    loss = str(provenance.get("content_loss", "mse"))
    return loss.startswith("vgg") and provenance.get("vgg_weights") != "torchvision IMAGENET1K_V1"


def inference_provenance(checkpoint, source, source_sha256, notes=None):
    """The provenance an installed model carries: the trainer's, plus the install facts and ``notes``."""
    trained = dict(checkpoint.get("provenance") or {})
    for key in ("srmos_version", "torch_version", "created_utc"):  # save_checkpoint writes today's values
        if key in trained:
            trained[f"trained_{key}"] = trained.pop(key)
    return {
        **trained,
        "training_steps": int(checkpoint["step"]),
        "source_checkpoint": Path(source).name,
        "source_sha256": source_sha256,
        "stand_in_features": stand_in_features(trained),
        **(notes or {}),
    }


def install(checkpoint_path, method, *, weights_dir=None, output=None, force=False, notes=None) -> Path:
    """Write the generator of ``checkpoint_path`` as ``<weights_dir>/<method>.pt`` (or ``output``); returns the path.

    The checkpoint must hold an SRResNet generator trained for ``method`` (``force`` accepts another method's)."""
    checkpoint = load_checkpoint(checkpoint_path)
    if checkpoint["arch"] != "srresnet":
        raise CheckpointError(f"{checkpoint_path} holds a {checkpoint['arch']!r} network, not an SRResNet generator")
    if checkpoint["method"] != method and not force:
        raise CheckpointError(
            f"{checkpoint_path} was trained as {checkpoint['method']}, not {method}: install it "
            f"as --method {checkpoint['method']}, or pass --force to serve it as {method}"
        )
    generator = build_generator(checkpoint)
    provenance = inference_provenance(checkpoint, checkpoint_path, file_sha256(checkpoint_path), notes)
    target = Path(output) if output else default_weights_dir(weights_dir) / f"{method}.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(
        target, generator, method=method, arch="srresnet", step=checkpoint["step"], provenance=provenance
    )


def build_parser(prog="python -m sr_models install"):
    parser = argparse.ArgumentParser(prog=prog, description="Install a training checkpoint as a method's weights.")
    parser.add_argument("checkpoint", help="a checkpoint written by python -m sr_models train (step_*.pt, best.pt)")
    parser.add_argument("--method", required=True, help="the registry method it serves, e.g. srresnet-mse")
    parser.add_argument("--weights-dir", help="where <method>.pt goes (default $SRMOS_WEIGHTS_DIR or var/weights)")
    parser.add_argument("--output", help="write to this file instead of <weights-dir>/<method>.pt")
    parser.add_argument("--force", action="store_true", help="accept a checkpoint trained for another method")
    parser.add_argument(
        "--note",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a provenance entry to record (repeatable), e.g. --note machine='2 CPU cores'",
    )
    return parser


def parse_notes(items):
    notes = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SRMOSError(f"--note {item!r} must read KEY=VALUE")
        notes[key] = value
    return notes


def main(argv=None, prog="python -m sr_models install"):
    args = build_parser(prog).parse_args(argv)
    try:
        path = install(
            args.checkpoint,
            args.method,
            weights_dir=args.weights_dir,
            output=args.output,
            force=args.force,
            notes=parse_notes(args.note),
        )
    except SRMOSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"installed {args.method}: {path} (sha256 {file_sha256(path)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
