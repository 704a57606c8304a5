"""The text summary of a PairwiseResults (``pairwise_summary.txt``): what was fitted, how, and the main tables."""

from .scaling import MODEL_UNITS_PER_JOD
from .screening import OUTLIER_DISTANCE

MODEL_NAMES = {"thurstone": "Thurstone Case V", "bradley-terry": "Bradley-Terry"}


def summary_lines(results):
    options = results.options
    comparisons = results.comparisons
    raters = results.raters
    outliers = list(raters.loc[raters["outlier"], "rater"])
    prior = options["prior_sd"]
    lines = [
        "Pairwise comparison analysis",
        f"{len(comparisons)} comparisons ({int((comparisons['choice'] == 'tie').sum())} ties, half a win each), "
        f"{comparisons['rater'].nunique()} raters, {comparisons['image'].nunique()} images.",
        f"Model: {MODEL_NAMES[options['model']]} maximum likelihood, in JOD (1 JOD = 75 % preference; model unit = "
        f"{MODEL_UNITS_PER_JOD[options['model']]:.4f} x JOD); "
        + (f"Gaussian prior on scores, sd {prior:g} JOD" if prior is not None else "no prior")
        + ("; Firth's bias reduction." if options.get("bias_reduction") else "."),
        "Method scale: every image's comparisons pooled in one win matrix per dataset; the first method in the "
        "paper's order is the reference at 0 JOD (per image: the first method shown on that image).",
        (
            f"95 % CI: percentile bootstrap over raters, {options['bootstrap']} resamples, seed {options['seed']}"
            + (" (none for a dataset with one rater)." if results.scale_per_method["ci95_low"].isna().any() else ".")
            if options["bootstrap"]
            else "No bootstrap: no CIs and no bootstrap test."
        ),
        "",
        "Scale per method (JOD):",
    ]
    for row in results.scale_per_method.itertuples(index=False):
        ci = "" if row.ci95_low != row.ci95_low else f" [{row.ci95_low:.3f}, {row.ci95_high:.3f}]"
        mos = f"  MOS {row.mos:.3f}" if results.has_mos and row.mos == row.mos else ""
        lines.append(f"  {row.dataset} {row.method}: {row.scale:.3f}{ci} ({int(row.n_comparisons)} comparisons){mos}")
    lines += [
        "",
        "Significance (Holm-corrected per dataset and test, significant at p_holm < "
        f"{options['alpha']:g}): bootstrap over raters is primary; the likelihood-ratio test treats every "
        "comparison as independent, so its p-values are too small when raters differ.",
    ]
    for row in results.significance.itertuples(index=False):
        mark = " *" if row.significant else ""
        lines.append(
            f"  {row.dataset} {row.method_a} vs {row.method_b} ({row.test}): difference {row.difference:.3f} JOD, "
            f"p_holm {row.p_holm:.4g}{mark}"
        )
    lines += [
        "",
        "Rater screening (pwcmp outlier analysis: mean log-likelihood of a rater's choices under the scale of everyone "
        f"else; distance (Q1 - L) / IQR; outlier above {OUTLIER_DISTANCE:g}; reported, not removed): "
        + (", ".join(outliers) if outliers else "no outliers")
        + ".",
    ]
    return lines
