"""``python -m benchmarks run | import | download | list``: the benchmark harness without Django."""

import argparse
import sys

from benchmarks.cli_args import add_measure_options, add_metric_options, comma_list
from sr_models import paths
from sr_models.errors import SRMOSError


def output_dir(args):
    return paths.output_dir(args.output_dir)


def weights_dir(args):
    """``--weights-dir`` when given; else None, so that ``sr_models.methods`` looks in ``$SRMOS_WEIGHTS_DIR`` (default
    ``var/weights``, as Django does) and then at the checkpoints shipped with srmos."""
    return args.weights_dir


def cmd_run(args):
    from benchmarks.runner import run_benchmark

    result = run_benchmark(
        args.datasets,
        args.methods,
        output_dir(args),
        data_dir=args.data_dir,
        weights_dir=weights_dir(args),
        progress=not args.quiet,
        convention=args.y_convention,
        crop_border=args.crop_border,
        device=args.device,
        metrics=args.metrics,
        metric_stand_in=args.metric_stand_in_weights,
        metric_weights_dir=args.metric_weights_dir,
    )
    print(f"{result.n_generated} outputs generated, {result.n_skipped} already stored; tables in {result.output_dir}\n")
    print(result.markdown)


def cmd_import(args):
    from benchmarks.runner import import_outputs
    from benchmarks.tables import markdown_table, summarise

    rows = import_outputs(
        args.name,
        args.dataset,
        args.outputs,
        output_dir(args),
        data_dir=args.data_dir,
        convention=args.y_convention,
        crop_border=args.crop_border,
        progress=not args.quiet,
    )
    print(
        f"{len(rows)} outputs of {args.name} stored in {output_dir(args)}; add it to a run with "
        f"--methods ...,{args.name}\n"
    )
    print(markdown_table(summarise(rows), args.y_convention, rows[0]["crop_border"]))


def cmd_download(args):
    from benchmarks.download import download
    from sr_models.datasets import get_dataset, resolve_data_dir

    target = resolve_data_dir(args.data_dir) / args.name
    existed = target.exists()
    path = download(
        args.name,
        args.url,
        args.sha256,
        args.data_dir,
        root=args.root,
        force=args.force,
        allow_unverified=args.allow_unverified,
        progress=not args.quiet,
    )
    dataset = get_dataset(args.name, args.data_dir)
    state = "already present" if existed and not args.force else "installed"
    print(f"{args.name}: {len(dataset)} images {state} at {path}")


def cmd_list(args):
    from benchmarks.download import DATASET_SOURCES
    from sr_models import methods
    from sr_models.datasets import KNOWN_DATASETS, available, resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    present = available(data_dir)
    print(f"datasets in {data_dir}:")
    for name in dict.fromkeys([*KNOWN_DATASETS, *present]):
        state = (
            "present"
            if name in present
            else ("missing (python -m benchmarks download %s)" % name if name in DATASET_SOURCES else "missing")
        )
        print(f"  {name:12s} {state}")
    print("methods:")
    for name in methods.available():
        print(f"  {name:15s} {methods.weights_note(name)}")
    print("metrics (--metrics; docs/metrics.md):")
    for line in metric_lines():
        print(f"  {line}")


def metric_lines():
    """One line per quality metric: name, kind, direction, what it needs; then those srmos cannot compute."""
    from sr_models import quality

    lines = []
    for name in quality.available():
        metric = quality.get(name)
        direction = "higher is better" if metric.higher_is_better else "lower is better"
        needs = f", needs the 'metrics' extra ({metric.requires})" if metric.requires else ""
        backbone = ", ImageNet backbone weights" if metric.learned else ""
        lines.append(f"{name:15s} {metric.kind}, {direction}{needs}{backbone}")
    lines += [f"{name:15s} not available: {reason}" for name, reason in quality.UNAVAILABLE.items()]
    return lines


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="generate outputs, measure PSNR/SSIM, write tables")
    run.add_argument("--datasets", type=comma_list, default=["Set5"], help="comma-separated names or folders")
    run.add_argument("--methods", type=comma_list, required=True, help="comma-separated method names")
    run.add_argument(
        "--weights-dir",
        help="checkpoints folder (default $SRMOS_WEIGHTS_DIR or var/weights, then the checkpoints shipped with srmos)",
    )
    run.add_argument("--device", help="torch device for the networks (default: CUDA when there is one)")
    add_measure_options(run)
    add_metric_options(run)
    run.set_defaults(func=cmd_run)

    imp = commands.add_parser("import", help="store and measure an external model's x4 outputs as a method")
    imp.add_argument("name", help="method name to store them under")
    imp.add_argument("--dataset", required=True, help="the dataset the outputs belong to")
    imp.add_argument("--outputs", required=True, help="folder of output images named after the dataset's images")
    add_measure_options(imp)
    imp.set_defaults(func=cmd_import)

    down = commands.add_parser("download", help="fetch, verify and unpack a test set")
    down.add_argument("name", help="Set5, Set14, BSD100 or a new name with --url")
    down.add_argument(
        "--url", help="archive URL (zip or tar.gz; default from the registry or $SRMOS_DATASET_URL_<NAME>)"
    )
    down.add_argument("--sha256", help="the archive's SHA-256 (or $SRMOS_DATASET_SHA256_<NAME>)")
    down.add_argument("--root", help="folder inside the archive to install (default: the one holding image_SRF_4)")
    down.add_argument("--data-dir", help="datasets folder (default $SRMOS_DATA_DIR or data/datasets)")
    down.add_argument("--force", action="store_true", help="replace a dataset that is already there")
    down.add_argument(
        "--allow-unverified",
        action="store_true",
        help="accept an archive with no known SHA-256 (its checksum is printed)",
    )
    down.add_argument("--quiet", action="store_true", help="no progress bar")
    down.set_defaults(func=cmd_download)

    lst = commands.add_parser("list", help="datasets and methods")
    lst.add_argument("--data-dir", help="datasets folder (default $SRMOS_DATA_DIR or data/datasets)")
    lst.set_defaults(func=cmd_list)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except SRMOSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
