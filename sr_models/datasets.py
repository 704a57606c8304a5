"""Test sets: Set5, Set14 and BSD100 at x4 in the SelfExSR ``image_SRF_4`` layout, or any folder of HR images.

``image_SRF_<s>/<name>_SRF_<s>_HR.png`` holds HR (always) and ``<name>_SRF_<s>_LR.png`` the LR input (where present).
HR is cropped to a multiple of the scale; where no LR file exists LR is made from it with ``sr_models.resize.imresize``
(MATLAB bicubic, antialiased), as the SRGAN paper did. A plain folder of images is read as HR only.

The reader lives in ``sr_models`` so that training validates on the same sets the benchmark measures; fetching a set
is the harness's job (``python -m benchmarks download``, ``benchmarks.download``), so nothing here goes online.
"""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from sr_models import paths
from sr_models.errors import SRMOSError

# The standard sets and their sizes: a known set with fewer images is incomplete (an interrupted copy, say).
KNOWN_DATASETS = {"Set5": 5, "Set14": 14, "BSD100": 100}
IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".pgm", ".webp")


class DatasetError(SRMOSError):
    """A dataset that is unknown, missing, incomplete or inconsistent."""


@dataclass(frozen=True)
class TestImage:
    """One test image: ``name`` like ``img_001`` (or the file stem in a plain folder)."""

    __test__ = False  # not a pytest test class

    name: str
    hr_path: Path
    lr_path: Path | None = None


@dataclass
class Dataset:
    name: str
    root: Path
    images: list[TestImage] = field(default_factory=list)
    scale: int = 4

    def __len__(self):
        return len(self.images)

    def __iter__(self):
        return iter(self.images)

    def image(self, name):
        for image in self.images:
            if image.name == name:
                return image
        raise DatasetError(f"dataset {self.name} has no image {name!r} (it has {self.image_names()})")

    def image_names(self):
        return ", ".join(image.name for image in self.images)

    def load_hr(self, image):
        """HR as uint8, cropped (bottom/right) to a multiple of the scale."""
        from sr_models.imageio import read_image

        return crop_to_scale(read_image(image.hr_path), self.scale)

    def load(self, image):
        """``(lr, hr)`` uint8 arrays: LR from its file where there is one (size checked), else made from HR."""
        from sr_models.imageio import read_image
        from sr_models.resize import imresize

        if isinstance(image, str):
            image = self.image(image)
        hr = self.load_hr(image)
        lr_shape = (hr.shape[0] // self.scale, hr.shape[1] // self.scale)
        if image.lr_path is None:
            return imresize(hr, output_shape=lr_shape), hr
        lr = read_image(image.lr_path)
        if lr.shape[:2] != lr_shape:
            raise DatasetError(
                f"{image.lr_path} is {lr.shape[1]}x{lr.shape[0]} but its HR image {image.hr_path.name} cropped to a "
                f"multiple of {self.scale} is {hr.shape[1]}x{hr.shape[0]}, so LR must be "
                f"{lr_shape[1]}x{lr_shape[0]}; replace the LR file or delete it to have LR made from HR"
            )
        return lr, hr

    def verify(self):
        """Read every image (and check LR sizes) so that a bad file is reported before any work starts."""
        for image in self.images:
            self.load_hr(image) if image.lr_path is None else self.load(image)


def crop_to_scale(image, scale):
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


def resolve_data_dir(data_dir=None):
    """``data_dir``, else ``$SRMOS_DATA_DIR``, else the repository's ``data/datasets`` (``sr_models.paths``)."""
    return paths.data_dir(data_dir)


def looks_like_path(dataset):
    return os.sep in dataset or (os.altsep is not None and os.altsep in dataset) or dataset.startswith((".", "~"))


def is_image_file(path):
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def available(data_dir=None, scale=4):
    """Names of the datasets present in the data directory, the standard sets first."""
    data_dir = resolve_data_dir(data_dir)
    if not data_dir.is_dir():
        return []
    present = [
        p.name
        for p in sorted(data_dir.iterdir())
        if p.is_dir()
        and not p.name.startswith(".")
        and ((p / f"image_SRF_{scale}").is_dir() or any(is_image_file(f) for f in p.iterdir()))
    ]
    known = [name for name in KNOWN_DATASETS if name in present]
    return known + [name for name in present if name not in KNOWN_DATASETS]


def get_dataset(dataset, data_dir=None, scale=4, *, name=None):
    """A dataset by name (a folder in the data directory) or by path (``get_dataset("/path", name="mine")``)."""
    if isinstance(dataset, Dataset):
        return dataset
    dataset = str(dataset)
    if looks_like_path(dataset):
        root = Path(dataset).expanduser()
        if root.name == f"image_SRF_{scale}":
            root = root.parent
        name = name or root.name
        expected = KNOWN_DATASETS.get(name)
        if not root.is_dir():
            raise DatasetError(f"dataset folder {root} does not exist")
    else:
        data_dir = resolve_data_dir(data_dir)
        root = data_dir / dataset
        expected = KNOWN_DATASETS.get(dataset)
        name = name or dataset
        if not root.is_dir():
            hint = (
                f"download it with `python -m benchmarks download {dataset}`"
                if expected
                else f"known datasets: {', '.join(KNOWN_DATASETS)}; any folder of HR images can be given by path"
            )
            present = ", ".join(available(data_dir, scale)) or "none"
            raise DatasetError(
                f"dataset {dataset!r} not found: looked for the folder {root} (data directory from --data-dir, "
                f"$SRMOS_DATA_DIR or the default {paths.DEFAULT_DATA_DIR}; datasets there: {present}); {hint}"
            )
    images = scan_srf_layout(root, scale) if (root / f"image_SRF_{scale}").is_dir() else scan_plain_folder(root)
    if not images:
        raise DatasetError(
            f"dataset {name!r} at {root} holds no images: looked for {root / f'image_SRF_{scale}'}/*_SRF_{scale}_HR.*"
            f" and for image files ({', '.join(IMAGE_SUFFIXES)}) directly in {root}"
        )
    if expected is not None and len(images) != expected:
        raise DatasetError(
            f"dataset {name} at {root} is incomplete: it has {len(images)} HR images where {expected} belong; "
            f"copy it again or run `python -m benchmarks download {name} --force`"
        )
    return Dataset(name=name, root=root, images=images, scale=scale)


def scan_srf_layout(root, scale):
    folder = root / f"image_SRF_{scale}"
    pattern = re.compile(rf"^(?P<name>.+)_SRF_{scale}_(?P<kind>HR|LR)$")
    hr, lr = {}, {}
    for path in sorted(folder.iterdir()):
        match = pattern.match(path.stem)
        if match and is_image_file(path):
            (hr if match["kind"] == "HR" else lr)[match["name"]] = path
    orphans = sorted(set(lr) - set(hr))
    if orphans:
        raise DatasetError(
            f"{folder} has LR files without their HR files for: {', '.join(orphans)} "
            f"(expected {orphans[0]}_SRF_{scale}_HR.png)"
        )
    return [TestImage(name, hr[name], lr.get(name)) for name in sorted(hr)]


def scan_plain_folder(root):
    images = [TestImage(path.stem, path) for path in sorted(root.iterdir()) if is_image_file(path)]
    names = [image.name for image in images]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise DatasetError(f"{root} has several files for the image names {', '.join(clashes)}; keep one of each")
    return images
