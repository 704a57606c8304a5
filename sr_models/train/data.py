"""Training data: random HR crops from folders of images, LR made on the fly with MATLAB bicubic (or read from pairs).

Randomness never comes from a worker's global RNG: the sampler hands every sample its own seed, derived from
(run seed, epoch, position in the epoch's permutation). So crops are the same whatever the number of workers or
processes, and a resumed run sees exactly the samples an uninterrupted one would.
"""

import logging
import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from sr_models.errors import ImageError, SRMOSError
from sr_models.imageio import read_image
from sr_models.resize import imresize

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}
# Bicubic antialiased x1/s downscaling reaches 1.5 LR pixels beyond an output pixel; 3 LR pixels of margin make a
# crop's LR identical to the matching crop of the whole image's LR.
LR_MARGIN = 3


def list_images(folders):
    """Image files under folders (recursively), sorted; SRMOSError when there are none."""
    files = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise SRMOSError(f"training data folder {folder} does not exist or is not a folder")
        files += sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise SRMOSError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in {', '.join(map(str, folders))}")
    return files


def hr_to_tensor(hr):
    """uint8 HxWx3 -> float 3xHxW in [-1, 1] (the paper's HR range)."""
    return torch.from_numpy(np.ascontiguousarray(hr.transpose(2, 0, 1))).float().div_(127.5).sub_(1.0)


def lr_to_tensor(lr):
    """uint8 HxWx3 -> float 3xHxW in [0, 1] (the paper's LR range)."""
    return torch.from_numpy(np.ascontiguousarray(lr.transpose(2, 0, 1))).float().div_(255.0)


def augment_pair(lr, hr, rng):
    """The same random horizontal flip, vertical flip and transpose (together: the 8 dihedral views) on both."""
    flip_h, flip_v, transpose = rng.integers(0, 2, size=3)
    if flip_h:
        lr, hr = lr[:, ::-1], hr[:, ::-1]
    if flip_v:
        lr, hr = lr[::-1], hr[::-1]
    if transpose:
        lr, hr = lr.transpose(1, 0, 2), hr.transpose(1, 0, 2)
    return lr, hr


def bicubic_lr_crop(hr, top, left, crop_size, scale):
    """LR of the HR crop at (top, left), equal to the same region of imresize(whole HR, 1/scale).

    top, left and crop_size are multiples of scale and hr is cropped to a multiple of scale, so the windowed
    downscaling lines up with the whole image's; the margin covers the kernel, and at image borders the window ends
    where the image does, so imresize pads it the same way.
    """
    margin = LR_MARGIN * scale
    h, w = hr.shape[:2]
    y0, x0 = max(0, top - margin), max(0, left - margin)
    y1, x1 = min(h, top + crop_size + margin), min(w, left + crop_size + margin)
    lr_window = imresize(hr[y0:y1, x0:x1], scale=1.0 / scale)
    ly, lx, size = (top - y0) // scale, (left - x0) // scale, crop_size // scale
    return lr_window[ly : ly + size, lx : lx + size]


class SRTrainDataset(Dataset):
    """Random (LR, HR) training crops from folders of HR images.

    Index with ``(image_index, sample_seed)`` as ResumableSampler yields. Returns (lr in [0, 1], hr in [-1, 1]).
    Images that fail to decode, or are smaller than the crop, are logged once and replaced by the next good one.
    """

    def __init__(self, folders, crop_size=96, scale=4, augment=False, lr_folder=None, repeat=1, cache=False):
        if crop_size % scale:
            raise SRMOSError(f"crop size {crop_size} is not a multiple of scale {scale}")
        self.files = list_images(folders)
        self.crop_size, self.scale, self.augment, self.repeat = crop_size, scale, augment, repeat
        self.lr_folder = Path(lr_folder) if lr_folder else None
        if self.lr_folder and not self.lr_folder.is_dir():
            raise SRMOSError(f"LR folder {self.lr_folder} does not exist or is not a folder")
        self.bad = set()  # per process: indices already reported
        self.cache = {} if cache else None  # decoded images kept in memory (per worker process): for small sets

    def __len__(self):
        return len(self.files) * self.repeat

    def __getitem__(self, item):
        index, sample_seed = item if isinstance(item, tuple) else (item, item)
        rng = np.random.default_rng(sample_seed)
        n = len(self.files)
        for attempt in range(n):
            i = (index + attempt) % n
            if i in self.bad:
                continue
            try:
                lr, hr = self._load_crop(i, rng)
            except (ImageError, OSError, SRMOSError) as exc:
                self.bad.add(i)
                log.warning("skipping training image %s: %s", self.files[i], exc)
                continue
            if self.augment:
                lr, hr = augment_pair(lr, hr, rng)
            return lr_to_tensor(lr), hr_to_tensor(hr)
        raise SRMOSError(f"none of the {n} training images could be used (see the warnings above)")

    def _load_crop(self, i, rng):
        hr = self.cache.get(i) if self.cache is not None else None
        if hr is None:
            hr = read_image(self.files[i], mode="rgb")
            if self.cache is not None:
                self.cache[i] = hr
        s, size = self.scale, self.crop_size
        h, w = (hr.shape[0] // s) * s, (hr.shape[1] // s) * s
        if h < size or w < size:
            raise SRMOSError(f"image is {hr.shape[1]}x{hr.shape[0]}, smaller than the {size}x{size} crop")
        hr = hr[:h, :w]
        top = s * int(rng.integers(0, (h - size) // s + 1))
        left = s * int(rng.integers(0, (w - size) // s + 1))
        if self.lr_folder is None:
            lr = bicubic_lr_crop(hr, top, left, size, s)
        else:
            lr = self._paired_lr(i, (h // s, w // s))[top // s : (top + size) // s, left // s : (left + size) // s]
        return np.ascontiguousarray(lr), np.ascontiguousarray(hr[top : top + size, left : left + size])

    def _paired_lr(self, i, expected_shape):
        stem = self.files[i].stem
        candidates = sorted(p for p in self.lr_folder.glob(stem + ".*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not candidates:
            raise SRMOSError(f"no LR image named {stem}.* in {self.lr_folder}")
        lr = read_image(candidates[0], mode="rgb")
        if lr.shape[:2] != expected_shape:
            raise SRMOSError(
                f"LR {candidates[0]} is {lr.shape[1]}x{lr.shape[0]}, expected "
                f"{expected_shape[1]}x{expected_shape[0]} (HR / {self.scale})"
            )
        return lr


class ResumableSampler(DistributedSampler):
    """DistributedSampler that yields (index, sample_seed) and can start part-way into an epoch.

    ``start`` counts this rank's samples already consumed in the current epoch.
    """

    def __init__(self, dataset, num_replicas=1, rank=0, seed=0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.start = 0

    def __iter__(self):
        indices = list(super().__iter__())
        for position in range(self.start, len(indices)):
            global_position = position * self.num_replicas + self.rank
            seed = np.random.SeedSequence([self.seed, self.epoch, global_position]).generate_state(1)[0]
            yield indices[position], int(seed)

    def __len__(self):
        return self.num_samples - self.start


def _seed_worker(worker_id):
    # Only for code outside our control that uses the global RNGs; our crops use per-sample seeds.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    import random

    random.seed(seed)


class BatchStream:
    """An endless stream of batches over epochs whose position (epoch, batches consumed) can be saved and restored."""

    def __init__(self, dataset, batch_size, *, seed=0, num_workers=0, rank=0, world_size=1, pin_memory=False):
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.sampler = ResumableSampler(dataset, num_replicas=world_size, rank=rank, seed=seed)
        if self.sampler.num_samples < batch_size:
            raise SRMOSError(
                f"batch size {batch_size} per process is larger than the {self.sampler.num_samples} samples per epoch"
            )
        self.epoch, self.batches_done, self._iterator = 0, 0, None

    def state_dict(self):
        return {"epoch": self.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state):
        self.epoch, self.batches_done, self._iterator = state["epoch"], state["batches_done"], None

    def _start_epoch(self):
        self.sampler.set_epoch(self.epoch)
        self.sampler.start = self.batches_done * self.batch_size
        # A generator seeded per epoch keeps worker seeds reproducible and leaves the global torch RNG untouched.
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=self.sampler,
            drop_last=True,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            worker_init_fn=_seed_worker,
            generator=generator,
        )
        self._iterator = iter(loader)

    def __iter__(self):
        return self

    def __next__(self):
        if self._iterator is None:
            self._start_epoch()
        try:
            batch = next(self._iterator)
        except StopIteration:
            self.epoch, self.batches_done = self.epoch + 1, 0
            self._start_epoch()
            batch = next(self._iterator)
        self.batches_done += 1
        return batch


def repeats_for(num_images, global_batch):
    """How often to repeat a small image list so that one epoch holds at least one global batch."""
    return max(1, math.ceil(global_batch / num_images))
