"""``python -m mos_study.analysis plan``: ratings per stimulus and raters a MOS study needs.

From a pilot (``PILOT.csv``, the same long table the analysis reads) or from assumed SDs (``--sd``, ``--image-sd``,
``--images``, ``--methods``): the ratings for a target 95 % CI half-width of each method's MOS, and the ratings per
stimulus for the primary paired per-image test to detect a MOS difference with the given power.
"""

import argparse
import sys

import pandas as pd

from .planning import (
    APPROXIMATIONS,
    PlanOptions,
    difference_row,
    plan_from_pilot,
    raters_needed,
    ratings_for_half_width,
)
from .ratings import RatingsError, parse_columns, parse_scale, read_ratings


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m mos_study.analysis plan", description=__doc__)
    parser.add_argument("pilot", nargs="?", help="pilot ratings CSV (rater,image,method,score[,dataset,...])")
    parser.add_argument("--sd", type=float, help="assumed SD of one rating (instead of a pilot)")
    parser.add_argument("--image-sd", type=float, default=0.0, help="assumed SD over images of a pair's difference")
    parser.add_argument("--images", type=int, help="images per method (without a pilot)")
    parser.add_argument("--methods", type=int, default=2, help="methods in the study (without a pilot)")
    parser.add_argument("--half-width", type=float, default=0.2, help="target 95 %% CI half-width of a method's MOS")
    parser.add_argument("--difference", type=float, default=0.3, help="MOS difference to detect")
    parser.add_argument("--power", type=float, default=0.8)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--approximation", choices=APPROXIMATIONS, default="t")
    parser.add_argument("--stimuli-per-rater", type=int, help="stimuli one rater scores (default: all of them)")
    parser.add_argument("--columns", default="")
    parser.add_argument("--scale", default="1,5")
    parser.add_argument("--output", help="write the plan as CSV here (both tables, a 'question' column first)")
    return parser


def plan_tables(args):
    options = PlanOptions(
        half_width=args.half_width,
        difference=args.difference,
        power=args.power,
        alpha=args.alpha,
        approximation=args.approximation,
        stimuli_per_rater=args.stimuli_per_rater,
    )
    if args.pilot:
        ratings = read_ratings(args.pilot, columns=parse_columns(args.columns), scale=parse_scale(args.scale))
        return plan_from_pilot(ratings, options)
    if args.sd is None or args.images is None:
        raise RatingsError("give a pilot ratings CSV, or --sd and --images")
    n = ratings_for_half_width(args.sd, args.half_width, approximation=args.approximation)
    r = -(-n // args.images)
    n_stimuli = args.images * args.methods
    precision = pd.DataFrame(
        [
            {
                "dataset": "assumed",
                "method": "any",
                "sd": args.sd,
                "n_images": args.images,
                "ratings_needed": n,
                "ratings_per_stimulus": r,
                "raters": raters_needed(r, n_stimuli, args.stimuli_per_rater),
            }
        ]
    )
    row = difference_row("assumed", "a", "b", args.sd, args.image_sd, args.images, options, n_stimuli)
    return precision, pd.DataFrame([row])


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        precision, difference = plan_tables(args)
    except RatingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"MOS precision: ratings for a 95 % CI half-width of {args.half_width:g} ({args.approximation})")
    print(precision.to_string(index=False))
    print()
    print(
        f"Paired per-image test (Wilcoxon's primary test, planned as a paired t/normal test): MOS difference "
        f"{args.difference:g}, power {args.power:g}, alpha {args.alpha:g} ({args.approximation})"
    )
    print(difference.to_string(index=False) if not difference.empty else "(no pair of methods shares two images)")
    if args.output:
        both = pd.concat([precision.assign(question="precision"), difference.assign(question="difference")])
        both[["question"] + [c for c in both.columns if c != "question"]].to_csv(args.output, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
