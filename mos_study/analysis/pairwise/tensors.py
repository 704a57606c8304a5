"""Comparisons as arrays: per rater, image and ordered pair of methods, the points won (ties 0.5 each side)."""

from dataclasses import dataclass

import numpy as np

from ..order import datasets_in_order, methods_in_order
from .comparisons import win_points


@dataclass(frozen=True)
class WinTensor:
    """One dataset's comparisons: ``wins[r, k, i, j]`` points rater r's choices gave method i over method j on image
    k; ``methods`` in the paper's order (index 0 is the reference condition), ``raters`` and ``images`` sorted."""

    dataset: str
    methods: tuple
    raters: tuple
    images: tuple
    wins: np.ndarray

    @property
    def per_image(self):
        """(images, n, n): all raters' wins per image."""
        return self.wins.sum(axis=0)

    @property
    def pooled(self):
        """(n, n): every image's comparisons in one matrix (the method scale assumes one difference per pair)."""
        return self.wins.sum(axis=(0, 1))

    @property
    def pooled_per_rater(self):
        return self.wins.sum(axis=1)

    def present(self):
        """(images, n) bool: the methods compared at least once on each image."""
        compared = self.per_image + np.swapaxes(self.per_image, -1, -2)
        return compared.sum(axis=-1) > 0


def win_tensor(comparisons, dataset):
    """The WinTensor of one dataset of a canonical comparisons table."""
    rows = comparisons[comparisons["dataset"] == dataset]
    methods = tuple(methods_in_order(set(rows["method_a"]) | set(rows["method_b"])))
    raters = tuple(sorted(rows["rater"].unique()))
    images = tuple(sorted(rows["image"].unique()))
    index = {name: i for i, name in enumerate(methods)}
    r = rows["rater"].map({name: i for i, name in enumerate(raters)}).to_numpy()
    k = rows["image"].map({name: i for i, name in enumerate(images)}).to_numpy()
    a = rows["method_a"].map(index).to_numpy()
    b = rows["method_b"].map(index).to_numpy()
    points_a, points_b = win_points(rows)
    wins = np.zeros((len(raters), len(images), len(methods), len(methods)))
    np.add.at(wins, (r, k, a, b), points_a)
    np.add.at(wins, (r, k, b, a), points_b)
    return WinTensor(str(dataset), methods, raters, images, wins)


def datasets_of(comparisons):
    return datasets_in_order(comparisons["dataset"].unique())
