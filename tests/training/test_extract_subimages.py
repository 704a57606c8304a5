"""Sub-image extraction: positions, file contents, LR pairs, unreadable files skipped, reruns keep files."""

import numpy as np

from sr_models.extract_subimages import crop_positions, extract_subimages, main
from sr_models.imageio import read_image, write_png
from sr_models.resize import imresize


def test_crop_positions():
    assert crop_positions(100, 40, 30, 0) == [0, 30, 60]
    assert crop_positions(110, 40, 30, 0) == [0, 30, 60, 70]  # 10 pixels left over: one end-flush window
    assert crop_positions(110, 40, 30, 10) == [0, 30, 60]
    assert crop_positions(30, 40, 30, 0) == []


def test_extracts_hr_and_lr_sub_images_and_skips_bad_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8)
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "photo.png", image)
    (tmp_path / "in" / "broken.png").write_bytes(b"nope")
    total, skipped = extract_subimages(
        [tmp_path / "in"], tmp_path / "hr", size=32, step=24, lr_output=tmp_path / "lr", scale=4
    )
    assert total == 4 and [p.name for p, _ in skipped] == ["broken.png"]
    np.testing.assert_array_equal(read_image(tmp_path / "hr" / "photo_s001.png"), image[0:32, 24:56])
    np.testing.assert_array_equal(
        read_image(tmp_path / "lr" / "photo_s001.png"), imresize(image[0:32, 24:56], scale=0.25)
    )
    # A rerun leaves existing files as they are.
    before = (tmp_path / "hr" / "photo_s000.png").stat().st_mtime_ns
    assert (
        main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "hr"), "--size", "32", "--step", "24"]) == 0
    )
    assert (tmp_path / "hr" / "photo_s000.png").stat().st_mtime_ns == before
    out = capsys.readouterr()
    assert "4 sub-images" in out.out and "broken.png" in out.err
