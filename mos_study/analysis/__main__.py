"""``python -m mos_study.analysis RATINGS.csv --output-dir DIR [options]``: analyse any long table of ratings.

``python -m mos_study.analysis plan [PILOT.csv | --sd SD] [options]``: ratings and raters a study needs
(``mos_study.analysis.planning``).
"""

import argparse
import sys
from pathlib import Path

from . import (
    AnalysisOptions,
    RatingsError,
    ScreeningOptions,
    RULES,
    parse_columns,
    parse_scale,
    read_metrics,
    read_ratings,
    run_analysis,
)
from .results import read_metric_provenance, read_provenance


def parse_rules(spec):
    if spec.strip().lower() == "none":
        return ()
    rules = tuple(part.strip() for part in spec.split(",") if part.strip())
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise RatingsError(f"--screening: unknown rule(s) {', '.join(unknown)}; use {','.join(RULES)} or none")
    return rules


def add_analysis_arguments(parser):
    """The options that change the statistics, shared with ``manage.py export_results``."""
    parser.add_argument("--screening", default=",".join(RULES), help=f"comma list of {','.join(RULES)}, or none")
    parser.add_argument("--subjective-model", default="p910", choices=["p910", "none"])
    parser.add_argument("--keep-screened", action="store_true", help="keep screened raters in MOS and CIs")
    parser.add_argument("--scale", default="1,5", help="LOW,HIGH of the rating scale")
    parser.add_argument("--bias-removal", action="store_true", help="ITU-T P.913 §12.4 subject bias removal")
    parser.add_argument("--bootstrap", type=int, default=0, help="resamples for a rater x image bootstrap CI")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-figures", action="store_true")
    defaults = ScreeningOptions()
    parser.add_argument("--calibration-min-agreement", type=float, default=defaults.calibration_min_agreement)
    parser.add_argument(
        "--gold-min-agreement",
        type=float,
        default=None,
        help=f"fraction of gold trials a rater must score right (default {defaults.gold_min_agreement:g}; a study's "
        "export: the study's own threshold)",
    )
    parser.add_argument("--retest-max-mad", type=float, default=defaults.retest_max_mad)
    parser.add_argument("--speed-min-median-ms", type=float, default=defaults.speed_min_median_ms)
    parser.add_argument(
        "--bt500-keep-unanimous",
        action="store_true",
        help="BT.500: apply the rule literally to stimuli every rater scored alike (S = 0), as sureal does; every "
        "rater then gains one P and one Q per such stimulus (default: such stimuli are skipped)",
    )


PROTOCOLS = ("acr", "pairwise")


def wants_pairwise(argv):
    """Whether the command line asks for ``--protocol pairwise`` (which has its own options)."""
    protocol = argparse.ArgumentParser(add_help=False)
    protocol.add_argument("--protocol", default="acr")
    known, _ = protocol.parse_known_args(argv)
    return known.protocol == "pairwise"


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m mos_study.analysis", description=__doc__)
    parser.add_argument("ratings", help="CSV, one row per rating: rater,image,method,score[,dataset,kind,...]")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="acr",
        help="acr: 1-5 ratings (default); pairwise: forced-choice comparisons rater,image,method_a,method_b,choice "
        "(its options: --protocol pairwise --help)",
    )
    parser.add_argument("--columns", default="", help="map names: rater=subject,image=content,...")
    parser.add_argument("--dataset", help="dataset name when the table has no dataset column (default: file name)")
    parser.add_argument(
        "--metrics",
        help="metrics_per_image.csv (dataset,image,method,psnr_y,ssim_y[,more metric columns: lpips_alex, niqe...]): "
        "Table 2, correlations, and which metric agrees with MOS (metric_agreement*.csv, summary.md)",
    )
    parser.add_argument(
        "--provenance",
        help="provenance.csv of the benchmark folder (default: the one beside --metrics, where there is one): "
        "marks models trained with stand-in features and prints each learned method's provenance",
    )
    parser.add_argument(
        "--metric-provenance",
        help="metric_provenance.csv of the benchmark folder (default: the one beside --metrics, where there is one): "
        "marks metrics computed with stand-in backbone weights in the metric agreement",
    )
    add_analysis_arguments(parser)
    return parser


def options_from_args(args):
    """AnalysisOptions from parsed arguments (argparse namespace, or Django's options as a namespace)."""
    screening = ScreeningOptions(
        rules=parse_rules(args.screening),
        calibration_min_agreement=args.calibration_min_agreement,
        **(
            {} if getattr(args, "gold_min_agreement", None) is None else {"gold_min_agreement": args.gold_min_agreement}
        ),
        retest_max_mad=args.retest_max_mad,
        speed_min_median_ms=args.speed_min_median_ms,
        bt500_skip_unanimous=not getattr(args, "bt500_keep_unanimous", False),
    )
    return AnalysisOptions(
        scale=parse_scale(args.scale),
        screening=screening,
        keep_screened=args.keep_screened,
        subjective_model=args.subjective_model,
        bias_removal=args.bias_removal,
        bootstrap=args.bootstrap,
        seed=args.seed,
    )


def provenance_path(args):
    if args.provenance:
        return Path(args.provenance)
    if args.metrics and (Path(args.metrics).parent / "provenance.csv").is_file():
        return Path(args.metrics).parent / "provenance.csv"
    return None


def metric_provenance_path(args):
    if getattr(args, "metric_provenance", None):
        return Path(args.metric_provenance)
    beside = Path(args.metrics).parent / "metric_provenance.csv" if args.metrics else None
    return beside if beside is not None and beside.is_file() else None


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["plan"]:
        from .plan_cli import main as plan_main

        return plan_main(argv[1:])
    if wants_pairwise(argv):
        from .pairwise.cli import main as pairwise_main

        return pairwise_main(argv)
    args = build_parser().parse_args(argv)
    try:
        options = options_from_args(args)
        ratings = read_ratings(
            args.ratings, columns=parse_columns(args.columns), scale=options.scale, dataset=args.dataset
        )
        metrics = read_metrics(args.metrics) if args.metrics else None
        path = provenance_path(args)
        provenance = read_provenance(path) if path else None
        metric_path = metric_provenance_path(args)
        results = run_analysis(
            ratings,
            args.output_dir,
            options,
            metrics=metrics,
            figures=not args.no_figures,
            provenance=provenance,
            stand_in_metrics=read_metric_provenance(metric_path) if metric_path else (),
        )
    except RatingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rejected = results.rejected_raters
    print(
        f"{len(results.ratings)} ratings, {results.ratings['rater'].nunique()} raters "
        f"({len(rejected)} screened out{': ' + ', '.join(rejected) if rejected else ''}); results in {args.output_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
