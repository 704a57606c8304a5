import shutil

import numpy as np
import pytest

from sr_models import datasets
from sr_models.datasets import DatasetError, available, crop_to_scale, get_dataset
from sr_models.errors import ImageError, SRMOSError
from sr_models.imageio import read_image, write_png
from sr_models.resize import imresize

SET5 = [f"img_00{i}" for i in range(1, 6)]


def test_embedded_set5_uses_its_lr_files(embedded_datasets):
    dataset = get_dataset("Set5", embedded_datasets)
    assert dataset.name == "Set5" and dataset.scale == 4
    assert [image.name for image in dataset] == SET5
    assert all(image.lr_path is not None for image in dataset)
    lr, hr = dataset.load(dataset.images[1])
    assert hr.dtype == np.uint8 and lr.dtype == np.uint8
    assert hr.shape == (288, 288, 3) and lr.shape == (72, 72, 3)
    assert np.array_equal(lr, read_image(dataset.images[1].lr_path))  # the file itself, not a re-made LR


def test_default_data_dir_and_environment(embedded_datasets, tmp_path, monkeypatch):
    monkeypatch.delenv("SRMOS_DATA_DIR", raising=False)
    assert datasets.resolve_data_dir() == embedded_datasets
    assert get_dataset("Set5").root == embedded_datasets / "Set5"
    monkeypatch.setenv("SRMOS_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match=str(tmp_path / "Set5")):
        get_dataset("Set5")
    assert get_dataset("Set5", embedded_datasets).root == embedded_datasets / "Set5"  # argument wins


def test_set_without_lr_files_makes_lr_with_imresize(shared_datasets):
    dataset = get_dataset("Set14", shared_datasets)
    assert len(dataset) == 14 and all(image.lr_path is None for image in dataset)
    grey = dataset.image("img_003")
    lr, hr = dataset.load(grey)
    assert hr.ndim == 2 and hr.shape == (512, 512) and lr.shape == (128, 128)
    assert np.array_equal(lr, imresize(hr, scale=0.25))


def test_plain_folder_is_cropped_to_a_multiple_of_the_scale(tmp_path):
    rng = np.random.default_rng(0)
    write_png(tmp_path / "odd.png", rng.integers(0, 256, (103, 77, 3), dtype=np.uint8))
    write_png(tmp_path / "even.png", rng.integers(0, 256, (64, 48), dtype=np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    dataset = get_dataset(str(tmp_path), name="mine")
    assert dataset.name == "mine" and [image.name for image in dataset] == ["even", "odd"]
    lr, hr = dataset.load("odd")
    full = read_image(tmp_path / "odd.png")
    assert hr.shape == (100, 76, 3) and np.array_equal(hr, full[:100, :76])  # bottom/right strips dropped
    assert lr.shape == (25, 19, 3) and np.array_equal(lr, imresize(hr, output_shape=(25, 19)))
    assert get_dataset(str(tmp_path)).name == tmp_path.name


def test_crop_to_scale():
    image = np.arange(7 * 9).reshape(7, 9)
    assert np.array_equal(crop_to_scale(image, 4), image[:4, :8])


def copy_set5(embedded_datasets, data_dir, keep=None):
    target = data_dir / "Set5" / "image_SRF_4"
    target.mkdir(parents=True)
    for path in (embedded_datasets / "Set5" / "image_SRF_4").iterdir():
        if keep is None or path.name.split("_SRF")[0] in keep:
            shutil.copy(path, target / path.name)
    return target


def test_lr_file_of_the_wrong_size_is_reported(embedded_datasets, tmp_path):
    folder = copy_set5(embedded_datasets, tmp_path)
    write_png(folder / "img_002_SRF_4_LR.png", np.zeros((70, 72, 3), np.uint8))
    dataset = get_dataset("Set5", tmp_path)
    dataset.load("img_001")
    with pytest.raises(DatasetError, match=r"img_002_SRF_4_LR.png is 72x70 .* must be 72x72"):
        dataset.load("img_002")
    with pytest.raises(DatasetError, match="img_002"):
        dataset.verify()


def test_unknown_and_incomplete_datasets(embedded_datasets, tmp_path):
    with pytest.raises(DatasetError, match=r"'Set9' not found: looked for the folder .*Set9"):
        get_dataset("Set9", tmp_path)
    with pytest.raises(DatasetError, match="python -m benchmarks download Set14"):
        get_dataset("Set14", tmp_path)
    copy_set5(embedded_datasets, tmp_path, keep={"img_001", "img_002", "img_003"})
    with pytest.raises(DatasetError, match="incomplete: it has 3 HR images where 5 belong"):
        get_dataset("Set5", tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        get_dataset(str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match=r"holds no images: looked for .*image_SRF_4"):
        get_dataset(str(empty))
    assert issubclass(DatasetError, SRMOSError)


def test_lr_without_hr_is_reported(embedded_datasets, tmp_path):
    folder = copy_set5(embedded_datasets, tmp_path)
    (folder / "img_004_SRF_4_HR.png").unlink()
    with pytest.raises(DatasetError, match="LR files without their HR files for: img_004"):
        get_dataset(str(tmp_path / "Set5"))


def test_corrupt_image_is_found_by_verify(embedded_datasets, tmp_path):
    folder = copy_set5(embedded_datasets, tmp_path)
    data = (folder / "img_005_SRF_4_HR.png").read_bytes()
    (folder / "img_005_SRF_4_HR.png").write_bytes(data[: len(data) // 2])
    dataset = get_dataset("Set5", tmp_path)  # listing does not decode
    with pytest.raises(ImageError, match="img_005"):
        dataset.verify()


def test_available_lists_present_sets_standard_ones_first(embedded_datasets, tmp_path):
    assert available(embedded_datasets) == ["Set5"]
    copy_set5(embedded_datasets, tmp_path)
    (tmp_path / "aaa").mkdir()
    write_png(tmp_path / "aaa" / "x.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "not_a_set").mkdir()
    assert available(tmp_path) == ["Set5", "aaa"]
    assert available(tmp_path / "missing") == []


def test_duplicate_stems_in_a_plain_folder(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    shutil.copy(tmp_path / "a.png", tmp_path / "a.bmp")
    with pytest.raises(DatasetError, match="several files for the image names a"):
        get_dataset(str(tmp_path))
