"""Training data: crops, on-the-fly LR equal to whole-image LR, bad files skipped, resumable data order."""

import logging

import numpy as np
import pytest
import torch

from sr_models.errors import SRMOSError
from sr_models.imageio import write_png
from sr_models.resize import imresize
from sr_models.train.data import (
    BatchStream,
    ResumableSampler,
    SRTrainDataset,
    augment_pair,
    bicubic_lr_crop,
    repeats_for,
)


def make_images(folder, count=6, shape=(70, 90), seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        write_png(folder / f"im{i:02d}.png", rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8))
    return folder


@pytest.mark.parametrize("top,left", [(0, 0), (16, 24), (36, 52), (4, 60)])
def test_lr_crop_equals_crop_of_whole_image_lr(top, left):
    hr = np.random.default_rng(1).integers(0, 256, size=(68, 100, 3), dtype=np.uint8)
    whole = imresize(hr, scale=0.25)
    lr = bicubic_lr_crop(hr, top, left, 32, 4)
    np.testing.assert_array_equal(lr, whole[top // 4 : top // 4 + 8, left // 4 : left // 4 + 8])


def test_dataset_gives_hr_crop_in_minus_one_one_and_lr_in_zero_one(tmp_path):
    folder = make_images(tmp_path / "hr", count=2, shape=(70, 90))
    dataset = SRTrainDataset([folder], crop_size=32, scale=4)
    lr, hr = dataset[(1, 1234)]
    assert lr.shape == (3, 8, 8) and hr.shape == (3, 32, 32)
    assert lr.dtype == hr.dtype == torch.float32
    assert -1 <= hr.min() and hr.max() <= 1 and 0 <= lr.min() and lr.max() <= 1
    # The HR crop is a piece of the image (cropped to 68x88) at a position that is a multiple of the scale.
    from sr_models.imageio import read_image

    image = read_image(dataset.files[1], mode="rgb")[:68, :88]
    hr_uint8 = np.rint((hr.numpy().transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
    hits = [
        (t, left)
        for t in range(0, 68 - 31, 4)
        for left in range(0, 88 - 31, 4)
        if np.array_equal(image[t : t + 32, left : left + 32], hr_uint8)
    ]
    assert len(hits) == 1
    t, left = hits[0]
    expected_lr = imresize(image, scale=0.25)[t // 4 : t // 4 + 8, left // 4 : left // 4 + 8]
    np.testing.assert_array_equal(np.rint(lr.numpy().transpose(1, 2, 0) * 255).astype(np.uint8), expected_lr)
    # Same seed, same crop; the crop does not depend on anything else.
    torch.testing.assert_close(dataset[(1, 1234)][1], hr)


def test_paired_lr_folder_is_used(tmp_path):
    hr_folder = make_images(tmp_path / "hr", count=1, shape=(64, 64))
    from sr_models.imageio import read_image

    lr_image = np.full((16, 16, 3), 77, np.uint8)
    (tmp_path / "lr").mkdir()
    write_png(tmp_path / "lr" / "im00.png", lr_image)
    lr, hr = SRTrainDataset([hr_folder], crop_size=32, scale=4, lr_folder=tmp_path / "lr")[(0, 5)]
    assert torch.all(lr == 77 / 255)
    assert read_image(hr_folder / "im00.png").shape == (64, 64, 3)


def test_unreadable_and_too_small_images_are_reported_and_skipped(tmp_path, caplog):
    folder = make_images(tmp_path / "hr", count=1, shape=(64, 64))
    (folder / "a_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    write_png(folder / "b_tiny.png", np.zeros((8, 8, 3), np.uint8))
    dataset = SRTrainDataset([folder], crop_size=32, scale=4)
    with caplog.at_level(logging.WARNING, logger="sr_models.train.data"):
        for index in range(3):
            lr, hr = dataset[(index, index)]
            assert hr.shape == (3, 32, 32)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "a_broken.png" in messages and "b_tiny.png" in messages and "smaller than the 32x32 crop" in messages
    assert dataset.bad == {0, 1}


def test_no_usable_image_is_a_clear_error(tmp_path):
    (tmp_path / "hr").mkdir()
    with pytest.raises(SRMOSError, match="no images"):
        SRTrainDataset([tmp_path / "hr"])
    with pytest.raises(SRMOSError, match="does not exist"):
        SRTrainDataset([tmp_path / "missing"])
    (tmp_path / "hr" / "x.png").write_bytes(b"junk")
    with pytest.raises(SRMOSError, match="none of the 1 training images"):
        SRTrainDataset([tmp_path / "hr"], crop_size=32)[(0, 0)]


def test_augment_applies_the_same_view_to_both():
    rng = np.random.default_rng(0)
    lr = np.arange(4 * 4 * 3, dtype=np.int64).reshape(4, 4, 3)
    hr = np.kron(lr, np.ones((4, 4, 1), np.int64))  # nearest x4: stays the nearest x4 of LR under any view
    views = set()
    for _ in range(64):
        a_lr, a_hr = augment_pair(lr, hr, rng)
        np.testing.assert_array_equal(a_hr, np.kron(a_lr, np.ones((4, 4, 1), np.int64)))
        views.add(a_hr.tobytes())
    assert len(views) == 8  # the eight flips/rotations of a square


def test_sampler_shards_cover_the_permutation_with_the_same_seeds():
    dataset = list(range(10))
    single = list(ResumableSampler(dataset, seed=3))
    ranks = [list(ResumableSampler(dataset, num_replicas=2, rank=r, seed=3)) for r in range(2)]
    interleaved = [item for pair in zip(*ranks) for item in pair]
    assert interleaved == single
    assert sorted(i for i, _ in single) == dataset
    sampler = ResumableSampler(dataset, seed=3)
    sampler.set_epoch(1)
    assert list(sampler) != single


def test_batch_stream_resumes_mid_epoch_and_across_epochs(tmp_path):
    folder = make_images(tmp_path / "hr", count=5, shape=(40, 40))
    dataset = SRTrainDataset([folder], crop_size=16, scale=4)
    straight = BatchStream(dataset, 2, seed=7)
    batches = [next(straight) for _ in range(7)]  # 5 images, batch 2, drop_last: 2 batches per epoch
    first = BatchStream(dataset, 2, seed=7)
    [next(first) for _ in range(3)]
    state = first.state_dict()
    assert state == {"epoch": 1, "batches_done": 1}
    resumed = BatchStream(dataset, 2, seed=7)
    resumed.load_state_dict(state)
    for expected in batches[3:]:
        got = next(resumed)
        torch.testing.assert_close(got[1], expected[1], rtol=0, atol=0)
    assert repeats_for(5, 16) == 4 and repeats_for(40, 16) == 1


def test_batch_stream_same_batches_with_worker_processes(tmp_path):
    folder = make_images(tmp_path / "hr", count=4, shape=(40, 40))
    dataset = SRTrainDataset([folder], crop_size=16, scale=4)
    in_process = [next(BatchStream(dataset, 2, seed=1))[1] for _ in range(1)]
    with_workers = [next(BatchStream(dataset, 2, seed=1, num_workers=2))[1] for _ in range(1)]
    torch.testing.assert_close(in_process, with_workers, rtol=0, atol=0)
