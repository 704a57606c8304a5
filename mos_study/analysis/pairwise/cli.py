"""``python -m mos_study.analysis PAIRS.csv --protocol pairwise --output-dir DIR [options]``: analyse a table of
pairwise comparisons (``rater,image,method_a,method_b,choice[,dataset]``). Errors: one line, exit status 2."""

import argparse
import sys

import pandas as pd

from ..ratings import RatingsError
from .comparisons import read_comparisons
from .export import write_pairwise_results
from .results import build_pairwise_results
from .scaling import MODELS


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m mos_study.analysis PAIRS.csv --protocol pairwise", description=__doc__
    )
    parser.add_argument("comparisons", help="CSV, one row per comparison: rater,image,method_a,method_b,choice")
    parser.add_argument("--protocol", choices=["pairwise"], default="pairwise")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--model", choices=MODELS, default="thurstone")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples of raters for CIs and the test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", help="dataset name when the table has no dataset column (default: file name)")
    parser.add_argument(
        "--bias-reduction",
        action="store_true",
        help="Firth's bias-reduced estimate (maximum likelihood overstates differences compared few times)",
    )
    parser.add_argument("--mos", help="a per-method MOS table (mos.csv of the ACR analysis) to put beside the scale")
    parser.add_argument("--no-figures", action="store_true")
    return parser


def read_mos(path):
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise RatingsError(f"{path}: no such file (--mos wants mos.csv of an ACR analysis)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RatingsError(f"{path}: not a readable CSV table ({exc})") from None


def main(argv=None):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        comparisons = read_comparisons(args.comparisons, dataset=args.dataset)
        mos = read_mos(args.mos) if args.mos else None
        results = build_pairwise_results(
            comparisons,
            model=args.model,
            bootstrap=args.bootstrap,
            seed=args.seed,
            mos=mos,
            bias_reduction=args.bias_reduction,
        )
        write_pairwise_results(results, args.output_dir, figures=not args.no_figures)
    except RatingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    outliers = list(results.raters.loc[results.raters["outlier"], "rater"])
    print(
        f"{len(comparisons)} comparisons, {comparisons['rater'].nunique()} raters "
        f"({len(outliers)} flagged as outliers{': ' + ', '.join(outliers) if outliers else ''}); "
        f"results in {args.output_dir}"
    )
    return 0
