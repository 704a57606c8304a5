"""Regenerate the reference values that tests/analysis/test_reference.py compares against.

The reference implementation is Netflix's sureal 0.9.0 (https://github.com/Netflix/sureal, Apache-2.0), run on the
public raw ACR sample that sureal ships with its ITU-T P.910 / ITU-R BT.500 demos (itut_p910_demo, itur_bt500_demo:
79 PVSs x 26 subjects of the NFLX public dataset with corrupted subjects, one missing vote), stored here as
data/p910_sample_matrix.csv (rows: PVS, columns: subject). A second variant drops 20 % of the votes (seeded) to make
an incomplete design.

sureal is a development dependency (requirements-dev.txt, for the pairwise agreement test), so with the dev venv:

    .venv/bin/python tests/analysis/make_reference.py

It writes data/p910_<variant>_ratings.csv (our long input format) and
data/p910_<variant>_reference_{stimuli,raters}.csv.
"""

import contextlib
import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from sureal.dataset_reader import RawDatasetReader
from sureal.subjective_model import (
    BiasremvMosModel,
    MaximumLikelihoodEstimationModelContentObliviousAlternativeProjection2,
    MosModel,
    SubjrejMosModel,
)

DATA = Path(__file__).resolve().parent / "data"
CI95_Z = 1.95996  # sureal's CI half-width factor


def load_matrix():
    return np.loadtxt(DATA / "p910_sample_matrix.csv", delimiter=",")


def variants():
    full = load_matrix()
    incomplete = full.copy()
    rng = np.random.default_rng(0)
    incomplete[rng.random(full.shape) < 0.2] = np.nan
    return {"full": full, "incomplete": incomplete}


def raters(n):
    return [f"s{i:02d}" for i in range(n)]


def images(n):
    return [f"pvs{j:02d}" for j in range(n)]


def to_long(matrix):
    rows = []
    for j, image in enumerate(images(matrix.shape[0])):
        for i, rater in enumerate(raters(matrix.shape[1])):
            if not np.isnan(matrix[j, i]):
                rows.append({"rater": rater, "image": image, "method": "acr", "score": int(matrix[j, i])})
    return pd.DataFrame(rows)


def to_sureal(matrix):
    names = raters(matrix.shape[1])
    dis_videos = [
        {
            "asset_id": j,
            "content_id": 0,
            "path": image,
            "os": {names[i]: float(matrix[j, i]) for i in range(matrix.shape[1]) if not np.isnan(matrix[j, i])},
        }
        for j, image in enumerate(images(matrix.shape[0]))
    ]
    dataset = SimpleNamespace(
        dataset_name="p910_sample",
        ref_videos=[{"content_id": 0, "content_name": "c0", "path": "c0"}],
        dis_videos=dis_videos,
    )
    return RawDatasetReader(dataset)


def run(model_class, reader, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):  # sureal prints its iterations
        return model_class(reader).run_modeling(**kwargs)


def reference(matrix):
    reader = to_sureal(matrix)
    mos = run(MosModel, reader)
    p910 = run(MaximumLikelihoodEstimationModelContentObliviousAlternativeProjection2, reader)
    rejected = run(SubjrejMosModel, reader)
    bias_removed = run(BiasremvMosModel, reader)
    stimuli = pd.DataFrame(
        {
            "image": images(matrix.shape[0]),
            "mos": mos["quality_scores"],
            "sd": mos["quality_ambiguity"],
            "quality": p910["quality_scores"],
            "quality_ci95_half": np.asarray(p910["quality_scores_std"]) * CI95_Z,
            "bias_removed_mos": bias_removed["quality_scores"],
            "mos_after_bt500": rejected["quality_scores"],
        }
    )
    observers = p910["observers"]
    raters_df = pd.DataFrame(
        {
            "rater": observers,
            "bias": p910["observer_bias"],
            "inconsistency": p910["observer_inconsistency"],
            "bt500_rejected": rejected["observer_rejected"],
            "bt500_p_plus_q_ratio": rejected["observer_rejected_1st_stats"],
            "bt500_p_minus_q_ratio": rejected["observer_rejected_2nd_stats"],
        }
    ).sort_values("rater")
    return stimuli, raters_df


def main():
    for name, matrix in variants().items():
        to_long(matrix).to_csv(DATA / f"p910_{name}_ratings.csv", index=False)
        stimuli, raters_df = reference(matrix)
        stimuli.to_csv(DATA / f"p910_{name}_reference_stimuli.csv", index=False, float_format="%.10f")
        raters_df.to_csv(DATA / f"p910_{name}_reference_raters.csv", index=False, float_format="%.10f")
        print(name, "rejected by BT.500 (sureal):", list(raters_df.rater[raters_df.bt500_rejected]))


if __name__ == "__main__":
    main()
