"""uint8 images to the float tensors the metrics read, and batches of images that share a shape."""

import numpy as np
import torch

from ..errors import SRMOSError

GPU_BATCH = 8  # images of one shape scored together on a GPU (the CPU scores one at a time: it stays in cache)


def crop(image, border):
    """``border`` pixels removed at each side, as PSNR/SSIM do."""
    if border <= 0:
        return image
    if image.shape[0] <= 2 * border or image.shape[1] <= 2 * border:
        raise SRMOSError(f"a {image.shape[1]}x{image.shape[0]} image is too small for a {border}-pixel border")
    return image[border:-border, border:-border]


def check_pair(sr, hr):
    for image in (sr, hr):
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            raise SRMOSError("quality metrics take uint8 numpy images (as sr_models.imageio reads them)")
    if sr.shape != hr.shape:
        raise SRMOSError(f"the output is {sr.shape} where the reference is {hr.shape}: give images of one shape")


def to_tensor(images, device, channels=None):
    """``NCHW`` float32 in [0, 1] on ``device``; grey images get one channel, or ``channels`` copies of it."""
    arrays = [image[..., None] if image.ndim == 2 else image for image in images]
    batch = torch.from_numpy(np.stack(arrays)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    if channels and batch.shape[1] != channels:
        batch = batch.expand(-1, channels, -1, -1)
    return batch


def shape_batches(images, device):
    """Lists of indices into ``images``: one image each on the CPU, up to ``GPU_BATCH`` of one shape on a GPU."""
    size = GPU_BATCH if str(device).startswith("cuda") else 1
    groups = {}
    for index, image in enumerate(images):
        groups.setdefault(image.shape, []).append(index)
    return [group[i : i + size] for group in groups.values() for i in range(0, len(group), size)]


def score_batches(srs, hrs, device, score):
    """``score(sr_tensor, hr_tensor_or_None)`` over shape batches, floats back in the order of ``srs``."""
    values = [None] * len(srs)
    with torch.no_grad():
        for indices in shape_batches(srs, device):
            sr = to_tensor([srs[i] for i in indices], device)
            hr = to_tensor([hrs[i] for i in indices], device) if hrs[indices[0]] is not None else None
            for index, value in zip(indices, score(sr, hr).reshape(-1).tolist()):
                values[index] = float(value)
    return values
